package sysext

import (
	"context"
	"fmt"
	"io"
)

// Format is the file system of an extension image.
type Format string

// The image formats bakery writes.
const (
	Squashfs Format = "squashfs"
	Erofs    Format = "erofs"
)

// Compression names the block compressor of an image.
type Compression string

// The compressors bakery knows; not every builder supports every one.
const (
	Zstd Compression = "zstd"
	Gzip Compression = "gzip"
	Xz   Compression = "xz"
	Lz4  Compression = "lz4"
	None Compression = "none"
)

// BuildOptions say how a staged tree becomes an image. The zero value of
// Level means the compressor's default.
type BuildOptions struct {
	Format      Format
	Compression Compression
	Level       int
	// Epoch is the time in seconds since 1970 given to every inode and to
	// the superblock, so that the same tree gives the same bytes.
	Epoch int64
	// AllRoot makes every file owned by root:root.
	AllRoot bool
}

// Builder writes a read-only file-system image of a staged directory tree.
// Each image writer (native or a wrapped external tool) is one Builder.
type Builder interface {
	// Name is the builder's name as --builder spells it.
	Name() string
	// Build writes the image of the tree rooted at srcDir to dst, a new
	// file the caller owns: the builder writes it but does not rename,
	// sync or remove it.
	Build(ctx context.Context, srcDir, dst string, opts BuildOptions) error
}

// ErofsUUID is the file-system UUID of every erofs image bakery builds,
// natively or with mkfs.erofs, so that equal trees give equal bytes.
var ErofsUUID = [16]byte{0xd7, 0xa5, 0xc6, 0xf0, 0x5a, 0x1e, 0x4b, 0x3a, 0x9c, 0x1d}

// squashfs and erofs superblock magics, as found on disk.
var (
	squashfsMagic = []byte("hsqs")
	erofsMagic    = []byte{0xe2, 0xe1, 0xf5, 0xe0}
)

// erofsSuperblockOffset is where the erofs superblock (and its magic) starts.
const erofsSuperblockOffset = 1024

// DetectFormat tells an image's file system from its superblock magic.
func DetectFormat(r io.ReaderAt) (Format, error) {
	head := make([]byte, erofsSuperblockOffset+4)
	n, err := r.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("read superblock: %w", err)
	}
	head = head[:n]
	switch {
	case len(head) >= 4 && string(head[:4]) == string(squashfsMagic):
		return Squashfs, nil
	case len(head) >= erofsSuperblockOffset+4 && string(head[erofsSuperblockOffset:]) == string(erofsMagic):
		return Erofs, nil
	}
	return "", fmt.Errorf("not a squashfs or erofs image (no known superblock magic)")
}
