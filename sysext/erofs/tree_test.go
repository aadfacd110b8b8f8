package erofs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/sysext-bakery/bakery/sysext/tree"
)

// TestDataBlocks turns byte holes into the blocks holding data.
func TestDataBlocks(t *testing.T) {
	const bs = blockSize
	for _, tt := range []struct {
		name    string
		holes   []tree.Extent
		size    int64
		want    []extent
		wantErr string
	}{
		{"no holes", nil, 10 * bs, nil, ""},
		{"all hole", []tree.Extent{{Start: 0, End: 10 * bs}}, 10 * bs, []extent{}, ""},
		{"hole in the middle", []tree.Extent{{Start: bs, End: 9 * bs}}, 10 * bs, []extent{{0, 1}, {9, 10}}, ""},
		{"holes at both ends", []tree.Extent{{Start: 0, End: 2 * bs}, {Start: 5 * bs, End: 10 * bs}}, 10 * bs, []extent{{2, 5}}, ""},
		{"unaligned hole keeps its partial blocks", []tree.Extent{{Start: bs + 1, End: 4*bs - 1}}, 6 * bs, []extent{{0, 2}, {3, 6}}, ""},
		{"holes smaller than a block store it all", []tree.Extent{{Start: 10, End: 20}, {Start: bs + 10, End: bs + 20}}, 2 * bs, nil, ""},
		{"partial last block", []tree.Extent{{Start: 0, End: 4 * bs}}, 4*bs + 1, []extent{{4, 5}}, ""},
		{"unsorted", []tree.Extent{{Start: 5 * bs, End: 6 * bs}, {Start: bs, End: 2 * bs}}, 10 * bs, nil, "not sorted"},
		{"beyond the end", []tree.Extent{{Start: bs, End: 11 * bs}}, 10 * bs, nil, "inside the file"},
		{"reversed", []tree.Extent{{Start: 2 * bs, End: bs}}, 10 * bs, nil, "not sorted"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dataBlocks(tt.holes, tt.size)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("dataBlocks = %v, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) || (got == nil) != (tt.want == nil) {
				t.Errorf("dataBlocks = %#v, %v; want %#v", got, err, tt.want)
			}
		})
	}
}

// TestWriteAnyContent writes a host tree with holes once as read and once
// with every file's content behind a reader that cannot seek, as a
// stager's stream would give it: the images must be byte-identical.
func TestWriteAnyContent(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"usr/bin/tool": strings.Repeat("tool", 3000),
		"usr/lib/l":    "->../bin/tool",
		"usr/share/e/": "",
		"usr/small":    "s",
	})
	sparse := filepath.Join(dir, "usr/sparse")
	if err := writeSparse(sparse, sparseFile{"sparse", 4 << 20, [][2]int64{{0, 100}, {2 << 20, 2<<20 + blockSize}}}); err != nil {
		t.Fatal(err)
	}
	write := func(tr *tree.Tree) []byte {
		t.Helper()
		img := filepath.Join(t.TempDir(), "img.raw")
		f, err := os.Create(img)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := Write(context.Background(), f, tr, Options{Epoch: testEpoch, AllRoot: true}); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	host, err := tree.Read(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	hasHoles := false
	// The same tree as Nodes whose content cannot seek.
	nodes := map[tree.Ino]*tree.Node{}
	var node func(i tree.Ino) *tree.Node
	node = func(i tree.Ino) *tree.Node {
		if n, ok := nodes[i]; ok {
			return n
		}
		uid, gid := host.Owner(i)
		n := &tree.Node{Mode: host.Mode(i), UID: uid, GID: gid, Mtime: host.Mtime(i), Xattrs: host.Xattrs(i),
			Target: host.Target(i), Size: host.Size(i), Holes: host.Holes(i)}
		n.Major, n.Minor = host.Device(i)
		hasHoles = hasHoles || n.Holes != nil
		if host.Mode(i).IsRegular() {
			n.Open = func() (io.ReadCloser, error) {
				rc, err := host.Open(i)
				if err != nil {
					return nil, err
				}
				defer rc.Close()
				b, err := io.ReadAll(rc)
				return io.NopCloser(bytes.NewReader(b)), err // io.NopCloser hides Seek
			}
		}
		nodes[i] = n
		for k := range host.NumEntries(i) {
			name, c := host.Entry(i, k)
			n.Entries = append(n.Entries, tree.Entry{Name: name, Node: node(c)})
		}
		return n
	}
	want := write(host)
	root, err := tree.FromNode(node(tree.Root))
	if err != nil {
		t.Fatal(err)
	}
	if !hasHoles {
		t.Skip("the file system keeps no holes")
	}
	if got := write(root); !bytes.Equal(got, want) {
		t.Errorf("image written from streams differs from the one written from files (%d and %d bytes)", len(got), len(want))
	}
}

// TestWriteDoesNotHoldMetadata writes 4,000 files of 4,000 bytes, each
// stored inline after its inode (16 MB of metadata blocks), and checks
// that Write allocates less than half of that in all: the records are
// written as they are made, not held until the end.
func TestWriteDoesNotHoldMetadata(t *testing.T) {
	content := bytes.Repeat([]byte("inline "), 4000/7)
	root := &tree.Node{Mode: fs.ModeDir | 0o755}
	usr := &tree.Node{Mode: fs.ModeDir | 0o755}
	root.Entries = []tree.Entry{{Name: "usr", Node: usr}}
	for i := range 4000 {
		usr.Entries = append(usr.Entries, tree.Entry{Name: fmt.Sprintf("f%04d", i), Node: &tree.Node{Mode: 0o644, Size: int64(len(content)),
			Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(content)), nil }}})
	}
	tr, err := tree.FromNode(root)
	if err != nil {
		t.Fatal(err)
	}
	img, err := os.Create(filepath.Join(t.TempDir(), "img.raw"))
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := Write(context.Background(), img, tr, Options{}); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	fi, err := img.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() < 4000*4000 {
		t.Fatalf("image of %d bytes: the files are not all in it", fi.Size())
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(fi.Size())/2 {
		t.Errorf("Write allocated %d bytes for an image of %d bytes, nearly all metadata", alloc, fi.Size())
	}
}
