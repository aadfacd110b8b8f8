package tree

import (
	"io"
	"io/fs"
	"reflect"
	"strings"
	"testing"
)

func dir(entries ...Entry) *Node { return &Node{Mode: fs.ModeDir | 0o755, Entries: entries} }

func file(data string) *Node {
	return &Node{Mode: 0o644, Size: int64(len(data)), Open: func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(data)), nil
	}}
}

// TestScanShape checks the walk order, link counts, paths, parents and
// sorted entries Scan records.
func TestScanShape(t *testing.T) {
	shared := file("x")
	sub := dir(Entry{Name: "z", Node: file("z")})
	root := dir(
		Entry{Name: "b", Node: shared},
		Entry{Name: "d", Node: sub},
		Entry{Name: "a", Node: shared},
		Entry{Name: "-", Node: &Node{Mode: fs.ModeSymlink | 0o777, Target: "a"}},
	)
	s, err := Scan(root)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, n := range s.Nodes {
		order = append(order, s.Paths[n])
	}
	if want := []string{"/", "/-", "/a", "/d", "/d/z"}; !reflect.DeepEqual(order, want) {
		t.Errorf("walk order %v, want %v", order, want)
	}
	var names []string
	for _, e := range s.Entries[root] {
		names = append(names, e.Name)
	}
	if want := []string{"-", "a", "b", "d"}; !reflect.DeepEqual(names, want) {
		t.Errorf("entries %v, want %v", names, want)
	}
	for _, tt := range []struct {
		node  *Node
		nlink uint32
	}{{root, 3}, {sub, 2}, {shared, 2}} {
		if s.Nlink[tt.node] != tt.nlink {
			t.Errorf("%s: nlink %d, want %d", s.Paths[tt.node], s.Nlink[tt.node], tt.nlink)
		}
	}
	if s.Parents[sub] != root || s.Parents[root] != root {
		t.Errorf("parents %v", s.Parents)
	}
	if len(root.Entries) != 4 || root.Entries[0].Name != "b" {
		t.Error("Scan reordered the tree's own entries")
	}
}

// TestScanErrors checks that what no image can hold is refused with an
// error naming the path and the problem.
func TestScanErrors(t *testing.T) {
	sub := dir()
	for _, tt := range []struct {
		name string
		root *Node
		want string
	}{
		{"nil root", nil, "root must be a directory"},
		{"file root", file("x"), "root must be a directory"},
		{"empty name", dir(Entry{Name: "", Node: file("x")}), `/: invalid name ""`},
		{"dot", dir(Entry{Name: ".", Node: file("x")}), "invalid name"},
		{"dotdot", dir(Entry{Name: "..", Node: file("x")}), "invalid name"},
		{"slash", dir(Entry{Name: "a/b", Node: file("x")}), "invalid name"},
		{"duplicate", dir(Entry{Name: "a", Node: file("x")}, Entry{Name: "a", Node: file("y")}), "/a: duplicate entry"},
		{"no node", dir(Entry{Name: "a"}), "/a: entry has no node"},
		{"directory twice", dir(Entry{Name: "a", Node: sub}, Entry{Name: "b", Node: sub}), "/b: directory appears twice"},
		{"root inside itself", func() *Node { r := dir(); r.Entries = []Entry{{Name: "r", Node: r}}; return r }(), "/r: directory appears twice"},
		{"irregular", dir(Entry{Name: "i", Node: &Node{Mode: fs.ModeIrregular}}), "/i: file type"},
		{"negative size", dir(Entry{Name: "f", Node: &Node{Size: -1}}), "/f: negative size"},
		{"no Open", dir(Entry{Name: "f", Node: &Node{Size: 3}}), "/f: regular file of 3 bytes has no Open"},
		{"no target", dir(Entry{Name: "l", Node: &Node{Mode: fs.ModeSymlink}}), "/l: symlink without a target"},
		{"deep", dir(Entry{Name: "d", Node: dir(Entry{Name: "f", Node: &Node{Size: 1}})}), "/d/f: regular file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Scan(tt.root); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Scan = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
