package release

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sysext-bakery/bakery/internal/atomicfile"
	"github.com/sysext-bakery/bakery/internal/digest"
	"github.com/sysext-bakery/bakery/internal/sha256sums"
	"github.com/sysext-bakery/bakery/internal/smallfile"
	"github.com/sysext-bakery/bakery/sign/pgp"
	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/inspect"
)

// Options say how a release directory is written.
type Options struct {
	// BaseURL is where the directory is served (CheckURL).
	BaseURL string
	// Key signs SHA256SUMS; without it the directory is unsigned and its
	// transfer definitions say Verify=no.
	Key *pgp.PrivateKey
	// SignTime dates a new signature (the zero time: now).
	SignTime time.Time
}

// Image is one image of a release directory.
type Image struct {
	File    string `json:"file"`
	Name    string `json:"name"`
	Class   string `json:"class"`
	Version string `json:"version"`
	Arch    string `json:"architecture"`
	SHA256  string `json:"sha256"`
	// Added is set for an image this release copied in.
	Added bool `json:"added"`
}

// Result is what Write did.
type Result struct {
	Dir    string  `json:"dir"`
	Images []Image `json:"images"`
	// Extensions are the names with a transfer definition, sorted.
	Extensions []string `json:"extensions"`
	// Signed tells whether SHA256SUMS.gpg signs the SHA256SUMS written,
	// Fingerprint by which key, and Resigned whether this release made the
	// signature (rather than keeping one that still verified).
	Signed      bool   `json:"signed"`
	Fingerprint string `json:"fingerprint,omitempty"`
	Resigned    bool   `json:"resigned"`
	// Warnings are notes for the operator, such as entries dropped from
	// SHA256SUMS because their files were removed.
	Warnings []string `json:"warnings,omitempty"`
}

