package tree

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

// op is one entry a stager writes and announces to a Builder.
type op struct {
	// kind: d(ir, mode 0755), D(ir denying its owner writes, 0555),
	// f(ile with content arg), h(ole: a sparse file of arg's length in
	// MiB, ending with one byte), l(ink to arg), s(ymlink to arg),
	// r(emove).
	kind, path, arg string
}

// build replays ops into a directory as a stager writes when it replaces
// an entry (a file or link made beside its path and renamed over it, so
// that other names of a replaced file keep its content), telling a
// Builder over that directory, and returns both.
func build(t *testing.T, ops []op) (*Builder, string) {
	t.Helper()
	dir := t.TempDir()
	b := NewBuilder(dir, 0, 0)
	var locked []string // D directories: the Builder hears their mode at once, the disk gets it last, as the stager does
	for _, o := range ops {
		host, tmp := filepath.Join(dir, o.path), filepath.Join(dir, ".tmp")
		var err error
		switch o.kind {
		case "d", "D":
			mode := fs.FileMode(0o755)
			if o.kind == "D" {
				mode = 0o555
				locked = append(locked, host)
			}
			if err = os.Mkdir(host, 0o755); err == nil {
				err = b.Dir(o.path, mode)
			}
		case "f":
			if err = os.WriteFile(tmp, []byte(o.arg), 0o644); err == nil {
				err = os.Rename(tmp, host)
			}
			if err == nil {
				err = b.File(o.path, 0o644, int64(len(o.arg)))
			}
		case "h":
			var mib int64
			fmt.Sscan(o.arg, &mib)
			size := mib << 20
			if err = os.WriteFile(host, nil, 0o644); err == nil {
				err = os.Truncate(host, size-1)
			}
			if err == nil {
				err = appendByte(host)
			}
			if err == nil {
				err = b.File(o.path, 0o644, size)
			}
		case "l":
			if err = os.Link(filepath.Join(dir, o.arg), tmp); err == nil {
				err = os.Rename(tmp, host)
			}
			if err == nil {
				err = b.Link(o.path, o.arg)
			}
		case "s":
			if err = os.Symlink(o.arg, tmp); err == nil {
				err = os.Rename(tmp, host)
			}
			if err == nil {
				err = b.Symlink(o.path, o.arg)
			}
		case "r":
			if err = os.Remove(host); err == nil {
				err = b.Remove(o.path)
			}
		}
		if err != nil {
			t.Fatalf("%v: %v", o, err)
		}
	}
	for _, d := range locked {
		if err := os.Chmod(d, 0o555); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { // before TempDir's removal, which a user other than root needs
		for _, d := range locked {
			os.Chmod(d, 0o755)
		}
	})
	b.Close(nil)
	return b, dir
}

