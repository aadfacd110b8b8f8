package sysext

import (
	"fmt"
	"io"
	"io/fs"
	"slices"

	"github.com/sysext-bakery/bakery/internal/join"
)

// Format is an image file system: how bakery recognises an image of it,
// reads it and builds it, and what the kernel mounts it as. Each format
// (squashfs, erofs; a DDI later) is one implementation; package
// sysext/formats holds the table of them.
type Format interface {
	// Name is the format as --format, image inspect's fstype, the
	// org.bakery.sysext.fstype annotation and the FORMAT of the OCI
	// layer media type application/vnd.bakery.CLASS.layer.v1.FORMAT
	// spell it.
	Name() string
	// KernelType is the file-system type the kernel mounts an image of
	// the format as.
	KernelType() string
	// Detect reports whether r holds an image of the format, by its
	// magic.
	Detect(r io.ReaderAt) bool
	// Open reads an image of the format as a file system, with bakery's
	// own reader.
	Open(r io.ReaderAt) (fs.FS, error)
	// Reads reports whether Open reads the images its builders write with
	// compression c ("" is a builder's default).
	Reads(c Compression) bool
	// Builders are the builders that write the format, the default first.
	Builders() []Builder
}

// SelectBuilder returns the builder of f called name, as --builder spells
// it. Without a name it is the first of f's builders that writes the
// compression c ("" is any builder's default): the default builder, unless
// only another one writes c; when none does, the default, whose Check
// then says why.
func SelectBuilder(f Format, name string, c Compression) (Builder, error) {
	builders := f.Builders()
	var names []string
	for _, b := range builders {
		if name == b.Name() || name == "" && (c == "" || slices.Contains(b.Compressions(), c)) {
			return b, nil
		}
		names = append(names, b.Name())
	}
	if name == "" {
		return builders[0], nil
	}
	return nil, fmt.Errorf("builder %q cannot write %s (use %s)", name, f.Name(), join.Or(names))
}
