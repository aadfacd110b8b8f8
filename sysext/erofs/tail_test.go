package erofs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	goerofs "github.com/erofs/go-erofs"
	"golang.org/x/sys/unix"

	"github.com/sysext-bakery/bakery/sysext"
)

// tailFile is a file of the tail test: size bytes, a user.x xattr of
// xattrLen bytes, an owner needing an extended inode when big, and the
// data layout it must get.
type tailFile struct {
	name     string
	size     int64
	xattrLen int
	big      bool
	layout   uint8
}

// sparseFile is a sparse file of the tail test: size bytes with data in
// the byte ranges [start, end) of data, holes elsewhere.
type sparseFile struct {
	name string
	size int64
	data [][2]int64
}

// TestTailsAndHoles writes files whose last partial block is packed after
// their inode or, where it does not fit, takes a block of its own, and
// files with holes at the start, in the middle and at the end. The kernel
// mount must show their content and keep the holes (SEEK_DATA and
// SEEK_HOLE: the kernel reports st_blocks of an uncompressed file from its
// size, holes or not), fsck.erofs must pass, the holes must take no room
// in the image and two builds must give the same bytes.
func TestTailsAndHoles(t *testing.T) {
	requireRoot(t)
	const bs = blockSize
	// xattrBody is the xattr body of a file with one user.x xattr of n bytes.
	xattrBody := func(n int) int64 { return int64(xattrBodySize(0, []xattr{{"user.x", strings.Repeat("v", n)}})) }
	files := []tailFile{
		{"tail-1", 3*bs + 1, 0, false, layoutFlatInline},
		{"tail-100", 2*bs + 100, 0, false, layoutFlatInline},
		{"tail-fills-block", bs + bs - compactInodeSize, 0, false, layoutFlatInline},
		{"tail-one-over", bs + bs - compactInodeSize + 1, 0, false, layoutFlatPlain},
		{"tail-blocksize-1", 5*bs + bs - 1, 0, false, layoutFlatPlain},
		{"tail-after-xattr", bs + bs - compactInodeSize - xattrBody(200), 200, false, layoutFlatInline},
		{"tail-over-xattr", bs + bs - compactInodeSize - xattrBody(200) + 1, 200, false, layoutFlatPlain},
		{"tail-extended", bs + bs - extendedInodeSize, 0, true, layoutFlatInline},
		{"tail-extended-over", bs + bs - extendedInodeSize + 1, 0, true, layoutFlatPlain},
		{"whole-blocks", 4 * bs, 0, false, layoutFlatPlain},
		{"small-1", 1, 0, false, layoutFlatInline},
		{"small-fills-block", bs - compactInodeSize, 0, false, layoutFlatInline},
		{"small-blocksize-1", bs - 1, 0, false, layoutFlatPlain},
	}
	sparse := []sparseFile{
		{"hole-start", 16 << 20, [][2]int64{{16<<20 - 3, 16 << 20}}},
		{"hole-middle", 10<<20 + 123, [][2]int64{{0, 1 << 20}, {9 << 20, 10<<20 + 123}}},
		{"hole-end", 16 << 20, [][2]int64{{0, 5000}}},
		{"hole-only", 1<<20 + 7, nil},
		{"hole-aligned", 4 << 20, [][2]int64{{0, 1 << 20}, {2 << 20, 3 << 20}}},
		{"hole-unaligned", 1 << 20, [][2]int64{{3*bs + 10, 3*bs + 20}, {7*bs - 1, 7*bs + 1}}},
	}
	src := t.TempDir()
	var stored int64 // bytes the image must hold at most, besides metadata
	for _, f := range files {
		p := filepath.Join(src, f.name)
		if err := os.WriteFile(p, randomBytes(int(f.size)), 0o644); err != nil {
			t.Fatal(err)
		}
		if f.xattrLen > 0 {
			// One value a file: shared xattrs would change the room left.
			value := fmt.Sprintf("%-*s", f.xattrLen, f.name)
			if err := unix.Lsetxattr(p, "user.x", []byte(value), 0); err != nil {
				t.Fatal(err)
			}
		}
		if f.big {
			if err := os.Chown(p, 70000, 70000); err != nil {
				t.Fatal(err)
			}
		}
		stored += f.size
	}
	for _, f := range sparse {
		if err := writeSparse(filepath.Join(src, f.name), f); err != nil {
			t.Fatal(err)
		}
		for _, d := range f.data {
			stored += align(d[1], bs) - d[0]/bs*bs
		}
	}
	source, err := hostSnapshot(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range sparse {
		if source[f.name].Data == "" {
			t.Skipf("%s has no holes on the host: its file system keeps none", f.name)
		}
	}

	opts := sysext.BuildOptions{Epoch: testEpoch}
	img := build(t, src, opts)
	checkSameBytes(t, img, build(t, src, opts))
	if fi, err := os.Stat(img); err != nil {
		t.Fatal(err)
	} else if limit := stored + 16*bs; fi.Size() > limit {
		t.Errorf("image is %d bytes, want at most %d: holes or tails take room", fi.Size(), limit)
	}

	im := openImage(t, img)
	want := expect(source, testEpoch, false)
	got, err := imageSnapshot(im)
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(noHoles(want), got); d != "" {
		t.Errorf("reader differs from the source:\n%s", d)
	}
	layouts := map[string]uint8{}
	for _, f := range files {
		layouts[f.name] = f.layout
	}
	for _, f := range sparse {
		layouts[f.name] = layoutChunkBased
	}
	for name, layout := range layouts {
		fi, err := im.Lstat(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Sys().(*goerofs.Stat).InodeLayout; got != layout {
			t.Errorf("%s: data layout %d, want %d", name, got, layout)
		}
	}
	checkFsck(t, img, want)
	checkMount(t, img, want)
}

// writeSparse creates the sparse file f: its size, with random bytes only
// in its data ranges.
func writeSparse(p string, f sparseFile) error {
	file, err := os.Create(p)
	if err != nil {
		return err
	}
	defer file.Close()
	if err := file.Truncate(f.size); err != nil {
		return err
	}
	for _, d := range f.data {
		if _, err := file.WriteAt(randomBytes(int(d[1]-d[0])), d[0]); err != nil {
			return err
		}
	}
	return file.Close()
}