// appendByte appends one byte to the file p.
func appendByte(p string) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = f.Write([]byte{1})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// describe lists the tree as an image holds it, by path: type and mode,
// links, and a file's content and holes or a symlink's target. Owners
// and mtimes are left out: a Builder sets its own, Read finds the host's.
func describe(t *testing.T, tr *Tree) []string {
	t.Helper()
	var out []string
	for p, i := range paths(tr) {
		d := fmt.Sprintf("%s %v nlink %d", p, tr.Mode(i), tr.Nlink(i))
		switch m := tr.Mode(i); {
		case m.IsRegular():
			data := content(t, tr, i)
			if len(data) > 32 {
				data = data[len(data)-32:]
			}
			d += fmt.Sprintf(" size %d ...%q holes %v", tr.Size(i), data, tr.Holes(i))
		case m&fs.ModeSymlink != 0:
			d += " -> " + tr.Target(i)
		}
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

// TestBuilder replays stagers' entries and checks what two Streams hand
// out and whether it holds: files in walk order, held one step so that a
// file added early (a release file) is handed out in its place, and
// ErrOrder when a file comes before one handed out or one handed out is
// replaced or removed (the stream then fails at once: nothing is handed
// out here, as every entry is added before the first Next). The complete
// tree had from Built is in every case the one Read finds in the
// directory.
func TestBuilder(t *testing.T) {
	dirs := []op{{"d", "usr", ""}, {"d", "usr/bin", ""}, {"d", "usr/lib", ""}, {"d", "usr/lib/e", ""}}
	tests := []struct {
		name    string
		ops     []op
		streams []string // the files handed out, before any error
		err     error
		tree    []string
	}{
		{"in order", []op{{"f", "usr/bin/a", "a"}, {"f", "usr/bin/b", "b"}, {"f", "usr/lib/x", "x"}},
			[]string{"/usr/bin/a=a", "/usr/bin/b=b", "/usr/lib/x=x"}, nil,
			[]string{"/usr/bin/a=a", "/usr/bin/b=b", "/usr/lib/x=x"}},
		{"added early, handed out in place", []op{{"f", "usr/lib/e/r", "r"}, {"f", "usr/bin/a", "a"}, {"f", "usr/lib/x", "x"}},
			[]string{"/usr/bin/a=a", "/usr/lib/e/r=r", "/usr/lib/x=x"}, nil,
			[]string{"/usr/bin/a=a", "/usr/lib/e/r=r", "/usr/lib/x=x"}},
		{"held file replaced", []op{{"f", "usr/bin/a", "a"}, {"f", "usr/bin/b", "1"}, {"f", "usr/bin/b", "22"}},
			[]string{"/usr/bin/a=a", "/usr/bin/b=22"}, nil,
			[]string{"/usr/bin/a=a", "/usr/bin/b=22"}},
		{"held file removed", []op{{"f", "usr/bin/a", "a"}, {"f", "usr/bin/b", "b"}, {"r", "usr/bin/b", ""}, {"f", "usr/lib/x", "x"}},
			[]string{"/usr/bin/a=a", "/usr/lib/x=x"}, nil,
			[]string{"/usr/bin/a=a", "/usr/lib/x=x"}},
		{"a file before one handed out", []op{{"f", "usr/lib/x", "x"}, {"f", "usr/lib/y", "y"}, {"f", "usr/bin/a", "a"}},
			nil, ErrOrder,
			[]string{"/usr/bin/a=a", "/usr/lib/x=x", "/usr/lib/y=y"}},
		{"a file handed out replaced", []op{{"f", "usr/bin/a", "a"}, {"f", "usr/bin/b", "b"}, {"s", "usr/bin/a", "b"}},
			nil, ErrOrder,
			[]string{"/usr/bin/b=b"}},
		{"a file handed out removed", []op{{"f", "usr/bin/a", "a"}, {"f", "usr/bin/b", "b"}, {"r", "usr/bin/a", ""}},
			nil, ErrOrder,
			[]string{"/usr/bin/b=b"}},
		{"a directory emptied and removed", []op{{"f", "usr/bin/a", "a"}, {"f", "usr/lib/e/r", "r"}, {"s", "usr/lib/e/s", "r"}, {"r", "usr/lib/e/s", ""}, {"r", "usr/lib/e/r", ""}, {"r", "usr/lib/e", ""}},
			[]string{"/usr/bin/a=a"}, nil,
			[]string{"/usr/bin/a=a"}},
		{"hard link after", []op{{"f", "usr/bin/a", "a"}, {"l", "usr/lib/x", "usr/bin/a"}, {"f", "usr/lib/y", "y"}},
			[]string{"/usr/bin/a=a", "/usr/lib/y=y"}, nil,
			[]string{"/usr/bin/a=a", "/usr/lib/y=y"}},
		{"hard link before one handed out", []op{{"f", "usr/lib/x", "x"}, {"f", "usr/lib/y", "y"}, {"l", "usr/bin/a", "usr/lib/x"}},
			nil, ErrOrder,
			[]string{"/usr/bin/a=x", "/usr/lib/y=y"}},
		// The file is read through its first name, not the name it was
		// added under, which now holds another file.
		{"name added under replaced, another kept", []op{{"f", "usr/lib/x", "x"}, {"l", "usr/bin/a", "usr/lib/x"}, {"f", "usr/lib/x", "new"}},
			[]string{"/usr/bin/a=x", "/usr/lib/x=new"}, nil,
			[]string{"/usr/bin/a=x", "/usr/lib/x=new"}},
		{"third name first, of a file handed out", []op{{"f", "usr/lib/x", "x"}, {"l", "usr/lib/y", "usr/lib/x"}, {"l", "usr/lib/z", "usr/lib/x"}, {"f", "usr/lib/zz", "zz"}, {"f", "usr/lib/zzz", "zzz"}, {"l", "usr/bin/a", "usr/lib/x"}},
			nil, ErrOrder,
			[]string{"/usr/bin/a=x", "/usr/lib/zz=zz", "/usr/lib/zzz=zzz"}},
		{"empty files", []op{{"f", "usr/bin/a", "a"}, {"f", "usr/bin/empty", ""}, {"l", "usr/lib/x", "usr/bin/empty"}, {"f", "usr/lib/y", "y"}},
			[]string{"/usr/bin/a=a", "/usr/lib/y=y"}, nil,
			[]string{"/usr/bin/a=a", "/usr/lib/y=y"}},
		{"hard link removed", []op{{"f", "usr/bin/a", "a"}, {"l", "usr/lib/x", "usr/bin/a"}, {"r", "usr/lib/x", ""}, {"f", "usr/lib/y", "y"}},
			[]string{"/usr/bin/a=a", "/usr/lib/y=y"}, nil,
			[]string{"/usr/bin/a=a", "/usr/lib/y=y"}},
		{"in a directory denying its owner writes", []op{{"D", "usr/lib/ro", ""}, {"f", "usr/bin/a", "a"}, {"f", "usr/lib/ro/x", "x"}},
			[]string{"/usr/bin/a=a", "/usr/lib/ro/x=x"}, nil,
			[]string{"/usr/bin/a=a", "/usr/lib/ro/x=x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, dir := build(t, append(slices.Clone(dirs), tt.ops...))
			// Each Stream hands out every file, with the same IDs.
			var trees []*Tree
			for k := range 2 {
				s := b.Stream()
				var got []string
				var err error
				for id := uint32(0); ; id++ {
					var f File
					if f, err = s.Next(context.Background()); err != nil {
						break
					}
					if f.ID != id {
						t.Errorf("stream %d: file %d has ID %d", k, id, f.ID)
					}
					got = append(got, s.Path(f)+"="+readAll(t, func() (io.ReadCloser, error) { return s.Open(f) }))
				}
				if !reflect.DeepEqual(got, tt.streams) {
					t.Errorf("stream %d handed out %v, want %v", k, got, tt.streams)
				}
				st, terr := s.Tree(context.Background())
				if want := tt.err; want == nil && err != io.EOF || want != nil && !errors.Is(err, want) || !errors.Is(terr, want) {
					t.Errorf("stream %d: Next ended with %v, Tree with %v; want %v", k, err, terr, want)
				}
				if st != nil {
					trees = append(trees, st)
				}
			}
			tr, err := b.Built(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			// The tree is built once: Built and the Streams give the same.
			if again, _ := b.Built(context.Background()); again != tr {
				t.Error("Built gave another Tree the second time")
			}
			for _, st := range trees {
				if st != tr {
					t.Error("a Stream's Tree is not Built's")
				}
			}
			if got := contentFiles(t, tr); !reflect.DeepEqual(got, tt.tree) {
				t.Errorf("built tree has %v, want %v", got, tt.tree)
			}
			read, err := Read(context.Background(), dir)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := describe(t, tr), describe(t, read); !reflect.DeepEqual(got, want) {
				t.Errorf("built tree:\n%q\nRead finds:\n%q", got, want)
			}
		})
	}
}

// TestBuilderHoles checks that a sparse file is added with the holes Read
// finds in it, which erofs stores as such.
func TestBuilderHoles(t *testing.T) {
	b, dir := build(t, []op{{"h", "sparse", "4"}})
	tr, err := b.Built(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	read, err := Read(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	i := paths(tr)["/sparse"]
	if tr.Holes(i) == nil {
		t.Skip("the file system of the temporary directory makes no holes")
	}
	if got, want := tr.Holes(i), read.Holes(paths(read)["/sparse"]); !reflect.DeepEqual(got, want) {
		t.Errorf("holes %v, Read finds %v", got, want)
	}
}

// TestBuilderCancel checks that Next and Built stop waiting when their
// context is done.
func TestBuilderCancel(t *testing.T) {
	b := NewBuilder(t.TempDir(), 0, 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { _, err := b.Stream().Next(ctx); done <- err }()
	go func() { _, err := b.Built(ctx); done <- err }()
	cancel()
	for range 2 {
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	}
}

// TestBuilderEntries checks modes, owners, links and the refusals of a
// Builder.
func TestBuilderEntries(t *testing.T) {
	b := NewBuilder(t.TempDir(), 7, 8)
	for _, err := range []error{
		b.Dir("usr", 0o700), b.File("usr/f", fs.ModeSetuid|0o755, 0), b.Symlink("usr/s", "f"), b.Link("usr/h", "usr/f"), b.Dir("usr", 0o755),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name string
		err  error
	}{
		{"no parent", b.File("opt/f", 0o644, 0)},
		{"link to a symlink", b.Link("usr/x", "usr/s")},
		{"replace a directory", b.Symlink("usr", "x")},
		{"invalid", b.Dir("usr/../etc", 0o755)},
		{"remove what is not there", b.Remove("usr/none")},
	} {
		if tt.err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
	b.Close(nil)
	tr, err := b.Built(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p := paths(tr)
	for _, tt := range []struct {
		path  string
		mode  fs.FileMode
		nlink uint32
	}{{"/usr", fs.ModeDir | 0o755, 2}, {"/usr/f", fs.ModeSetuid | 0o755, 2}, {"/usr/s", fs.ModeSymlink | 0o777, 1}} {
		i := p[tt.path]
		if uid, gid := tr.Owner(i); tr.Mode(i) != tt.mode || tr.Nlink(i) != tt.nlink || uid != 7 || gid != 8 {
			t.Errorf("%s: mode %v, nlink %d, owner %d:%d; want %v, %d, 7:8", tt.path, tr.Mode(i), tr.Nlink(i), uid, gid, tt.mode, tt.nlink)
		}
	}
	if p["/usr/h"] != p["/usr/f"] {
		t.Error("a hard link is not the same inode")
	}
	b2 := NewBuilder(t.TempDir(), 0, 0)
	b2.Close(errors.New("staging failed"))
	if _, err := b2.Built(context.Background()); err == nil || err.Error() != "staging failed" {
		t.Errorf("Built after a failed Close = %v", err)
	}
}

// TestBuilderHoldsBoundedFiles adds files in reverse walk order: none can
// be handed out, and the Stream fails with ErrOrder once maxHeld are held
// rather than keep sorting them.
func TestBuilderHoldsBoundedFiles(t *testing.T) {
	dir := t.TempDir()
	b := NewBuilder(dir, 0, 0)
	for i := maxHeld; i >= 0; i-- {
		name := fmt.Sprintf("f%05d", i)
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := b.File(name, 0o644, 1); err != nil {
			t.Fatal(err)
		}
	}
	b.Close(nil)
	if _, err := b.Stream().Next(context.Background()); !errors.Is(err, ErrOrder) {
		t.Errorf("Next = %v, want ErrOrder", err)
	}
	tr, err := b.Built(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(paths(tr)); n != maxHeld+2 {
		t.Errorf("built tree has %d entries, want %d", n, maxHeld+2)
	}
}
