package ddi

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/verity"
	"github.com/sysext-bakery/bakery/sysext/veritysig"
)

// Image is the partitions of one architecture in a DDI.
type Image struct {
	r io.ReaderAt
	// Arch is the systemd architecture of the partitions.
	Arch string
	// Root is the root file system's partition.
	Root Partition
	// Verity and Signature are its hash tree's and signature's
	// partitions, nil when the DDI has none.
	Verity, Signature *Partition
}

// Open reads the partition table of the DDI r of size bytes and finds the
// partitions of arch. With arch "", it takes the host's architecture if
// the DDI has a root partition for it, else the only architecture it has.
// Two root (or verity, or signature) partitions of one architecture, a
// verity or signature partition without its root, or a signature without
// a verity partition are refused.
func Open(r io.ReaderAt, size int64, arch string) (*Image, error) {
	t, err := ReadTable(r, size)
	if err != nil {
		return nil, err
	}
	byArch := map[string]map[string]Partition{}
	for _, p := range t.Partitions {
		a, role, ok := roleOf(p.Type)
		if !ok {
			continue
		}
		if byArch[a] == nil {
			byArch[a] = map[string]Partition{}
		}
		if _, dup := byArch[a][role]; dup {
			return nil, fmt.Errorf("ddi: two %s partitions: which one is meant is ambiguous", Label(a, role))
		}
		byArch[a][role] = p
	}
	var have []string
	for a, parts := range byArch {
		if _, ok := parts[RoleRoot]; ok {
			have = append(have, a)
		}
	}
	slices.Sort(have)
	if arch == "" {
		switch host := sysext.HostArch().Name; {
		case slices.Contains(have, host):
			arch = host
		case len(have) == 1:
			arch = have[0]
		case len(have) == 0:
			return nil, errors.New("ddi: no root partition of a known architecture")
		default:
			return nil, fmt.Errorf("ddi: root partitions for %s, none for this host (%s)", strings.Join(have, ", "), host)
		}
	}
	parts := byArch[arch]
	root, ok := parts[RoleRoot]
	if !ok {
		if len(have) == 0 {
			return nil, fmt.Errorf("ddi: no root partition for %s (the disk has none of a known architecture)", arch)
		}
		return nil, fmt.Errorf("ddi: no root partition for %s (the disk has %s)", arch, strings.Join(have, ", "))
	}
	im := &Image{r: r, Arch: arch, Root: root}
	if v, ok := parts[RoleVerity]; ok {
		im.Verity = &v
	}
	if s, ok := parts[RoleSignature]; ok {
		if im.Verity == nil {
			return nil, fmt.Errorf("ddi: a %s partition without %s", Label(arch, RoleSignature), Label(arch, RoleVerity))
		}
		im.Signature = &s
	}
	return im, nil
}

// RootReader reads the root partition as a whole, unverified: for
// reading an image's metadata (image inspect, push), not for trusting it.
func (im *Image) RootReader() *io.SectionReader {
	return io.NewSectionReader(im.r, im.Root.Offset, im.Root.Size)
}

// SignatureDoc reads the signature partition's document, or nil without
// one.
func (im *Image) SignatureDoc() (*veritysig.Doc, error) {
	if im.Signature == nil {
		return nil, nil
	}
	n := min(im.Signature.Size, veritysig.MaxDocSize+1)
	b := make([]byte, n)
	if _, err := im.r.ReadAt(b, im.Signature.Offset); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("ddi: read %s: %w", im.Signature.Label, err)
	}
	doc, err := veritysig.ParseDoc(b)
	if err != nil {
		return nil, fmt.Errorf("ddi: %s: %w", Label(im.Arch, RoleSignature), err)
	}
	return doc, nil
}

// Protection is how a DDI's root file system is protected.
type Protection string

// The protections of a DDI, from strongest.
const (
	// Signed: a trusted certificate signed the root hash, and the hash
	// tree checks the data.
	Signed Protection = "signed"
	// Verity: the hash tree checks the data against the root hash the
	// DDI names (its signature document, else its partition UUIDs), which
	// no trusted certificate signed.
	Verity Protection = "verity"
	// Unprotected: no hash tree.
	Unprotected Protection = "unprotected"
)

// Verification is what Verify found.
type Verification struct {
	// Protection is the strongest protection that checked out.
	Protection Protection
	// RootHash is the verified root hash, in hex.
	RootHash string
	// Unsigned says why the DDI is not Signed, when it is not.
	Unsigned string
	// Data reads the root file system's bytes that were verified: the
	// blocks the hash tree covers (the whole partition when unprotected).
	Data *io.SectionReader
}

// Verify checks the DDI in userspace, as systemd with dm-verity would
// before mounting, for kernels without it: the root hash comes from the
// signature document (checked against the trusted certificates) or, when
// there is none, from the root and verity partitions' UUIDs (as
// systemd-repart sets them); the whole hash tree is then recomputed from
// the root partition and compared. Data that does not match its tree is
// an error; a signature that does not check out is not (Unsigned says
// why), so the caller decides by its policy.
func (im *Image) Verify(ctx context.Context, trusted []*x509.Certificate) (*Verification, error) {
	if im.Verity == nil {
		return &Verification{Protection: Unprotected, Unsigned: "the DDI has no " + Label(im.Arch, RoleVerity) + " partition", Data: im.RootReader()}, nil
	}
	v := &Verification{Protection: Verity}
	doc, err := im.SignatureDoc()
	if err != nil {
		return nil, err
	}
	root := append(im.Root.UUID[:], im.Verity.UUID[:]...)
	if doc != nil {
		root, _ = hex.DecodeString(doc.RootHash)
	}
	tree, err := verity.Verify(ctx, im.RootReader(), im.Root.Size, io.NewSectionReader(im.r, im.Verity.Offset, im.Verity.Size), im.Verity.Size, root)
	if err != nil {
		return nil, fmt.Errorf("ddi: %s: %w", Label(im.Arch, RoleRoot), err)
	}
	v.RootHash = hex.EncodeToString(tree.RootHash)
	v.Data = io.NewSectionReader(im.r, im.Root.Offset, int64(tree.DataBlocks)*verity.BlockSize)
	switch {
	case doc == nil:
		v.Unsigned = "the DDI has no " + Label(im.Arch, RoleSignature) + " partition"
	default:
		if _, err := doc.Check(tree.RootHash, trusted); err != nil {
			v.Unsigned = "signature: " + err.Error()
		} else {
			v.Protection = Signed
		}
	}
	return v, nil
}
