// Package erofs writes and reads uncompressed erofs images natively, on top
// of github.com/erofs/go-erofs.
//
// go-erofs builds the image; this package feeds it a staged host directory
// with bakery's metadata applied (every time set to the epoch, owners kept
// or made root, device numbers in erofs's encoding, directory link counts)
// and adds what go-erofs cannot do itself:
//
//   - host xattrs: read with llistxattr/lgetxattr and set through the
//     writer; only the user., trusted. and security. namespaces are copied
//     (the ones squashfs images carry too); system.* (ACLs) is left out.
//   - hard links: go-erofs gives every path its own inode. The first name
//     of an inode is written with the link count of all its names in the
//     tree; the later names are written as empty files, and once go-erofs
//     has finished, their directory entries are pointed at the first name's
//     inode (nid and file type) and the superblock's inode count is
//     corrected. Each later name leaves one unreferenced 32-byte inode
//     behind in the metadata area.
//   - a fixed UUID in the superblock (go-erofs writes none), so equal trees
//     give equal bytes.
//   - a trailing zero block when the image ends with an inode: fsck.erofs
//     1.5 and go-erofs's reader read past such an inode and fail.
//
// What go-erofs cannot express in a single uncompressed image: holes (a
// sparse file is stored with its holes as zero blocks: it reads back the
// same but takes its full size) and tail packing of large files (only files
// smaller than a block are stored inline), so images come out somewhat
// larger than mkfs.erofs's.
//
// The reader, Open, wraps go-erofs's: an fs.FS with the full file mode,
// a walk that refuses directory loops, the file count and the
// extension-release file, with no root and no external tool.
package erofs

import (
	"context"
	"fmt"
	"io"
	"os"

	goerofs "github.com/erofs/go-erofs"

	"github.com/sysext-bakery/bakery/sysext"
)

// Builder writes uncompressed erofs images with go-erofs.
type Builder struct{}

// Name is "native".
func (Builder) Name() string { return "native" }

// Build writes the erofs image of srcDir to dst (created or truncated). Only
// uncompressed images are written: opts.Compression must be empty or none.
func (Builder) Build(ctx context.Context, srcDir, dst string, opts sysext.BuildOptions) error {
	if err := checkOptions(opts); err != nil {
		return err
	}
	t, err := scan(ctx, srcDir, opts)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(dst, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("erofs: create image: %w", err)
	}
	defer f.Close()
	if err := write(f, t, opts.Epoch); err != nil {
		return fmt.Errorf("erofs: write %s from %s: %w", dst, srcDir, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("erofs: close %s: %w", dst, err)
	}
	return nil
}

// checkOptions refuses what the native erofs writer cannot do.
func checkOptions(opts sysext.BuildOptions) error {
	if opts.Format != "" && opts.Format != sysext.Erofs {
		return fmt.Errorf("erofs: the native erofs builder writes erofs, not %s: use --format erofs", opts.Format)
	}
	if opts.Compression != "" && opts.Compression != sysext.None {
		return fmt.Errorf("erofs: the native builder writes uncompressed erofs, not %s: use --compression none or --builder mkfs.erofs", opts.Compression)
	}
	if opts.Level != 0 {
		return fmt.Errorf("erofs: --level %d given, but the native builder does not compress: drop --level", opts.Level)
	}
	if opts.Epoch < 0 {
		return fmt.Errorf("erofs: epoch %d is before 1970: erofs stores unsigned times, give --epoch 0 or later", opts.Epoch)
	}
	return nil
}

// image is what write needs of the output: go-erofs streams and seeks back
// for the superblock; the hard-link pass reads and patches in place.
type image interface {
	io.WriteSeeker
	io.ReaderAt
	io.WriterAt
}

// write builds the image of t into img.
func write(img image, t *tree, epoch int64) error {
	w := goerofs.Create(img, goerofs.WithBuildTime(uint64(epoch), 0))
	if err := w.CopyFrom(t); err != nil {
		return err
	}
	for _, n := range t.withXattrs {
		for name, value := range n.xattrs {
			if err := w.Setxattr(n.abs(), name, value); err != nil {
				return fmt.Errorf("%s: xattr %s: %w", n.rel, name, err)
			}
		}
	}
	if err := w.Close(); err != nil {
		return err
	}
	return finish(img, t.links)
}
