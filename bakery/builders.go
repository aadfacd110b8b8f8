package bakery

import (
	"fmt"

	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/erofs"
	"github.com/sysext-bakery/bakery/sysext/mkfs"
	"github.com/sysext-bakery/bakery/sysext/squashfs"
)

// DefaultBuilder is the builder used when none is named, except for
// compressed erofs, which only mkfs.erofs writes.
const DefaultBuilder = "native"

// builders lists, per format, the builders that write it.
var builders = map[sysext.Format][]sysext.Builder{
	sysext.Squashfs: {squashfs.Builder{}, mkfs.Mksquashfs{}},
	sysext.Erofs:    {erofs.Builder{}, mkfs.MkfsErofs{}},
}

// SelectBuilder returns the builder named by --builder for the image opts
// describe; an empty name picks the default.
func SelectBuilder(name string, opts sysext.BuildOptions) (sysext.Builder, error) {
	format := opts.Format
	if format == "" {
		format = sysext.Squashfs
	}
	if name == "" {
		name = DefaultBuilder
		if format == sysext.Erofs && opts.Compression != "" && opts.Compression != sysext.None {
			name = mkfs.MkfsErofs{}.Name()
		}
	}
	candidates, ok := builders[format]
	if !ok {
		return nil, fmt.Errorf("format %q is not supported (use squashfs or erofs)", format)
	}
	var names []string
	for _, b := range candidates {
		if b.Name() == name {
			return b, nil
		}
		names = append(names, b.Name())
	}
	return nil, fmt.Errorf("builder %q cannot write %s (use one of %v)", name, format, names)
}
