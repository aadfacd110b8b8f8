package bakery

import (
	"fmt"

	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/mkfs"
)

// DefaultBuilder is the builder used when none is named.
const DefaultBuilder = "mksquashfs"

// SelectBuilder returns the builder named by --builder for a format; an
// empty name picks the default for the format.
func SelectBuilder(name string, format sysext.Format) (sysext.Builder, error) {
	if format == "" {
		format = sysext.Squashfs
	}
	if name == "" {
		name = DefaultBuilder
		if format == sysext.Erofs {
			name = "mkfs.erofs"
		}
	}
	builders := map[sysext.Format][]sysext.Builder{
		sysext.Squashfs: {mkfs.Mksquashfs{}},
		sysext.Erofs:    {mkfs.MkfsErofs{}},
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
