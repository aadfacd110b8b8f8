package sysext

import (
	"context"
	"crypto"
	"crypto/x509"

	"github.com/sysext-bakery/bakery/sysext/tree"
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
// Compression means the builder's default, of Level the compressor's.
type BuildOptions struct {
	Compression Compression
	Level       int
	// Epoch is the time in seconds since 1970 given to every inode and to
	// the superblock, so that the same tree gives the same bytes.
	Epoch int64
	// AllRoot makes every file owned by root:root.
	AllRoot bool
	// Signing signs the image's dm-verity root hash, for formats that
	// carry a signature (ddi: the verity-sig partition); nil leaves the
	// image unsigned. Other formats ignore it: the pipeline writes their
	// signatures beside them.
	Signing *Signing
}

// Signing is a private key and its X.509 certificate, which sign a
// dm-verity root hash as systemd checks it (in /etc/verity.d/).
type Signing struct {
	Key  crypto.Signer
	Cert *x509.Certificate
}

// Builder writes a read-only file-system image of a staged directory tree
// in one format. Each image writer (native or a wrapped external tool) is
// one Builder; a Format lists its own.
type Builder interface {
	// Name is the builder's name as --builder spells it.
	Name() string
	// Compressions are the compressions it writes, its default first.
	Compressions() []Compression
	// Check refuses, before any work, options the builder cannot write:
	// a compression it lacks, a level out of the compressor's range, an
	// epoch the format cannot store.
	Check(opts BuildOptions) error
	// Build writes the image of the tree rooted at srcDir to dst, a new
	// file the caller owns: the builder writes it but does not rename,
	// sync or remove it.
	Build(ctx context.Context, srcDir, dst string, opts BuildOptions) error
}

// ErofsUUID is the file-system UUID of every erofs image bakery builds,
// natively or with mkfs.erofs, so that equal trees give equal bytes.
var ErofsUUID = [16]byte{0xd7, 0xa5, 0xc6, 0xf0, 0x5a, 0x1e, 0x4b, 0x3a, 0x9c, 0x1d}

// TreeBuilder is a Builder that also writes the image of a tree held in
// memory, so that bake, which builds the tree as it stages it, does not
// walk the staging directory again.
type TreeBuilder interface {
	Builder
	// BuildTree writes the image of t to dst, as Build does.
	BuildTree(ctx context.Context, t *tree.Tree, dst string, opts BuildOptions) error
}

// StreamBuilder is a TreeBuilder that also writes the image of a tree as a
// tree.Stream hands its files out, compressing them while the tree is
// still being staged.
type StreamBuilder interface {
	TreeBuilder
	// BuildStream writes the image of the tree s hands out to dst, as
	// Build does; it fails with tree.ErrOrder when the stream does.
	BuildStream(ctx context.Context, s tree.Stream, dst string, opts BuildOptions) error
}
