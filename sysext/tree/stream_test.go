package tree

import (
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"testing/fstest"
)

// streamed drains s: the paths and contents of its files, then its tree.
func streamed(t *testing.T, s Stream) ([]string, *Tree) {
	t.Helper()
	var got []string
	for {
		f, err := s.Next(context.Background())
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b := readAll(t, func() (io.ReadCloser, error) { return s.Open(f) })
		if int64(len(b)) != f.Size {
			t.Fatalf("%s: read %d bytes, size %d", s.Path(f), len(b), f.Size)
		}
		got = append(got, s.Path(f)+"="+b)
	}
	tr, err := s.Tree(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return got, tr
}

// contentFiles lists the files with content of tr in walk order, as
// streamed does.
func contentFiles(t *testing.T, tr *Tree) []string {
	var want []string
	for i := range tr.Len() {
		if n := Ino(i); tr.HasContent(n) {
			want = append(want, tr.Path(n)+"="+content(t, tr, n))
		}
	}
	return want
}

// TestStreams checks that ReadStream and Tree.Files hand out the files
// with content in walk order, each once, and then the tree Read gives.
func TestStreams(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{"usr/b": "b", "usr/a/z": "z", "usr/a.x": "ax", "usr/empty": "", "usr/a/y/deep": "deep", "opt/o": "o"} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(filepath.Join(dir, "usr/b"), filepath.Join(dir, "usr/a/link")); err != nil {
		t.Fatal(err)
	}
	read, err := Read(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	want := contentFiles(t, read)
	if w := []string{"/opt/o=o", "/usr/a/link=b", "/usr/a/y/deep=deep", "/usr/a/z=z", "/usr/a.x=ax"}; !reflect.DeepEqual(want, w) {
		t.Fatalf("walk order %v, want %v", want, w)
	}
	for name, s := range map[string]Stream{"ReadStream": ReadStream(context.Background(), dir), "Files": read.Files()} {
		t.Run(name, func(t *testing.T) {
			got, tr := streamed(t, s)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("streamed %v, want %v", got, want)
			}
			if !reflect.DeepEqual(paths(tr), paths(read)) || !reflect.DeepEqual(contentFiles(t, tr), want) {
				t.Errorf("tree differs from Read's: %v", paths(tr))
			}
		})
	}
}

// TestFS checks the tree's fs.FS with testing/fstest, on a tree read from
// a host directory.
func TestFS(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{"usr/b": "b", "usr/a/z": "zz", "usr/a.x": "ax", "usr/empty": "", "opt/o/p/q": "deep"} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	tr, err := Read(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"usr/b", "usr/a/z", "usr/a.x", "usr/empty", "opt/o/p/q"}
	if err := fstest.TestFS(tr.FS(), names...); err != nil {
		t.Fatal(err)
	}
	// Sys is the Ino, what validation matches files read ahead with.
	for _, name := range append(names, "usr", "usr/a") {
		fi, err := fs.Stat(tr.FS(), name)
		if err != nil {
			t.Fatal(err)
		}
		if i, ok := fi.Sys().(Ino); !ok || tr.Path(i) != "/"+name {
			t.Errorf("%s: Sys is %v (%T)", name, fi.Sys(), fi.Sys())
		}
	}
}
