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

// TestFromNodeShape checks the walk order, link counts, paths, parents and
// sorted entries of the Tree FromNode builds.
func TestFromNodeShape(t *testing.T) {
	shared := file("x")
	sub := dir(Entry{Name: "z", Node: file("z")})
	root := dir(
		Entry{Name: "b", Node: shared},
		Entry{Name: "d", Node: sub},
		Entry{Name: "a", Node: shared},
		Entry{Name: "-", Node: &Node{Mode: fs.ModeSymlink | 0o777, Target: "a"}},
	)
	tr, err := FromNode(root)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for i := range tr.Len() {
		order = append(order, tr.Path(Ino(i)))
	}
	if want := []string{"/", "/-", "/a", "/d", "/d/z"}; !reflect.DeepEqual(order, want) {
		t.Errorf("walk order %v, want %v", order, want)
	}
	var names []string
	for k := range tr.NumEntries(Root) {
		name, _ := tr.Entry(Root, k)
		names = append(names, name)
	}
	if want := []string{"-", "a", "b", "d"}; !reflect.DeepEqual(names, want) {
		t.Errorf("entries %v, want %v", names, want)
	}
	for _, tt := range []struct {
		path       string
		nlink      uint32
		parent     string
		size       int64
		hasContent bool
		numEntries int
	}{{"/", 3, "/", 0, false, 4}, {"/d", 2, "/", 0, false, 1}, {"/a", 2, "/", 1, true, 0}, {"/d/z", 1, "/d", 1, true, 0}, {"/-", 1, "/", 0, false, 0}} {
		i := paths(tr)[tt.path]
		if tr.Nlink(i) != tt.nlink || tr.Path(tr.Parent(i)) != tt.parent || tr.Size(i) != tt.size || tr.HasContent(i) != tt.hasContent || tr.NumEntries(i) != tt.numEntries {
			t.Errorf("%s: nlink %d, parent %s, size %d, content %v, %d entries; want %+v", tt.path, tr.Nlink(i), tr.Path(tr.Parent(i)), tr.Size(i), tr.HasContent(i), tr.NumEntries(i), tt)
		}
	}
	if got := content(t, tr, paths(tr)["/b"]); got != "x" {
		t.Errorf("content of /b: %q", got)
	}
	if tr.Target(paths(tr)["/-"]) != "a" {
		t.Errorf("target of /-: %q", tr.Target(paths(tr)["/-"]))
	}
	if len(root.Entries) != 4 || root.Entries[0].Name != "b" {
		t.Error("FromNode reordered the tree's own entries")
	}
}

// TestFromNodeErrors checks that what no image can hold is refused with an
// error naming the path and the problem.
func TestFromNodeErrors(t *testing.T) {
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
			if _, err := FromNode(tt.root); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("FromNode = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
