package squashfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/sysext-bakery/bakery/internal/bounded"
	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/tree"
)

// smallTree has one node of each type, hard links, xattrs and a large
// directory with an index.
func smallTree() *tree.Node {
	shared := content([]byte("shared\n"), 0o644)
	shared.Xattrs = map[string][]byte{"user.a": []byte("1"), "security.selinux": []byte("system_u:object_r:usr_t:s0")}
	many := dir()
	for i := range 700 {
		many.Entries = append(many.Entries, tree.Entry{Name: strings.Repeat("m", 40) + string(rune('a'+i%26)) + strings.Repeat("z", i/26), Node: content([]byte{byte(i)}, 0o644)})
	}
	return dir(
		tree.Entry{Name: "usr", Node: dir(
			tree.Entry{Name: "bin", Node: dir(tree.Entry{Name: "tool", Node: content(bytes.Repeat([]byte("tool "), 300000), 0o755|fs.ModeSetuid)})},
			tree.Entry{Name: "lib", Node: dir(
				tree.Entry{Name: "extension-release.d", Node: dir(tree.Entry{Name: "extension-release.x", Node: content([]byte("ID=_any\n"), 0o644)})},
				tree.Entry{Name: "link-a", Node: shared},
				tree.Entry{Name: "rel", Node: &tree.Node{Mode: fs.ModeSymlink | 0o777, Target: "../bin/tool"}},
				tree.Entry{Name: "abs", Node: &tree.Node{Mode: fs.ModeSymlink | 0o777, Target: "/usr/bin"}},
			)},
			tree.Entry{Name: "share", Node: dir(tree.Entry{Name: "link-b", Node: shared}, tree.Entry{Name: "many", Node: many})},
			tree.Entry{Name: "dev", Node: dir(
				tree.Entry{Name: "null", Node: &tree.Node{Mode: fs.ModeDevice | fs.ModeCharDevice | 0o666, Major: 1, Minor: 3}},
				tree.Entry{Name: "disk", Node: &tree.Node{Mode: fs.ModeDevice | 0o660, Major: 259, Minor: 70000}},
				tree.Entry{Name: "pipe", Node: &tree.Node{Mode: fs.ModeNamedPipe | 0o644}},
			)},
		)},
	)
}

func writeMem(t testing.TB, root *tree.Node, opts Options) *memFile {
	t.Helper()
	img := &memFile{}
	if _, err := writeNodes(context.Background(), img, root, opts); err != nil {
		t.Fatal(err)
	}
	return img
}

// TestReaderFS runs the io/fs conformance tests and checks symlink
// resolution, xattrs and device numbers.
func TestReaderFS(t *testing.T) {
	for _, comp := range compressions {
		t.Run(string(comp), func(t *testing.T) {
			r, err := Open(writeMem(t, smallTree(), Options{Compression: comp, BlockSize: 4096}))
			if err != nil {
				t.Fatal(err)
			}
			if err := fstest.TestFS(r, "usr/bin/tool", "usr/lib/link-a", "usr/share/many/mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmazzzzzzzzzzzzzzzzzzzzzzzzzz"); err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct{ path, want string }{
				{"usr/lib/rel", "tool "},
				{"usr/lib/abs/tool", "tool "},
				{"usr/lib/extension-release.d/extension-release.x", "ID=_any\n"},
			} {
				b, err := fs.ReadFile(r, tc.path)
				if err != nil || !bytes.HasPrefix(b, []byte(tc.want)) {
					t.Errorf("%s: %.10q, %v; want %q", tc.path, b, err, tc.want)
				}
			}
			if _, err := r.Stat("usr/missing"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Stat of a missing file: %v, want fs.ErrNotExist", err)
			}
			if _, err := r.Open("../x"); !errors.Is(err, fs.ErrInvalid) {
				t.Errorf("Open(../x): %v, want fs.ErrInvalid", err)
			}
			x, err := r.Xattrs("usr/share/link-b")
			if err != nil || string(x["user.a"]) != "1" || string(x["security.selinux"]) != "system_u:object_r:usr_t:s0" || len(x) != 2 {
				t.Errorf("xattrs %q, %v", x, err)
			}
			a, _ := r.Lstat("usr/lib/link-a")
			b, _ := r.Lstat("usr/share/link-b")
			if sa, sb := a.Sys().(*Stat), b.Sys().(*Stat); sa.Inode != sb.Inode || sa.Nlink != 2 {
				t.Errorf("hard links: inodes %d and %d, nlink %d; want one inode with nlink 2", sa.Inode, sb.Inode, sa.Nlink)
			}
			d, err := r.Lstat("usr/dev/disk")
			if st := d.Sys().(*Stat); err != nil || st.Major != 259 || st.Minor != 70000 || d.Mode() != fs.ModeDevice|0o660 {
				t.Errorf("device: %v %+v %v", d.Mode(), st, err)
			}
			if sb := r.Superblock(); sb.Compression != comp || sb.BlockSize != 4096 || sb.Inodes != 716 {
				t.Errorf("superblock %+v", sb)
			}
		})
	}
}