// Write releases the images into dir, creating it when missing: images
// from elsewhere are copied in (an image of the same file name already
// there must have the same bytes), images already in dir are kept, and
// every image is listed in SHA256SUMS, which is signed with opts.Key.
// Inputs are image files or directories, whose NAME-VERSION-ARCH.raw files
// are taken (checked against a SHA256SUMS beside them, as bake writes).
//
// Everything is checked before anything is written: each image's
// extension-release must agree with its file name, each image already
// listed must still have the sha256 SHA256SUMS gives it, and no
// extension's pattern may match another's images. Each file is replaced
// atomically, images first and SHA256SUMS and its signature last, so a
// node never finds SHA256SUMS naming an image that is not there. Concurrent
// releases into one directory wait for each other.
func Write(dir string, inputs []string, opts Options) (*Result, error) {
	u, err := CheckURL(opts.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("--base-url: %w", err)
	}
	baseURL := DirURL(u)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	atomicfile.RemoveStaleIn(dir)

	res := &Result{Dir: dir, Images: []Image{}, Extensions: []string{}}
	old, err := readSums(dir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, SignatureFile)); err == nil && opts.Key == nil {
		return nil, fmt.Errorf("%s is signed (%s): release into it with --gpg-key, or its nodes, which verify, would refuse it", dir, SignatureFile)
	}

	// The images already in dir, each checked against its SHA256SUMS line.
	present := map[string]Image{}
	files, err := imageFiles(dir)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		img, err := readImage(filepath.Join(dir, f))
		if err != nil {
			return nil, err
		}
		if want, listed := old[f]; listed && want != img.SHA256 {
			return nil, fmt.Errorf("%s: sha256 %s differs from %s's %s: the image changed after it was released; restore it, or remove it and its line", filepath.Join(dir, f), img.SHA256, SumsFile, want)
		}
		present[f] = img
	}

	// The images to copy in.
	type copyIn struct {
		src string
		img Image
	}
	var copies []copyIn
	for _, in := range inputs {
		paths, err := inputImages(in, dir)
		if err != nil {
			return nil, err
		}
		for _, p := range paths {
			img, err := readImage(p)
			if err != nil {
				return nil, err
			}
			if have, ok := present[img.File]; ok {
				if have.SHA256 != img.SHA256 {
					return nil, fmt.Errorf("%s: %s holds another image of that name (sha256 %s, not %s); a released version is never replaced: bake a new version", p, filepath.Join(dir, img.File), have.SHA256, img.SHA256)
				}
				continue
			}
			img.Added = true
			present[img.File] = img
			copies = append(copies, copyIn{p, img})
		}
	}

	// Extensions and their transfer definitions.
	classes := map[string]sysext.Class{}
	for _, f := range slices.Sorted(maps.Keys(present)) {
		img := present[f]
		c, _ := sysext.ClassByName(img.Class)
		if have, ok := classes[img.Name]; ok && have.Name != c.Name {
			return nil, fmt.Errorf("%s: extension %s is a %s here but a %s in other images of %s", f, img.Name, c.Name, have.Name, dir)
		}
		classes[img.Name] = c
		res.Images = append(res.Images, img)
	}
	names := slices.Sorted(maps.Keys(classes))
	if err := checkPatterns(names); err != nil {
		return nil, err
	}
	defs := map[string][]byte{}
	for _, n := range names {
		body := Transfer{Name: n, Class: classes[n], BaseURL: baseURL, Verify: opts.Key != nil}.Render()
		for _, f := range DefinitionFiles(n) {
			defs[f] = body
		}
	}
	for _, f := range DefinitionFiles(Noop) {
		defs[f] = NoopTransfer()
	}
	res.Extensions = names

	// SHA256SUMS: every image, every definition, and whatever else the
	// operator listed that is still there unchanged.
	sums := map[string]string{}
	for f, img := range present {
		sums[f] = img.SHA256
	}
	for f, body := range defs {
		h := sha256.Sum256(body)
		sums[f] = hex.EncodeToString(h[:])
	}
	for _, f := range slices.Sorted(maps.Keys(old)) {
		if _, ok := sums[f]; ok {
			continue
		}
		if f == SumsFile || f == SignatureFile { // cannot list themselves (a sha256sum of the whole folder does)
			res.Warnings = append(res.Warnings, fmt.Sprintf("%s listed %s: its line is dropped", SumsFile, f))
			continue
		}
		h, _, err := digest.File(filepath.Join(dir, f))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			res.Warnings = append(res.Warnings, fmt.Sprintf("%s is gone: its line is dropped from %s", f, SumsFile))
		case err != nil:
			return nil, err
		case h.Hex != old[f]:
			return nil, fmt.Errorf("%s: sha256 %s differs from %s's %s: restore it, or remove it and its line", filepath.Join(dir, f), h.Hex, SumsFile, old[f])
		default:
			sums[f] = h.Hex
		}
	}
	sumsData := sha256sums.Render(sums)

	var sig []byte
	if opts.Key != nil {
		res.Signed, res.Fingerprint = true, opts.Key.Fingerprint()
		sig = keptSignature(dir, sumsData, opts.Key)
		if sig == nil {
			at := opts.SignTime
			if at.IsZero() {
				at = time.Now()
			}
			if sig, err = opts.Key.Sign(sumsData, at); err != nil {
				return nil, err
			}
			res.Resigned = true
		}
	}

	// Write: images, definitions, then SHA256SUMS and its signature.
	for _, c := range copies {
		if err := copyImage(c.src, filepath.Join(dir, c.img.File), c.img.SHA256); err != nil {
			return nil, err
		}
	}
	for _, f := range slices.Sorted(maps.Keys(defs)) {
		if err := writeIfChanged(filepath.Join(dir, f), defs[f]); err != nil {
			return nil, err
		}
	}
	if err := writeIfChanged(filepath.Join(dir, SumsFile), sumsData); err != nil {
		return nil, err
	}
	if sig != nil {
		if err := writeIfChanged(filepath.Join(dir, SignatureFile), sig); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// readImage inspects an image and checks that its file name is the one
// its extension-release gives: NAME-VERSION-ARCH.raw.
func readImage(p string) (Image, error) {
	info, err := inspect.Image(p)
	if err != nil {
		return Image{}, err
	}
	c, err := sysext.ClassByName(info.Class)
	if err != nil {
		return Image{}, fmt.Errorf("%s: %w", p, err)
	}
	img := Image{File: filepath.Base(p), Name: info.Name, Class: c.Name, Arch: info.Release["ARCHITECTURE"], SHA256: info.SHA256}
	if err := sysext.CheckName(img.Name); err != nil {
		return Image{}, fmt.Errorf("%s: extension-release.%s: %w", p, img.Name, err)
	}
	if img.Name == Noop {
		return Image{}, fmt.Errorf("%s: an extension may not be called %q in a release directory: the name is taken by the definition that matches nothing", p, Noop)
	}
	if _, err := sysext.ArchByName(img.Arch); err != nil {
		return Image{}, fmt.Errorf("%s: ARCHITECTURE: %w (systemd-sysupdate picks images by architecture)", p, err)
	}
	img.Version = info.Release[c.VersionField]
	if img.Version == "" {
		img.Version = strings.TrimSuffix(strings.TrimPrefix(img.File, img.Name+"-"), "-"+img.Arch+".raw")
	}
	if err := CheckVersion(img.Version, img.Arch); err != nil {
		return Image{}, fmt.Errorf("%s: %w", p, err)
	}
	if want := sysext.ImageFile(img.Name, img.Version, img.Arch); img.File != want {
		return Image{}, fmt.Errorf("%s: its extension-release says %s (%s, %s=%s, ARCHITECTURE=%s): rename the file or rebake it", p, want, img.Name, c.VersionField, img.Version, img.Arch)
	}
	return img, nil
}

// checkPatterns refuses names of which one is another's prefix followed by
// "-": systemd-sysupdate would take b-1.0-x86-64.raw for version "b-1.0"
// of extension "a" when a-b is released beside a.
func checkPatterns(names []string) error {
	for _, a := range names {
		for _, b := range names {
			if strings.HasPrefix(b, a+"-") {
				return fmt.Errorf("extensions %s and %s cannot share a release directory: systemd-sysupdate's pattern %s also matches %s's images; release them in separate directories", a, b, Transfer{Name: a}.Pattern(), b)
			}
		}
	}
	return nil
}

// imageFiles lists the *.raw files of dir.
func imageFiles(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".raw") && !strings.HasPrefix(e.Name(), ".") {
			if !e.Type().IsRegular() {
				return nil, fmt.Errorf("%s: not a regular file", filepath.Join(dir, e.Name()))
			}
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// inputImages expands one input: an image file, or a directory whose
// images are checked against a SHA256SUMS beside them. The release
// directory itself adds nothing (its images are always taken).
func inputImages(in, dir string) ([]string, error) {
	fi, err := os.Stat(in)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return []string{in}, nil
	}
	if same, err := sameDir(in, dir); err != nil || same {
		return nil, err
	}
	files, err := imageFiles(in)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s holds no .raw image", in)
	}
	sums, err := readSums(in)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = filepath.Join(in, f)
		if want, ok := sums[f]; ok {
			h, _, err := digest.File(out[i])
			if err != nil {
				return nil, err
			}
			if h.Hex != want {
				return nil, fmt.Errorf("%s: sha256 %s differs from %s's %s: the image is damaged; bake it again", out[i], h.Hex, filepath.Join(in, SumsFile), want)
			}
		}
	}
	return out, nil
}

