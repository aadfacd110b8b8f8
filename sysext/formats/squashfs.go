package formats

import (
	"io"
	"io/fs"

	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/mkfs"
	"github.com/sysext-bakery/bakery/sysext/squashfs"
)

// squashfsFormat is squashfs, bakery's default: written natively
// (sysext/squashfs) or by mksquashfs, with any compression.
type squashfsFormat struct{}

// Name and KernelType are "squashfs".
func (squashfsFormat) Name() string       { return "squashfs" }
func (squashfsFormat) KernelType() string { return "squashfs" }

// Detect looks for the superblock's magic.
func (squashfsFormat) Detect(r io.ReaderAt) bool { return squashfs.Detect(r) }

// Open reads an image with the native reader.
func (squashfsFormat) Open(r io.ReaderAt) (fs.FS, error) {
	rd, err := squashfs.Open(r)
	if err != nil {
		return nil, err
	}
	return rd, nil
}

// Reads is true: the native reader reads every compression the builders
// write.
func (squashfsFormat) Reads(sysext.Compression) bool { return true }

// Builders are the native writer, the default, and mksquashfs.
func (squashfsFormat) Builders() []sysext.Builder {
	return []sysext.Builder{squashfs.Builder{}, mkfs.Mksquashfs{}}
}
