package formats

import (
	"io"
	"io/fs"

	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/erofs"
	"github.com/sysext-bakery/bakery/sysext/mkfs"
)

// erofsFormat is erofs: written natively (sysext/erofs, uncompressed) or
// by mkfs.erofs (also lz4).
type erofsFormat struct{}

// Name and KernelType are "erofs".
func (erofsFormat) Name() string       { return "erofs" }
func (erofsFormat) KernelType() string { return "erofs" }

// Detect looks for the superblock's magic.
func (erofsFormat) Detect(r io.ReaderAt) bool { return erofs.Detect(r) }

// Open reads an image with the native reader, which refuses compressed
// images.
func (erofsFormat) Open(r io.ReaderAt) (fs.FS, error) {
	im, err := erofs.Open(r)
	if err != nil {
		return nil, err
	}
	return im, nil
}

// Reads is true for uncompressed images alone.
func (erofsFormat) Reads(c sysext.Compression) bool { return c == "" || c == sysext.None }

// Builders are the native writer, the default, and mkfs.erofs.
func (erofsFormat) Builders() []sysext.Builder {
	return []sysext.Builder{erofs.Builder{}, mkfs.MkfsErofs{}}
}
