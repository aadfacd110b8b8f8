package bakery

import (
	"context"
	"fmt"
	"io/fs"

	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/erofs"
	"github.com/sysext-bakery/bakery/sysext/mkfs"
	"github.com/sysext-bakery/bakery/sysext/squashfs"
	"github.com/sysext-bakery/bakery/sysext/tree"
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

// checkBuild refuses image options bake must not use or the builder b
// cannot, so that a bake fails on them before fetching anything. Bake
// writes no compressed erofs: bakery's own erofs reader (image inspect,
// push) reads only uncompressed images. Squashfs compression and level
// are checked by the native writer writing an empty tree to nowhere, the
// one place its rules live; mksquashfs's own restrictions by its command
// line.
func checkBuild(b sysext.Builder, opts sysext.BuildOptions) error {
	switch opts.Format {
	case sysext.Erofs:
		if opts.Compression != "" && opts.Compression != sysext.None {
			return fmt.Errorf("--format erofs --compression %s: bakery's own reader (image inspect, push) cannot read compressed erofs, so bake writes only uncompressed erofs; use --compression none, or --format squashfs to compress", opts.Compression)
		}
		if opts.Level != 0 {
			return fmt.Errorf("--level %d: uncompressed erofs takes no level; drop --level, or use --format squashfs to compress", opts.Level)
		}
	case "", sysext.Squashfs:
		empty := &tree.Node{Mode: fs.ModeDir | 0o755}
		if _, err := squashfs.Write(context.Background(), discardAt{}, empty, squashfs.Options{Compression: opts.Compression, Level: opts.Level, Epoch: opts.Epoch}); err != nil {
			return fmt.Errorf("squashfs: %w", err)
		}
		if _, ok := b.(mkfs.Mksquashfs); ok {
			if _, err := mkfs.MksquashfsArgs("", "", opts); err != nil {
				return err
			}
		}
	}
	return nil
}

// discardAt is an io.WriterAt that keeps nothing.
type discardAt struct{}

func (discardAt) WriteAt(p []byte, _ int64) (int, error) { return len(p), nil }
