package merge

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"

	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/ddi"
)

// Tree is the readable content of an opened image: a directory image as
// is, a .raw image mounted read-only.
type Tree interface {
	fs.FS
	// Close releases the tree (and its mount and loop device, if any).
	Close() error
}

// Opener opens discovered images so their metadata can be read and their
// trees merged. When the policy requires signatures it also returns the
// sha256 of a .raw image ("sha256:HEX"), computed from the same open file
// that is mounted. A DDI is verified before it is mounted (its hash tree,
// and its signature against the policy's certificates); its tree then
// implements VerifiedTree.
type Opener interface {
	Open(img Image, policy Policy) (tree Tree, sha256 string, err error)
}

// VerifiedTree is the tree of a DDI, which says how it was verified.
type VerifiedTree interface {
	Tree
	// Verity is the DDI's protection: "signed", "verity" or
	// "unprotected" (ddi.Protection).
	Verity() string
	// Unsigned says why the DDI is not signed by a trusted certificate,
	// when it is not.
	Unsigned() string
}

// Host is what an extension must be compatible with.
type Host struct {
	// Release is the host's os-release.
	Release sysext.Release
	// Scope is "system", or "initrd" when running in the initrd.
	Scope string
	// Arch is the host's systemd architecture name, e.g. "x86-64".
	Arch string
}

// Policy says which images may be merged beyond compatibility.
type Policy struct {
	// RequireSignature merges only .raw images whose sha256 equals the one
	// recorded in Verified when sync or pull verified their signature.
	RequireSignature bool
	// Verified maps an extension name to its verified digests,
	// "sha256:HEX".
	Verified map[string][]string
	// StateDamaged, when set, says why state.json could not be read: no
	// digest is known to be verified.
	StateDamaged string
	// Certificates are trusted to sign DDIs' dm-verity root hashes: with
	// RequireSignature a DDI signed by one of them is merged whatever
	// state.json says.
	Certificates []*x509.Certificate
}

// Extension is an image that passed every check, ready to merge.
type Extension struct {
	Image
	// Release is the image's extension-release.
	Release sysext.Release `json:"release"`
	// Digest is the image's sha256, when it was checked.
	Digest string `json:"digest,omitempty"`
	// Verity is a DDI's protection as verified: "signed", "verity" or
	// "unprotected".
	Verity string `json:"verity,omitempty"`
	// Tree is the opened image.
	Tree Tree `json:"-"`
}

// Plan is what a merge will do: the extensions to stack, lowest first
// (the last one is on top), and the images refused with their reasons.
type Plan struct {
	Extensions []Extension `json:"extensions"`
	Refused    []Refusal   `json:"refused"`
}

// Close releases every opened extension.
func (p *Plan) Close() error {
	var errs []error
	for _, e := range p.Extensions {
		errs = append(errs, e.Tree.Close())
	}
	p.Extensions = nil
	return errors.Join(errs...)
}

// Names lists the planned extensions, lowest first, as systemd writes them
// into the marker (Class.MarkerList).
func (p *Plan) Names() []string {
	names := make([]string, len(p.Extensions))
	for i, e := range p.Extensions {
		names[i] = e.Name
	}
	return names
}

// osReleasePaths are where the host's os-release is looked up, in order.
var osReleasePaths = []string{"etc/os-release", "usr/lib/os-release"}

// ReadHostRelease reads the os-release of the root file system fsys:
// /etc/os-release, else /usr/lib/os-release (read as sysext.ReadReleaseFile
// does: regular files only, bounded).
func ReadHostRelease(fsys fs.FS) (sysext.Release, error) {
	for _, p := range osReleasePaths {
		if _, err := fs.Stat(fsys, p); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		rel, err := sysext.ReadReleaseFile(fsys, p)
		if err != nil {
			return nil, fmt.Errorf("host os-release /%s: %w", p, err)
		}
		if rel["ID"] == "" {
			return nil, fmt.Errorf("host os-release /%s has no ID=; extensions cannot be checked against it", p)
		}
		return rel, nil
	}
	return nil, fmt.Errorf("no host os-release: neither /%s nor /%s exists under the root", osReleasePaths[0], osReleasePaths[1])
}

