//go:build cgo

package squashfs

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/tree"
)

// TestSizeMatchesMksquashfs builds the Go toolchain's encoding/ and
// net/http/ sources (~9 MB, 1.5 MB compressed) with mksquashfs and
// natively at the same settings: the cgo build compresses with the
// libraries mksquashfs uses, so the images must be within 2% of each other.
func TestSizeMatchesMksquashfs(t *testing.T) {
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		t.Skip("needs mksquashfs (squashfs-tools)")
	}
	src := t.TempDir()
	for _, d := range []string{"encoding", "net/http"} {
		cp := exec.Command("cp", "-a", filepath.Join(runtime.GOROOT(), "src", d), filepath.Join(src, filepath.Base(d)))
		if b, err := cp.CombinedOutput(); err != nil {
			t.Fatalf("copy %s: %v\n%s", d, err, b)
		}
	}
	root, err := tree.Read(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		comp  sysext.Compression
		level int
		args  []string
	}{
		{sysext.Zstd, 3, []string{"-comp", "zstd", "-Xcompression-level", "3"}},
		{sysext.Zstd, 15, []string{"-comp", "zstd", "-Xcompression-level", "15"}},
		{sysext.Gzip, 9, []string{"-comp", "gzip", "-Xcompression-level", "9"}},
		{sysext.Xz, 0, []string{"-comp", "xz"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			ref := filepath.Join(t.TempDir(), "ref.raw")
			cmd := exec.Command("mksquashfs", append([]string{src, ref, "-noappend", "-all-root", "-quiet", "-no-progress"}, tc.args...)...)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("mksquashfs: %v\n%s", err, b)
			}
			fi, err := os.Stat(ref)
			if err != nil {
				t.Fatal(err)
			}
			n, err := Write(context.Background(), &memFile{}, root, Options{Compression: tc.comp, Level: tc.level, AllRoot: true})
			if err != nil {
				t.Fatal(err)
			}
			ratio := float64(n) / float64(fi.Size())
			t.Logf("native %d bytes, mksquashfs %d bytes: %.4f×", n, fi.Size(), ratio)
			if ratio > 1.02 {
				t.Errorf("native image is %.3f× mksquashfs's, want at most 1.02×", ratio)
			}
		})
	}
}

// TestGzipBlocksMatchMksquashfs compresses one 128 KiB block of text at
// gzip levels 1, 6 and 9 and looks for the result in mksquashfs's image of
// a file holding that block: the cgo build deflates with zlib as
// mksquashfs does, so its blocks are mksquashfs's, byte for byte.
func TestGzipBlocksMatchMksquashfs(t *testing.T) {
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		t.Skip("needs mksquashfs (squashfs-tools)")
	}
	var block []byte
	for i := 0; len(block) < 128<<10; i++ {
		block = append(block, fmt.Sprintf("%d usr/lib/extension-release.d/extension-release.%x\n", i, i*i)...)
	}
	block = block[:128<<10]
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "block"), block, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, level := range []int{1, 6, 9} {
		ref := filepath.Join(t.TempDir(), "ref.raw")
		cmd := exec.Command("mksquashfs", src, ref, "-noappend", "-all-root", "-quiet", "-no-progress",
			"-comp", "gzip", "-Xcompression-level", strconv.Itoa(level))
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("mksquashfs: %v\n%s", err, b)
		}
		image, err := os.ReadFile(ref)
		if err != nil {
			t.Fatal(err)
		}
		k, err := newCodec(sysext.Gzip, level, 128<<10)
		if err != nil {
			t.Fatal(err)
		}
		c, err := k.newDataCompressor()
		if err != nil {
			t.Fatal(err)
		}
		out, ok, err := c.compress(make([]byte, 0, len(block)), block)
		if err != nil || !ok {
			t.Fatalf("level %d: compress = %v, %v", level, ok, err)
		}
		if !bytes.Contains(image, out) {
			t.Errorf("level %d: the %d-byte block bakery compressed is not in mksquashfs's image", level, len(out))
		}
	}
}
