package ddi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/google/uuid"
	"golang.org/x/sys/unix"

	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/verity"
	"github.com/sysext-bakery/bakery/sysext/veritysig"
)

// Layout of the DDIs bakery writes, in sectors: the protective MBR, the
// GPT header and its 128 entries of 128 bytes, then the partitions, each
// aligned to 4096 bytes as systemd-repart aligns them, then the backup
// entries and header; the disk's size is a multiple of 4096 bytes.
const (
	entriesSectors = 128 * 128 / Sector
	headSectors    = 40 // 2+32 rounded up to 4096 bytes
	tailSectors    = entriesSectors + 1
	align          = 4096
)

// Builder builds a DDI: Inner writes the file system image, which becomes
// the root partition. The extension's architecture (the partitions'
// types) is the ARCHITECTURE= of the tree's extension-release, the
// host's when it is missing, _any or the tree has no single readable
// extension-release (as systemd-repart defaults to the host's). With
// opts.Signing the root hash is signed.
type Builder struct {
	Inner sysext.Builder
}

// Name is the inner builder's.
func (b Builder) Name() string { return b.Inner.Name() }

// Compressions are the inner builder's.
func (b Builder) Compressions() []sysext.Compression { return b.Inner.Compressions() }

// Check is the inner builder's.
func (b Builder) Check(opts sysext.BuildOptions) error { return b.Inner.Check(opts) }

// Build writes the DDI of the tree at srcDir to dst.
func (b Builder) Build(ctx context.Context, srcDir, dst string, opts sysext.BuildOptions) error {
	arch, err := treeArch(srcDir)
	if err != nil {
		return err
	}
	if err := b.Inner.Build(ctx, srcDir, dst, opts); err != nil {
		return err
	}
	f, err := os.OpenFile(dst, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := Assemble(ctx, f, arch, opts.Signing); err != nil {
		return fmt.Errorf("ddi %s: %w", dst, err)
	}
	return f.Close()
}

// treeArch reads the architecture a staged tree's extension-release names,
// or the host's.
func treeArch(srcDir string) (string, error) {
	_, _, rel, _ := sysext.DetectRelease(os.DirFS(srcDir)) // none: the host's
	arch := rel["ARCHITECTURE"]
	if arch == "" || arch == "_any" {
		arch = sysext.HostArch().Name
	}
	if _, ok := partitionTypes[arch]; !ok {
		return "", fmt.Errorf("ddi: architecture %q (ARCHITECTURE= of the extension-release, else the host's) has no DDI partition types", arch)
	}
	return arch, nil
}

// Assemble turns f, which holds a file-system image from offset 0, into a
// DDI for arch in place: the image becomes the root partition (padded to
// 4096 bytes), followed by its hash tree and, with s, the signature. The
// image is moved by inserting the head's range in front of it where the
// file system allows (ext4, xfs: no data is copied), else copied.
func Assemble(ctx context.Context, f *os.File, arch string, s *sysext.Signing) error {
	var types [3]uuid.UUID
	for i, role := range roles {
		t, err := PartitionType(arch, role)
		if err != nil {
			return err
		}
		types[i] = t
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	fsSize := fi.Size()
	if fsSize == 0 {
		return errors.New("the file system image is empty")
	}
	rootSize := roundUp(fsSize, align)
	if err := shiftRight(f, fsSize, headSectors*Sector); err != nil {
		return fmt.Errorf("make room for the partition table: %w", err)
	}
	rootStart := int64(headSectors * Sector)
	verityStart := rootStart + rootSize
	if err := f.Truncate(verityStart); err != nil { // zero padding
		return err
	}
	tree, err := verity.Format(ctx, io.NewSectionReader(f, rootStart, rootSize), rootSize, io.NewOffsetWriter(f, verityStart), verity.Options{})
	if err != nil {
		return err
	}
	end := verityStart + tree.HashSize
	parts := []*gpt.Partition{
		partition(1, types[0], uuidOf(tree.RootHash[:16]), Label(arch, RoleRoot), rootStart, rootSize, flagReadOnly),
		partition(2, types[1], uuidOf(tree.RootHash[16:]), Label(arch, RoleVerity), verityStart, tree.HashSize, flagReadOnly),
	}
	if s != nil {
		doc, err := veritysig.NewDoc(tree.RootHash, s.Key, s.Cert)
		if err != nil {
			return err
		}
		js, err := doc.Marshal()
		if err != nil {
			return err
		}
		sigSize := roundUp(int64(len(js)), align)
		if _, err := f.WriteAt(js, end); err != nil {
			return err
		}
		parts = append(parts, partition(3, types[2], derivedUUID(tree.RootHash, "signature"), Label(arch, RoleSignature), end, sigSize, 0))
		end += sigSize
	}
	size := roundUp(end+tailSectors*Sector, align)
	if err := f.Truncate(size); err != nil {
		return err
	}
	table := &gpt.Table{
		LogicalSectorSize:  Sector,
		PhysicalSectorSize: Sector,
		ProtectiveMBR:      true,
		GUID:               derivedUUID(tree.RootHash, "disk").String(),
		Partitions:         parts,
	}
	if err := table.Write(f, size); err != nil {
		return fmt.Errorf("write partition table: %w", err)
	}
	return nil
}

// partition is a GPT entry of size bytes from byte start.
func partition(index int, typ, id uuid.UUID, label string, start, size int64, attrs uint64) *gpt.Partition {
	return &gpt.Partition{
		Index:      index,
		Start:      uint64(start / Sector),
		End:        uint64((start+size)/Sector - 1),
		Size:       uint64(size),
		Type:       gpt.Type(strings.ToUpper(typ.String())),
		Name:       label,
		GUID:       id.String(),
		Attributes: attrs,
	}
}

// uuidOf spells 16 bytes as a UUID.
func uuidOf(b []byte) uuid.UUID {
	var u uuid.UUID
	copy(u[:], b)
	return u
}

func roundUp(n, to int64) int64 { return (n + to - 1) / to * to }

// shiftRight moves the first size bytes of f by bytes to the right,
// leaving zeros in front: by inserting a range (FALLOC_FL_INSERT_RANGE,
// no data copied) where the file system supports it, else by copying.
func shiftRight(f *os.File, size, by int64) error {
	err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_INSERT_RANGE, 0, by)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EINVAL) {
		return err
	}
	return shiftByCopy(f, size, by)
}

// shiftByCopy is shiftRight by copying 1 MiB at a time from the end.
func shiftByCopy(f *os.File, size, by int64) error {
	buf := make([]byte, 1<<20)
	for end := size; end > 0; {
		start := max(0, end-int64(len(buf)))
		b := buf[:end-start]
		if _, err := f.ReadAt(b, start); err != nil {
			return err
		}
		if _, err := f.WriteAt(b, start+by); err != nil {
			return err
		}
		end = start
	}
	_, err := f.WriteAt(make([]byte, min(by, size)), 0)
	return err
}
