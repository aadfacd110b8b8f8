package squashfs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/tree"
)

// discard is an io.WriterAt that keeps nothing.
type discard struct{}

func (discard) WriteAt(p []byte, _ int64) (int, error) { return len(p), nil }

// benchSettings are the settings the benchmarks compare with mksquashfs.
var benchSettings = []struct {
	comp  sysext.Compression
	level int
}{
	{sysext.Zstd, 3}, {sysext.Zstd, 15}, {sysext.Gzip, 9}, {sysext.Xz, 0}, {sysext.Lz4, 0}, {sysext.None, 0},
}

// BenchmarkBuild builds the directory named by $SQUASHFS_BENCH_DIR (for
// example a copy of /usr/local/go) into a temporary file, reporting the
// image size; mksquashfs at the same settings is the reference.
func BenchmarkBuild(b *testing.B) {
	src := os.Getenv("SQUASHFS_BENCH_DIR")
	if src == "" {
		b.Skip("set SQUASHFS_BENCH_DIR to a directory tree to build")
	}
	for _, tc := range benchSettings {
		b.Run(fmt.Sprintf("%s-%d", tc.comp, tc.level), func(b *testing.B) {
			img := filepath.Join(b.TempDir(), "img.raw")
			for b.Loop() {
				if err := (Builder{}).Build(context.Background(), src, img, sysext.BuildOptions{Compression: tc.comp, Level: tc.level}); err != nil {
					b.Fatal(err)
				}
			}
			info, err := os.Stat(img)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(info.Size()), "image-bytes")
		})
	}
}

// BenchmarkWrite writes a generated 64 MiB tree of 2,000 files (a third
// incompressible) with the settings the benchmarks compare to mksquashfs.
func BenchmarkWrite(b *testing.B) {
	const size = 64 << 20
	root, err := tree.FromNode(bigTree(2000, size))
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range benchSettings {
		b.Run(fmt.Sprintf("%s-%d", tc.comp, tc.level), func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				if _, err := Write(context.Background(), discard{}, root, Options{Compression: tc.comp, Level: tc.level}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
