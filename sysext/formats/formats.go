// Package formats is the table of the image formats bakery knows, each a
// sysext.Format over its own packages.
//
// Adding a format is one file here implementing sysext.Format over the
// format's packages (see squashfs.go) and one line in the table. Whatever
// chooses, recognises, reads, builds or mounts an image by its format
// (--format and --builder, bake's checks, image inspect, push's media
// types, merge's mounts) goes through the table, so nothing else changes.
package formats

import (
	"fmt"
	"io"
	"slices"

	"github.com/sysext-bakery/bakery/internal/join"
	"github.com/sysext-bakery/bakery/sysext"
)

// all is the table, the default format first.
var all = []sysext.Format{
	squashfsFormat{},
	erofsFormat{},
	ddiFormat{},
}

// All returns the formats, the default first.
func All() []sysext.Format { return slices.Clone(all) }

// Default is the format of images when none is named: squashfs.
func Default() sysext.Format { return all[0] }

// Names returns the formats' names, the default first.
func Names() []string {
	names := make([]string, len(all))
	for i, f := range all {
		names[i] = f.Name()
	}
	return names
}

// ByName finds a format by name; "" is the default.
func ByName(name string) (sysext.Format, error) {
	if name == "" {
		return Default(), nil
	}
	for _, f := range all {
		if f.Name() == name {
			return f, nil
		}
	}
	return nil, fmt.Errorf("format %q is not supported (use %s)", name, join.Or(Names()))
}

// Detect tells the format of the image r by its magic.
func Detect(r io.ReaderAt) (sysext.Format, error) {
	for _, f := range all {
		if f.Detect(r) {
			return f, nil
		}
	}
	if _, err := r.ReadAt(make([]byte, 1), 0); err != nil && err != io.EOF {
		return nil, fmt.Errorf("read image: %w", err)
	}
	return nil, fmt.Errorf("not a %s image (no known superblock magic)", join.Or(Names()))
}