// TestReaderMksquashfs reads mksquashfs's images of a tree written out to
// disk and compares them with the tree.
func TestReaderMksquashfs(t *testing.T) {
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		t.Skip("needs mksquashfs (squashfs-tools)")
	}
	src := t.TempDir()
	root := bigTree(40, 2<<20)
	err := fs.WalkDir(openTree(t, root), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "." {
			return err
		}
		if d.IsDir() {
			return os.Mkdir(filepath.Join(src, p), 0o755)
		}
		return os.WriteFile(filepath.Join(src, p), mustReadAll(t, lookupNode(root, p)), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	want, err := dumpHost(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-comp", "zstd"}, {"-comp", "gzip"}, {"-comp", "xz"}, {"-comp", "lz4"},
		{"-comp", "gzip", "-b", "4096", "-no-fragments"}, {"-noI", "-noD", "-noF", "-noX", "-always-use-fragments"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "img")
			cmd := exec.Command("mksquashfs", append([]string{src, img, "-noappend", "-quiet", "-processors", "1"}, args...)...)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("mksquashfs: %v\n%s", err, b)
			}
			got, err := dumpImage(openImage(t, img))
			if err != nil {
				t.Fatal(err)
			}
			diffLines(t, "reader", want, got)
		})
	}
}

// openTree views an in-memory tree as an image, to walk it.
func openTree(t *testing.T, root *tree.Node) *Reader {
	t.Helper()
	r, err := Open(writeMem(t, root, Options{Compression: sysext.None}))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func lookupNode(n *tree.Node, p string) *tree.Node {
	for _, part := range strings.Split(p, "/") {
		for _, e := range n.Entries {
			if e.Name == part {
				n = e.Node
				break
			}
		}
	}
	return n
}

// TestSymlinkLoop checks that resolving a symlink loop fails.
func TestSymlinkLoop(t *testing.T) {
	r, err := Open(writeMem(t, dir(tree.Entry{Name: "loop", Node: &tree.Node{Mode: fs.ModeSymlink | 0o777, Target: "./loop"}}), Options{}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Stat("loop"); err == nil || !strings.Contains(err.Error(), "too many levels") {
		t.Errorf("Stat of a symlink loop: %v", err)
	}
	if target, err := r.ReadLink("loop"); err != nil || target != "./loop" {
		t.Errorf("ReadLink = %q, %v", target, err)
	}
}

// TestOpenCorrupt checks that damaged superblocks are refused with errors.
func TestOpenCorrupt(t *testing.T) {
	good := writeMem(t, smallTree(), Options{}).b
	patch := func(off int, b ...byte) []byte {
		c := bytes.Clone(good)
		copy(c[off:], b)
		return c
	}
	for _, tc := range []struct {
		name string
		img  []byte
		want string
	}{
		{"empty", nil, "read superblock"},
		{"magic", patch(0, 'x'), "bad magic"},
		{"version", patch(28, 3), "version 3.0"},
		{"block size", patch(12, 0, 0, 3, 0), "block size"},
		{"block log", patch(22, 9), "block size"},
		{"tables", patch(64, 0xff, 0xff, 0xff, 0xff), "table offsets"},
		{"no ids", patch(26, 0, 0), "id table is empty"},
		{"compressor", patch(20, 9), "unknown compressor id 9"},
		{"lzo", patch(20, 3), "lzma/lzo"},
		{"root", patch(32, 0xff, 0xff, 0xff), "root inode"},
		{"truncated", good[:4096], "root inode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(bytes.NewReader(tc.img))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// FuzzOpen feeds damaged images to the reader, which must return errors
// rather than panic, hang or allocate without bound: each input must be
// done within bounded.Fuzz (1 s, 64 MiB). It walks the image with Walk
// and, on its first entries, reads each as a caller would. The seed
// corpus in testdata/fuzz/FuzzOpen holds the hostile images of package
// hostile (see TestFuzzSeeds).
func FuzzOpen(f *testing.F) {
	shared := content(bytes.Repeat([]byte("abc"), 3000), 0o644)
	shared.Xattrs = map[string][]byte{"user.a": []byte("1")}
	tiny := dir(
		tree.Entry{Name: "a", Node: shared}, tree.Entry{Name: "b", Node: shared},
		tree.Entry{Name: "d", Node: dir(tree.Entry{Name: "x", Node: content([]byte("x"), 0o600)}, tree.Entry{Name: "up", Node: &tree.Node{Mode: fs.ModeSymlink, Target: "../a"}})},
		tree.Entry{Name: "null", Node: &tree.Node{Mode: fs.ModeDevice | fs.ModeCharDevice, Major: 1, Minor: 3}},
	)
	for _, comp := range compressions {
		f.Add(writeMem(f, tiny, Options{Compression: comp, BlockSize: 4096}).b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		bounded.Run(t, bounded.Fuzz, func() { readAll(data) })
	})
}

// readAll opens an image, walks it and reads its first 64 entries every
// way the Reader offers, ignoring errors.
func readAll(data []byte) {
	r, err := Open(bytes.NewReader(data))
	if err != nil {
		return
	}
	r.Superblock()
	n := 0
	_ = r.Walk(func(p string, d fs.DirEntry, err error) error {
		if n++; err != nil || n > 64 {
			return err
		}
		d.Info()
		r.Xattrs(p)
		r.ReadLink(p)
		r.Stat(p)
		if d.IsDir() {
			r.ReadDir(p)
		}
		if fh, err := r.Open(p); err == nil {
			io.Copy(io.Discard, io.LimitReader(fh, 64<<10))
			fh.Close()
		}
		return nil
	})
}

// TestWalk checks that Walk visits what fs.WalkDir visits, in the same
// order, and honours SkipDir and SkipAll.
func TestWalk(t *testing.T) {
	r := openTree(t, smallTree())
	paths := func(walk func(fs.WalkDirFunc) error, skip map[string]error) []string {
		var got []string
		err := walk(func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			info, err := d.Info()
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			got = append(got, fmt.Sprintf("%s %v %v", p, d.Type(), info.Mode()))
			return skip[p]
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	walkDir := func(fn fs.WalkDirFunc) error { return fs.WalkDir(r, ".", fn) }
	for _, skip := range []map[string]error{
		nil,
		{"usr/share": fs.SkipDir},
		{"usr/lib/link-a": fs.SkipDir},
		{"usr/dev/disk": fs.SkipAll},
		{".": fs.SkipDir},
	} {
		want, got := paths(walkDir, skip), paths(r.Walk, skip)
		if len(want) < 2 && skip == nil {
			t.Fatalf("fs.WalkDir found %d entries", len(want))
		}
		if !slices.Equal(got, want) {
			t.Errorf("skip %v: Walk visited\n%s\nwant\n%s", skip, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

// TestWalkDeep walks an undamaged tree 300 directories deep, with long
// paths for its size: the work limit must leave it alone.
func TestWalkDeep(t *testing.T) {
	const depth = 300
	leaf := content([]byte("deep"), 0o644)
	n := dir(tree.Entry{Name: "file", Node: leaf})
	for range depth {
		n = dir(tree.Entry{Name: "directory", Node: n})
	}
	r := openTree(t, n)
	entries := 0
	err := r.Walk(func(p string, d fs.DirEntry, err error) error {
		entries++
		return err
	})
	if err != nil || entries != depth+2 {
		t.Fatalf("Walk = %v after %d entries, want %d", err, entries, depth+2)
	}
}
