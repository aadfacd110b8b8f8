package erofs

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"golang.org/x/sys/unix"

	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/tree"
)

func TestEncodeDev(t *testing.T) {
	tests := []struct {
		major, minor uint32
		want         uint32
		wantErr      bool
	}{
		{1, 3, 0x103, false},
		{4, 300, 0x10042c, false},
		{259, 70000, 0x11110370, false},
		{0xfff, 0xfffff, 0xffffffff, false},
		{0x1000, 0, 0, true},
		{0, 0x100000, 0, true},
	}
	for _, tt := range tests {
		got, err := encodeDev(tt.major, tt.minor)
		if (err != nil) != tt.wantErr {
			t.Errorf("encodeDev(%d, %d) error = %v, want error %v", tt.major, tt.minor, err, tt.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if got != tt.want {
			t.Errorf("encodeDev(%d, %d) = %#x, want %#x", tt.major, tt.minor, got, tt.want)
		}
		if back := decodeDev(got); back != [2]uint32{tt.major, tt.minor} {
			t.Errorf("decodeDev(encodeDev(%d, %d)) = %v", tt.major, tt.minor, back)
		}
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name    string
		opts    sysext.BuildOptions
		wantErr string
	}{
		{"zero", sysext.BuildOptions{}, ""},
		{"erofs none", sysext.BuildOptions{Compression: sysext.None, Epoch: 5, AllRoot: true}, ""},
		{"compressed", sysext.BuildOptions{Compression: sysext.Zstd}, "--builder mkfs.erofs"},
		{"level", sysext.BuildOptions{Level: 3}, "uncompressed erofs takes no level; drop --level"},
		{"negative epoch", sysext.BuildOptions{Epoch: -1}, "--epoch 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Builder{}.Check(tt.opts)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Check = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

// writeTree creates files (content by path; a path ending in "/" is a
// directory, "->target" a symlink) under a new directory and returns it.
func writeTree(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, data := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case strings.HasSuffix(p, "/"):
			err = os.MkdirAll(full, 0o755)
		case strings.HasPrefix(data, "->"):
			err = os.Symlink(data[2:], full)
		default:
			err = os.WriteFile(full, []byte(data), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestReproducible builds equal trees made at different times, in a
// different order, in different places: the images must be byte-identical,
// carry the fixed UUID and the epoch, and differ when the epoch does.
func TestReproducible(t *testing.T) {
	files := map[string]string{
		"usr/bin/a":          strings.Repeat("a", 9000),
		"usr/lib/b":          "b",
		"usr/lib/l":          "->../bin/a",
		"usr/share/empty/":   "",
		"usr/share/data.txt": "data",
	}
	newTree := func() string {
		dir := writeTree(t, files)
		// A hard link and an xattr, when the file system has them.
		if err := os.Link(filepath.Join(dir, "usr/bin/a"), filepath.Join(dir, "usr/lib/a-link")); err != nil {
			t.Fatal(err)
		}
		if err := unix.Lsetxattr(filepath.Join(dir, "usr/lib/b"), "user.x", []byte("1"), 0); err != nil && !errors.Is(err, unix.ENOTSUP) {
			t.Fatal(err)
		}
		return dir
	}
	opts := sysext.BuildOptions{Epoch: 1234567890, AllRoot: true}
	first, err := os.ReadFile(build(t, newTree(), opts))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"second tree", "third tree"} {
		again, err := os.ReadFile(build(t, newTree(), opts))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, again) {
			t.Errorf("%s: image differs (%d and %d bytes)", name, len(first), len(again))
		}
	}
	if uuid := first[superblockOffset+sbOffUUID:][:16]; !bytes.Equal(uuid, sysext.ErofsUUID[:]) {
		t.Errorf("UUID = %x, want %x", uuid, sysext.ErofsUUID)
	}
	if bt := binary.LittleEndian.Uint64(first[superblockOffset+24:]); bt != uint64(opts.Epoch) {
		t.Errorf("build time = %d, want %d", bt, opts.Epoch)
	}
	if len(first)%4096 != 0 {
		t.Errorf("image size %d is not a multiple of 4 KiB", len(first))
	}
	opts.Epoch++
	other, err := os.ReadFile(build(t, newTree(), opts))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(first, other) {
		t.Error("images with different epochs are equal")
	}
}

// TestBuildErrors checks that what cannot be built is refused with a
// message naming the problem.
func TestBuildErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		src     string
		opts    sysext.BuildOptions
		wantErr string
	}{
		{"missing source", context.Background(), filepath.Join(t.TempDir(), "nope"), sysext.BuildOptions{}, "no such file"},
		{"source is a file", context.Background(), file, sysext.BuildOptions{}, "not a directory"},
		{"compressed", context.Background(), t.TempDir(), sysext.BuildOptions{Compression: sysext.Xz}, "uncompressed"},
		{"cancelled", cancelled, t.TempDir(), sysext.BuildOptions{}, context.Canceled.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "out.raw")
			err := (Builder{}).Build(tt.ctx, tt.src, dst, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Build = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestReaderFile checks Open on files and directories and the full mode of
// an open file's Stat.
func TestReaderFile(t *testing.T) {
	dir := writeTree(t, map[string]string{"usr/bin/tool": "tool", "usr/lib/x": "x"})
	if err := os.Chmod(filepath.Join(dir, "usr/bin/tool"), 0o755|os.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	im := openImage(t, build(t, dir, sysext.BuildOptions{}))
	f, err := im.Open("usr/bin/tool")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || fi.Mode() != 0o755|fs.ModeSetuid {
		t.Errorf("Stat of open file: mode %v, %v; want %v", fi.Mode(), err, 0o755|fs.ModeSetuid)
	}
	if b, err := io.ReadAll(f); err != nil || string(b) != "tool" {
		t.Errorf("read %q, %v", b, err)
	}
	if _, err := f.(fs.ReadDirFile).ReadDir(-1); err == nil {
		t.Error("ReadDir on a file succeeded")
	}
	d, err := im.Open("usr")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	entries, err := d.(fs.ReadDirFile).ReadDir(-1)
	if err != nil || len(entries) != 2 {
		t.Fatalf("ReadDir(usr) = %v, %v", entries, err)
	}
	if fi, err := im.Stat("usr/bin/tool"); err != nil || fi.Mode()&fs.ModeSetuid == 0 {
		t.Errorf("Stat mode = %v, %v", fi.Mode(), err)
	}
	if _, err := Open(bytes.NewReader(make([]byte, 4096))); err == nil {
		t.Error("Open of zeros succeeded")
	}
}

// TestCompressors reads the compression algorithms from superblocks.
func TestCompressors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		incompat uint32
		algs     uint16
		want     string
	}{
		{"uncompressed", 0, 0, ""},
		{"chunked, uncompressed", featureChunkedFile, 0, ""},
		{"lz4 without configurations", featureZeroPadding, 0xffff, "lz4"},
		{"lz4 distance only", 0, 0x10, "lz4"},
		{"configured zstd", featureZeroPadding | featureComprCfgs, 1 << 3, "zstd"},
		{"configured lz4 and lzma", featureComprCfgs, 0b11, "lz4, lzma"},
		{"configured, unknown", featureComprCfgs, 1 << 9, "algorithm 9"},
		{"configured, none", featureComprCfgs, 0, "unknown algorithm"},
		{"tail packing", featureZtailpacking, 0, "lz4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sb := make([]byte, superblockSize)
			binary.LittleEndian.PutUint32(sb[sbOffIncompat:], tc.incompat)
			binary.LittleEndian.PutUint16(sb[sbOffComprAlgs:], tc.algs)
			if got := compressors(sb); got != tc.want {
				t.Errorf("compressors = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestOpenCompressed opens an lz4hc image of mkfs.erofs: go-erofs cannot
// read it, and Open must say what the image is and what to build instead.
func TestOpenCompressed(t *testing.T) {
	if _, err := exec.LookPath("mkfs.erofs"); err != nil {
		t.Skip("mkfs.erofs not installed (apt-get install erofs-utils)")
	}
	dir := writeTree(t, map[string]string{"usr/lib/extension-release.d/extension-release.x": "ID=_any\n", "usr/bin/x": strings.Repeat("compressible ", 5000)})
	img := filepath.Join(t.TempDir(), "lz4hc.raw")
	if err := os.WriteFile(img, nil, 0o644); err != nil { // mkfs.erofs 1.5 does not create it
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.erofs", "--quiet", "-zlz4hc", img, dir).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.erofs -zlz4hc: %v\n%s", err, out)
	}
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = Open(f)
	want := "compressed erofs (lz4) is not readable by bakery: build uncompressed erofs (--compression none) or squashfs"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Open = %v, want an error containing %q", err, want)
	}
}

// TestOpenTruncated opens an image cut short of the blocks its superblock
// counts.
func TestOpenTruncated(t *testing.T) {
	img := build(t, writeTree(t, map[string]string{"usr/lib/x": strings.Repeat("x", 3*blockSize)}), sysext.BuildOptions{})
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(bytes.NewReader(raw)); err != nil {
		t.Fatalf("Open of the whole image: %v", err)
	}
	if _, err := Open(bytes.NewReader(raw[:len(raw)-1])); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("Open of the image less its last byte = %v, want an error saying it is truncated", err)
	}
}

// TestFSConformance runs testing/fstest over the reader of an image.
func TestFSConformance(t *testing.T) {
	files := map[string]string{"usr/bin/a": "a", "usr/lib/b": strings.Repeat("b", 5000), "usr/lib/l": "->b", "usr/share/e/": ""}
	im := openImage(t, build(t, writeTree(t, files), sysext.BuildOptions{}))
	if err := fstest.TestFS(im, "usr/bin/a", "usr/lib/b", "usr/lib/l", "usr/share/e"); err != nil {
		t.Errorf("reader: %v", err)
	}
}

// TestWriteCancelled checks that the writer stops once the build's context
// is done.
func TestWriteCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	tr, err := scanDir(ctx, writeTree(t, map[string]string{"f": "content"}))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "image.raw"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cancel()
	if err := write(ctx, f, tr, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("write after cancel = %v, want context.Canceled", err)
	}
}

// scanDir reads the host tree dir and scans it into inodes.
func scanDir(ctx context.Context, dir string) ([]*inode, error) {
	t, err := tree.Read(ctx, dir)
	if err != nil {
		return nil, err
	}
	return scan(t, false)
}

// TestWriteChangedFile changes a file between the scan and the write: the
// writer must stop rather than write an image that lies about its size.
func TestWriteChangedFile(t *testing.T) {
	tests := []struct {
		name    string
		size    int
		newSize int
		want    string
	}{
		{"inline file shrank", 100, 50, "shrank"},
		{"block file shrank", 3*blockSize + 10, blockSize, "shrank"},
		{"tail shrank", 3*blockSize + 10, 3*blockSize + 5, "shrank"},
		{"inline file grew", 100, 101, "grew"},
		{"empty file grew", 0, 1, "grew"},
		{"block file grew", 2 * blockSize, 2*blockSize + 1, "grew"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeTree(t, map[string]string{"d/f": strings.Repeat("x", tt.size)})
			tr, err := scanDir(context.Background(), dir)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "d/f"), []byte(strings.Repeat("y", tt.newSize)), 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := os.Create(filepath.Join(t.TempDir(), "image.raw"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			err = write(context.Background(), f, tr, 0)
			if err == nil || !strings.Contains(err.Error(), "d/f: changed while the image was written: it "+tt.want) {
				t.Errorf("write = %v, want d/f changed: it %s", err, tt.want)
			}
		})
	}
}

// TestWalkDeep walks an undamaged tree 300 directories deep, with long
// paths for its size: the work limit must leave it alone.
func TestWalkDeep(t *testing.T) {
	const depth = 300
	p := strings.Repeat("directory/", depth) + "file"
	im := openImage(t, build(t, writeTree(t, map[string]string{p: "deep"}), sysext.BuildOptions{}))
	entries := 0
	err := im.Walk(func(p string, d fs.DirEntry, err error) error {
		entries++
		return err
	})
	if err != nil || entries != depth+2 {
		t.Fatalf("Walk = %v after %d entries, want %d", err, entries, depth+2)
	}
}
