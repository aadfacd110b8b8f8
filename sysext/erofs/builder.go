// Package erofs writes and reads uncompressed erofs images natively.
//
// The writer, Write, is hand-written (format.go, tree.go, layout.go,
// write.go) rather than built on github.com/erofs/go-erofs, whose writer
// has no tail packing (a file larger than a block keeps its last partial
// block in a block of its own) and no holes (sparse files are stored with
// zero blocks). It takes a tree (sysext/tree) and applies bakery's
// metadata (every time set to the epoch, owners kept or made root, device
// numbers in erofs's encoding, link counts) as it writes:
//
//   - the superblock with the fixed UUID sysext.ErofsUUID and the epoch as
//     build time, so that equal trees give equal bytes;
//   - compact inodes, extended ones where owners, link count or size do not
//     fit 16 or 32 bits; a hard-linked file is one inode with the link count
//     of its names in the tree;
//   - xattrs of the user., trusted. and security. namespaces (the ones
//     squashfs images carry; system.* ACLs are left out), inline after the
//     inode or, when several inodes share one and that saves room, once in
//     the shared xattr table;
//   - file, directory and symlink data in whole blocks, with the last
//     partial block stored right after the inode (tail packing,
//     FLAT_INLINE) when it fits in the inode's metadata block; inodes are
//     packed best fit into the metadata blocks so that these tails fill
//     them;
//   - files with holes (tree.Tree.Holes, as SEEK_HOLE reports them on the
//     host) as chunk-based files whose block map marks the holes, with the
//     largest chunk the holes are aligned to, so that a hole takes no
//     block.
//
// The reader, Open, wraps go-erofs's: an fs.FS with the full file mode,
// a walk that refuses directory loops and whose work is bounded by the
// image's size, the file count and the extension-release file, with no
// root and no external tool. It refuses compressed images, which go-erofs
// cannot read, saying so.
package erofs

import (
	"context"
	"fmt"
	"os"

	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/tree"
)

// Builder writes uncompressed erofs images natively.
type Builder struct{}

// Name is "native".
func (Builder) Name() string { return "native" }

// Compressions are none alone: the native builder does not compress.
func (Builder) Compressions() []sysext.Compression { return []sysext.Compression{sysext.None} }

// Check refuses a compression, a level and an epoch before 1970.
func (Builder) Check(opts sysext.BuildOptions) error {
	if opts.Compression != "" && opts.Compression != sysext.None {
		return fmt.Errorf("erofs: the native builder writes uncompressed erofs, not %s: use --compression none or --builder mkfs.erofs", opts.Compression)
	}
	if opts.Level != 0 {
		return fmt.Errorf("erofs: --level %d: uncompressed erofs takes no level; drop --level", opts.Level)
	}
	if err := checkEpoch(opts.Epoch); err != nil {
		return fmt.Errorf("erofs: %w", err)
	}
	return nil
}

// Build writes the erofs image of srcDir to dst (created or truncated). Only
// uncompressed images are written: opts.Compression must be empty or none.
func (b Builder) Build(ctx context.Context, srcDir, dst string, opts sysext.BuildOptions) error {
	if err := b.Check(opts); err != nil {
		return err
	}
	t, err := tree.Read(ctx, srcDir)
	if err != nil {
		return fmt.Errorf("erofs: %w", err)
	}
	return b.build(ctx, t, dst, " from "+srcDir, opts)
}

var _ sysext.TreeBuilder = Builder{}

// BuildTree writes the erofs image of t to dst, as Build does.
func (b Builder) BuildTree(ctx context.Context, t *tree.Tree, dst string, opts sysext.BuildOptions) error {
	if err := b.Check(opts); err != nil {
		return err
	}
	return b.build(ctx, t, dst, "", opts)
}

// build writes the image of t to dst, naming it and where it is from in
// errors.
func (b Builder) build(ctx context.Context, t *tree.Tree, dst, from string, opts sysext.BuildOptions) error {
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("erofs: create image: %w", err)
	}
	defer f.Close()
	if err := Write(ctx, f, t, Options{Epoch: opts.Epoch, AllRoot: opts.AllRoot}); err != nil {
		return fmt.Errorf("erofs: write %s%s: %w", dst, from, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("erofs: close %s: %w", dst, err)
	}
	return nil
}