// Prepare decides what to merge of class c: it discovers the images under
// the root file system fsys, checks trust (when the policy asks), opens
// each image, reads its extension-release and checks it against the host.
// Each refused image is reported with its reason and the others go ahead,
// in systemd-sysext's stacking order. The caller closes the plan.
func Prepare(fsys fs.FS, c sysext.Class, host Host, opener Opener, policy Policy) (*Plan, error) {
	images, refused, err := Discover(fsys, c)
	if err != nil {
		return nil, err
	}
	plan := &Plan{Extensions: []Extension{}, Refused: append([]Refusal{}, refused...)}
	for _, img := range images {
		ext, reason := prepareOne(img, isDDI(fsys, img), c, host, opener, policy)
		if reason != "" {
			plan.Refused = append(plan.Refused, Refusal{Name: img.Name, Path: img.Path, Reason: reason})
			continue
		}
		plan.Extensions = append(plan.Extensions, ext)
	}
	return plan, nil
}

// isDDI tells whether img is a .raw image holding a GPT disk (a DDI), by
// its first bytes.
func isDDI(fsys fs.FS, img Image) bool {
	if img.Type != Raw {
		return false
	}
	f, err := fsys.Open(img.Path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 2*ddi.Sector)
	if _, err := io.ReadFull(f, head); err != nil {
		return false
	}
	return ddi.Detect(bytes.NewReader(head))
}

// prepareOne runs the checks on one image in systemd's phase order: trust,
// open, read metadata, validate. It returns why the image is refused, or
// the opened extension. A DDI's trust is checked once it is open: a
// signature by a trusted certificate, else the digest sync verified.
func prepareOne(img Image, ddiImage bool, c sysext.Class, host Host, opener Opener, policy Policy) (Extension, string) {
	want := policy.Verified[img.Name]
	if policy.RequireSignature && !ddiImage {
		if img.Type != Raw {
			return Extension{}, "a directory image has no digest to verify; with --require-signature only verified .raw images are merged"
		}
		if policy.StateDamaged != "" {
			return Extension{}, "not verified: " + policy.StateDamaged + ", so which images were verified is unknown; `bakery sync` checks their signatures again"
		}
		if len(want) == 0 {
			return Extension{}, "not verified: state.json records no verified signature for " + img.Name + "; install it with `bakery sync`, which checks it"
		}
	}
	tree, digest, err := opener.Open(img, policy)
	if err != nil {
		return Extension{}, err.Error()
	}
	ext := Extension{Image: img, Digest: digest, Tree: tree}
	if vt, ok := tree.(VerifiedTree); ok {
		ext.Verity = vt.Verity()
	}
	rel, reason := check(ext, c, host, policy, want)
	if reason != "" {
		tree.Close()
		return Extension{}, reason
	}
	ext.Release = rel
	return ext, ""
}

// check validates an opened image of class c; it returns its
// extension-release, or why it is refused.
func check(ext Extension, c sysext.Class, host Host, policy Policy, want []string) (sysext.Release, string) {
	if policy.RequireSignature {
		vt, ddiImage := ext.Tree.(VerifiedTree)
		switch {
		case slices.Contains(want, ext.Digest): // sync verified its signature
		case ddiImage && ext.Verity == string(ddi.Signed):
		case ddiImage:
			return nil, unsignedDDI(vt.Unsigned())
		default:
			return nil, fmt.Sprintf("digest %s differs from the verified %s recorded in state.json: the image changed after it was verified; run `bakery sync` to reinstall it", ext.Digest, strings.Join(want, " or "))
		}
	}
	rel, _, err := c.ReadExtensionRelease(ext.Tree, ext.Name)
	if err != nil {
		return nil, err.Error()
	}
	if _, err := fs.Stat(ext.Tree, sysext.ForbiddenOSRelease); err == nil {
		return nil, "contains " + sysext.ForbiddenOSRelease + ", which would replace the host's; rebuild the image without it"
	}
	if err := c.Match(rel, host.Release, host.Scope, host.Arch); err != nil {
		return nil, "incompatible with the host: " + err.Error()
	}
	return rel, ""
}
