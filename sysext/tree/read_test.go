package tree

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestRead reads a host tree holding every file type and checks each
// node against what was made.
func TestRead(t *testing.T) {
	root := os.Geteuid() == 0
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "usr/bin"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "usr/bin/tool"), []byte("tool"), 0o755))
	must(os.Chmod(filepath.Join(dir, "usr/bin/tool"), 0o755|fs.ModeSetuid|fs.ModeSetgid))
	must(os.Link(filepath.Join(dir, "usr/bin/tool"), filepath.Join(dir, "usr/bin/alias")))
	must(os.Symlink("tool", filepath.Join(dir, "usr/bin/link")))
	must(os.Mkdir(filepath.Join(dir, "usr/tmp"), 0o755))
	must(os.Chmod(filepath.Join(dir, "usr/tmp"), 0o777|fs.ModeSticky))
	must(unix.Mkfifo(filepath.Join(dir, "usr/fifo"), 0o600))
	must(unix.Lsetxattr(filepath.Join(dir, "usr/bin/tool"), "user.note", []byte("v"), 0))
	must(unix.Utimes(filepath.Join(dir, "usr/fifo"), []unix.Timeval{{Sec: 1234}, {Sec: 1234}}))
	if root {
		must(unix.Mknod(filepath.Join(dir, "usr/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
		must(unix.Mknod(filepath.Join(dir, "usr/disk"), unix.S_IFBLK|0o660, int(unix.Mkdev(259, 70000))))
		must(unix.Chmod(filepath.Join(dir, "usr/null"), 0o666)) // not narrowed by the umask
		must(unix.Chmod(filepath.Join(dir, "usr/disk"), 0o660))
		must(os.Lchown(filepath.Join(dir, "usr/bin/link"), 1000, 1001))
	}
	sock, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	must(err)
	defer unix.Close(sock)
	must(unix.Bind(sock, &unix.SockaddrUnix{Name: filepath.Join(dir, "usr/sock")}))

	tr, err := Read(context.Background(), dir)
	must(err)
	byPath := paths(tr)
	tests := []struct {
		path     string
		mode     fs.FileMode
		needRoot bool
		check    func(i Ino) string
	}{
		{"/", fs.ModeDir | 0o755, false, func(i Ino) string {
			if tr.Nlink(i) != 3 || tr.Parent(i) != Root {
				return "nlink or parent"
			}
			return ""
		}},
		{"/usr/bin/alias", 0o755 | fs.ModeSetuid | fs.ModeSetgid, false, func(i Ino) string {
			if tr.Nlink(i) != 2 || byPath["/usr/bin/tool"] != i || tr.Path(i) != "/usr/bin/alias" {
				return "the two names of one file are not one inode"
			}
			if tr.Size(i) != 4 || content(t, tr, i) != "tool" {
				return "content"
			}
			if string(tr.Xattrs(i)["user.note"]) != "v" {
				return "xattr user.note"
			}
			return ""
		}},
		{"/usr/bin/link", fs.ModeSymlink | 0o777, false, func(i Ino) string {
			if uid, gid := tr.Owner(i); tr.Target(i) != "tool" || root && (uid != 1000 || gid != 1001) {
				return "target or owners"
			}
			return ""
		}},
		{"/usr/tmp", fs.ModeDir | fs.ModeSticky | 0o777, false, nil},
		{"/usr/fifo", fs.ModeNamedPipe | 0o600, false, func(i Ino) string {
			if tr.Mtime(i) != 1234 {
				return "mtime"
			}
			return ""
		}},
		{"/usr/sock", fs.ModeSocket, false, nil},
		{"/usr/null", fs.ModeDevice | fs.ModeCharDevice | 0o666, true, func(i Ino) string {
			if major, minor := tr.Device(i); major != 1 || minor != 3 {
				return "device number"
			}
			return ""
		}},
		{"/usr/disk", fs.ModeDevice | 0o660, true, func(i Ino) string {
			if major, minor := tr.Device(i); major != 259 || minor != 70000 {
				return "device number"
			}
			return ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if tt.needRoot && !root {
				t.Skip("device nodes need root")
			}
			i, ok := byPath[tt.path]
			if !ok {
				t.Fatalf("no inode; have %v", byPath)
			}
			if tt.mode.Type() == fs.ModeSocket {
				tt.mode |= tr.Mode(i).Perm() // as the umask left it
			}
			if tr.Mode(i) != tt.mode {
				t.Errorf("mode %v, want %v", tr.Mode(i), tt.mode)
			}
			if tt.check != nil {
				if what := tt.check(i); what != "" {
					t.Errorf("%s is wrong: %+v", what, tr.in(i))
				}
			}
		})
	}
}

// paths maps the path of every name in tr to its inode.
func paths(tr *Tree) map[string]Ino {
	m := map[string]Ino{"/": Root}
	var walk func(dir Ino, p string)
	walk = func(dir Ino, p string) {
		for k := range tr.NumEntries(dir) {
			name, i := tr.Entry(dir, k)
			m[p+name] = i
			if tr.Mode(i).IsDir() {
				walk(i, p+name+"/")
			}
		}
	}
	walk(Root, "/")
	return m
}

// content reads a regular file's content.
func content(t *testing.T, tr *Tree, i Ino) string {
	t.Helper()
	return readAll(t, func() (io.ReadCloser, error) { return tr.Open(i) })
}

// readAll reads and closes what open opens.
func readAll(t *testing.T, open func() (io.ReadCloser, error)) string {
	t.Helper()
	rc, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestReadErrors checks that what is not a tree is refused, naming it, by
// Read and by ReadStream's Next and Tree alike, and that a walk stopped
// by its context fails.
func TestReadErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tt := range []struct {
		name string
		ctx  context.Context
		dir  string
		want string
	}{
		{"missing", context.Background(), filepath.Join(t.TempDir(), "nope"), "no such file"},
		{"a file", context.Background(), file, file + " is not a directory"},
		{"cancelled", cancelled, t.TempDir(), context.Canceled.Error()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Read(tt.ctx, tt.dir); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Read = %v, want an error containing %q", err, tt.want)
			}
			s := ReadStream(tt.ctx, tt.dir)
			if _, err := s.Next(context.Background()); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ReadStream: Next = %v, want an error containing %q", err, tt.want)
			}
			if _, err := s.Tree(context.Background()); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ReadStream: Tree = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	// A consumer that stops waiting.
	s := ReadStream(context.Background(), t.TempDir())
	if _, err := s.Next(cancelled); !errors.Is(err, context.Canceled) && err != io.EOF {
		t.Errorf("ReadStream: Next with a cancelled context = %v", err)
	}
}

// TestHoles writes sparse files and reads their holes, in Read's nodes and
// from Holes.
func TestHoles(t *testing.T) {
	const mib = 1 << 20
	dir := t.TempDir()
	for _, tt := range []struct {
		name  string
		size  int64
		data  []Extent
		holes []Extent
	}{
		{"dense", 3 * 4096, []Extent{{0, 3 * 4096}}, nil},
		{"empty", 0, nil, nil},
		{"all hole", 2 * mib, nil, []Extent{{0, 2 * mib}}},
		{"hole in the middle", 3 * mib, []Extent{{0, 4096}, {2 * mib, 3 * mib}}, []Extent{{4096, 2 * mib}}},
		{"holes at both ends", 3 * mib, []Extent{{mib, mib + 8192}}, []Extent{{0, mib}, {mib + 8192, 3 * mib}}},
		{"unaligned end", 2*mib + 5, []Extent{{0, 4096}, {2 * mib, 2*mib + 5}}, []Extent{{4096, 2 * mib}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, tt.name)
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Truncate(tt.size); err != nil {
				t.Fatal(err)
			}
			for _, d := range tt.data {
				if _, err := f.WriteAt([]byte(strings.Repeat("x", int(d.End-d.Start))), d.Start); err != nil {
					t.Fatal(err)
				}
			}
			f.Close()
			got, err := Holes(p, tt.size)
			if err != nil {
				t.Fatal(err)
			}
			if tt.holes != nil && got == nil {
				t.Skip("the file system keeps no holes")
			}
			if !reflect.DeepEqual(got, tt.holes) {
				t.Errorf("Holes = %v, want %v", got, tt.holes)
			}
			tr, err := Read(context.Background(), dir)
			if err != nil {
				t.Fatal(err)
			}
			if i := paths(tr)["/"+tt.name]; !reflect.DeepEqual(tr.Holes(i), tt.holes) {
				t.Errorf("Read: holes %v, want %v", tr.Holes(i), tt.holes)
			}
		})
	}
}

// TestOpenReplaced replaces files of a tree read from a directory after
// the walk: a fifo in a file's place opens at once and reads as empty
// (the writer then refuses it as shrunk) instead of waiting for a writer,
// for Open and Holes alike; a symlink in its place is not followed.
func TestOpenReplaced(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"fifo", "link", "target"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("content"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tr, err := Read(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	ino := paths(tr)
	os.Remove(filepath.Join(dir, "fifo"))
	if err := unix.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "link"))
	if err := os.Symlink("target", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if got := content(t, tr, ino["/fifo"]); got != "" {
			t.Errorf("a fifo in a file's place reads %q, want nothing", got)
		}
		if _, err := Holes(filepath.Join(dir, "fifo"), 7); err == nil {
			t.Errorf("Holes of a fifo succeeded")
		}
		if _, err := tr.Open(ino["/link"]); !errors.Is(err, unix.ELOOP) {
			t.Errorf("Open of a file replaced by a symlink = %v, want ELOOP (not followed)", err)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("opening a fifo put in a file's place blocked")
	}
}

// TestCopyTo copies a host file's content into a file, where the kernel
// copies it (copy_file_range), and into a pipe, where it refuses (EINVAL)
// and CopyTo copies through its own buffer; asking for more than the file
// holds gives what it holds and io.EOF.
func TestCopyTo(t *testing.T) {
	content := bytes.Repeat([]byte("0123456789abcdef"), 20000) // 320,000 bytes: several buffers
	src := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(src, content, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, into := range []string{"file", "pipe"} {
		for _, n := range []int64{int64(len(content)), int64(len(content)) + 1} {
			t.Run(fmt.Sprintf("%s/%d", into, n), func(t *testing.T) {
				rc, err := openHost([]byte(src + "\x00"))
				if err != nil {
					t.Fatal(err)
				}
				defer rc.Close()
				var dst *os.File
				got := make(chan []byte, 1)
				if into == "file" {
					if dst, err = os.Create(filepath.Join(t.TempDir(), "dst")); err != nil {
						t.Fatal(err)
					}
				} else {
					r, w, err := os.Pipe()
					if err != nil {
						t.Fatal(err)
					}
					dst = w
					go func() { b, _ := io.ReadAll(r); r.Close(); got <- b }()
				}
				copied, err := rc.(*hostFile).CopyTo(dst, n)
				if want := error(nil); n > int64(len(content)) {
					if err != io.EOF {
						t.Errorf("copying %d of %d bytes: err %v, want io.EOF", n, len(content), err)
					}
				} else if err != want {
					t.Fatal(err)
				}
				if copied != int64(len(content)) {
					t.Errorf("copied %d bytes, want %d", copied, len(content))
				}
				dst.Close()
				var b []byte
				if into == "file" {
					b, _ = os.ReadFile(dst.Name())
				} else {
					b = <-got
				}
				if !bytes.Equal(b, content) {
					t.Errorf("%s holds %d bytes, not the file's %d", into, len(b), len(content))
				}
			})
		}
	}
}

// TestCopyToReusesItsBuffer copies into a pipe, which the kernel refuses
// (EINVAL), 50 times and checks that the copies through CopyTo's own
// buffer allocate no buffer each: dst's ReadFrom allocated one a call.
func TestCopyToReusesItsBuffer(t *testing.T) {
	content := bytes.Repeat([]byte("x"), 64<<10)
	src := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(src, content, 0o644); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	go func() { // drains the pipe into one buffer, allocating nothing
		buf := make([]byte, 64<<10)
		for {
			if _, err := r.Read(buf); err != nil {
				r.Close()
				return
			}
		}
	}()
	const copies = 50
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range copies {
		rc, err := openHost([]byte(src + "\x00"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rc.(*hostFile).CopyTo(w, int64(len(content))); err != nil {
			t.Fatal(err)
		}
		rc.Close()
	}
	runtime.ReadMemStats(&after)
	if perCopy := (after.TotalAlloc - before.TotalAlloc) / copies; perCopy > 4<<10 {
		t.Errorf("%d bytes allocated a copy of %d bytes", perCopy, len(content))
	}
}
