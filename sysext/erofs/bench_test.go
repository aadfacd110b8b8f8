package erofs

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/sysext-bakery/bakery/sysext"
)

// benchTreeEnv names a directory BenchmarkWrite builds instead of its
// generated tree (make bench points it at a copy of /usr/local/go).
const benchTreeEnv = "BAKERY_BENCH_TREE"

// benchTree returns the tree to benchmark and its size in bytes.
func benchTree(b *testing.B) (string, int64) {
	dir := os.Getenv(benchTreeEnv)
	if dir == "" {
		dir = b.TempDir()
		data := randomBytes(1 << 20)
		for i := range 2000 {
			p := filepath.Join(dir, "usr", fmt.Sprintf("d%02d", i%40), fmt.Sprintf("f%04d", i))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				b.Fatal(err)
			}
			// Sizes from 0 to 256 KiB, about 60 MB in all.
			size := (i * i * 7919) % (len(data) / 4 / (1 + i%16))
			if err := os.WriteFile(p, data[:size], 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		total += fi.Size()
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return dir, total
}

// BenchmarkWrite measures the native writer on a tree ($BAKERY_BENCH_TREE
// or a generated one); the image size is reported as image-bytes.
func BenchmarkWrite(b *testing.B) {
	src, total := benchTree(b)
	dst := filepath.Join(b.TempDir(), "bench.raw")
	b.SetBytes(total)
	for b.Loop() {
		if err := (Builder{}).Build(context.Background(), src, dst, sysext.BuildOptions{AllRoot: true}); err != nil {
			b.Fatal(err)
		}
	}
	fi, err := os.Stat(dst)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(fi.Size()), "image-bytes")
}