// sameDir tells whether a and b are the same directory.
func sameDir(a, b string) (bool, error) {
	fa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	fb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(fa, fb), nil
}

// readSums reads dir's SHA256SUMS, empty when there is none; a fifo or a
// file larger than a node would download (maxIndexSize) is refused.
func readSums(dir string) (map[string]string, error) {
	p := filepath.Join(dir, SumsFile)
	data, err := smallfile.Read(p, maxIndexSize)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	sums, err := sha256sums.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	for name := range sums {
		if name != filepath.Base(name) || strings.HasPrefix(name, ".") {
			return nil, fmt.Errorf("%s: entry %q is not a file of the directory", p, name)
		}
	}
	return sums, nil
}

// keptSignature is dir's SHA256SUMS.gpg when it signs sums with key, so
// that releasing what is already released changes no byte; nil otherwise.
func keptSignature(dir string, sums []byte, key *pgp.PrivateKey) []byte {
	sig, err := smallfile.Read(filepath.Join(dir, SignatureFile), maxIndexSize)
	if err != nil {
		return nil
	}
	if _, err := key.Public().Verify(sums, sig); err != nil {
		return nil
	}
	return sig
}

// copyImage copies src to dst atomically, checking that the bytes copied
// have the sha256 inspected (the source may change in between).
func copyImage(src, dst, sha string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := atomicfile.Create(dst)
	if err != nil {
		return err
	}
	defer out.Abort()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(out, h), in); err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sha {
		return fmt.Errorf("%s changed while it was released (sha256 %s, then %s): release it again", src, sha, got)
	}
	return out.Commit(0o644)
}

// writeIfChanged replaces p with data atomically unless it holds data
// already (what is larger, or not a regular file, does not).
func writeIfChanged(p string, data []byte) error {
	if have, err := smallfile.Read(p, int64(len(data))); err == nil && bytes.Equal(have, data) {
		return nil
	}
	return atomicfile.WriteFile(p, data, 0o644)
}

// lockDir takes an exclusive lock on dir, waiting for it.
func lockDir(dir string) (func(), error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}
