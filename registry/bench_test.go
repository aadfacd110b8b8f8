package registry

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// BenchmarkPush measures Push of one 32 MiB image to the embedded
// registry over loopback, into a new repository each time (no blob reuse).
func BenchmarkPush(b *testing.B) {
	dir := bakeDir(b, "bench", "1.0", 32<<20, "x86-64")
	host := startEmbedded(b, b.TempDir())
	fi, err := os.Stat(filepath.Join(dir, "bench-1.0-x86-64.raw"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(fi.Size())
	for i := 0; b.Loop(); i++ {
		if _, err := Push(context.Background(), host+"/bench/p"+strconv.Itoa(i), []string{dir}, WithoutCatalog()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPull measures Pull (download, hash, fsync, rename) of one
// 32 MiB image from the embedded registry over loopback.
func BenchmarkPull(b *testing.B) {
	dir := bakeDir(b, "bench", "1.0", 32<<20, "x86-64")
	host := startEmbedded(b, b.TempDir())
	res, err := Push(context.Background(), host+"/bench/pull", []string{dir}, WithoutCatalog())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(res.Images[0].Size)
	out := b.TempDir()
	for b.Loop() {
		if _, err := Pull(context.Background(), host+"/bench/pull:1.0", WithArch("x86-64"), WithOutDir(out)); err != nil {
			b.Fatal(err)
		}
	}
}
