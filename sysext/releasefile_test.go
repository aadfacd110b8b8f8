package sysext

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sysext-bakery/bakery/internal/bounded"
)

// lyingFS holds one file, "f", whose stat says size and whose content is
// line repeated without end; it counts opens and bytes read.
type lyingFS struct {
	size  int64
	line  string
	opens int
	read  int64
}

func (l *lyingFS) Stat(name string) (fs.FileInfo, error) {
	if name != "f" {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
	}
	return lyingInfo{l.size}, nil
}

func (l *lyingFS) Open(name string) (fs.File, error) {
	if _, err := l.Stat(name); err != nil {
		return nil, err
	}
	l.opens++
	return &lyingFile{fs: l}, nil
}

type lyingFile struct {
	fs  *lyingFS
	off int
}

func (f *lyingFile) Stat() (fs.FileInfo, error) { return lyingInfo{f.fs.size}, nil }
func (f *lyingFile) Close() error               { return nil }
func (f *lyingFile) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = f.fs.line[f.off%len(f.fs.line)]
		f.off++
	}
	f.fs.read += int64(len(p))
	return len(p), nil
}

type lyingInfo struct{ size int64 }

func (i lyingInfo) Name() string       { return "f" }
func (i lyingInfo) Size() int64        { return i.size }
func (i lyingInfo) Mode() fs.FileMode  { return 0o644 }
func (i lyingInfo) ModTime() time.Time { return time.Time{} }
func (i lyingInfo) IsDir() bool        { return false }
func (i lyingInfo) Sys() any           { return nil }

// TestReadReleaseFileLies reads files whose size is huge or lies: the huge
// one must be refused unopened, the lying one after at most
// MaxReleaseSize+1 bytes.
func TestReadReleaseFileLies(t *testing.T) {
	for _, tc := range []struct {
		name       string
		size       int64
		want       string
		opens      int
		readAtMost int64
	}{
		{"3 GiB sparse", 3 << 30, `"f" has 3221225472 bytes, more than the 1048576 a release file may have`, 0, 0},
		{"one byte too many", MaxReleaseSize + 1, "more than the 1048576", 0, 0},
		{"grows after stat", 10, "larger than 1048576 bytes", 1, MaxReleaseSize + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := &lyingFS{size: tc.size, line: "A=1\n"}
			var err error
			bounded.Run(t, bounded.Test, func() { _, err = ReadReleaseFile(fsys, "f") })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ReadReleaseFile = %v, want an error containing %q", err, tc.want)
			}
			if fsys.opens != tc.opens || fsys.read > tc.readAtMost {
				t.Errorf("opened %d times, read %d bytes; want %d opens, at most %d bytes", fsys.opens, fsys.read, tc.opens, tc.readAtMost)
			}
		})
	}
}

// TestReadReleaseFile reads release files of a host directory, which can
// hold FIFOs that block whoever opens them.
func TestReadReleaseFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("good", "ID=_any\nSYSEXT_LEVEL=1.0\n")
	write("bad", strings.Repeat("garbage", 10000)+"\n")
	for _, l := range [][2]string{{"good", "link"}, {"missing", "dangling"}} {
		if err := os.Symlink(l[0], filepath.Join(dir, l[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	fsys := os.DirFS(dir)
	for _, tc := range []struct {
		name, want string
		notExist   bool
	}{
		{"good", "", false},
		{"link", "", false},
		{"fifo", `"fifo" is a fifo, not a regular file`, false},
		{"dir", `"dir" is a directory, not a regular file`, false},
		{"bad", `"bad": line 1:`, false},
		{"missing", "release file: stat missing", true},
		{"dangling", "dangling", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var (
				rel Release
				err error
			)
			bounded.Run(t, bounded.Test, func() { rel, err = ReadReleaseFile(fsys, tc.name) })
			if tc.want == "" {
				if err != nil || rel["ID"] != "_any" || rel["SYSEXT_LEVEL"] != "1.0" {
					t.Fatalf("ReadReleaseFile = %v, %v", rel, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, fs.ErrNotExist) != tc.notExist {
				t.Fatalf("ReadReleaseFile = %v, want an error containing %q (not exist: %v)", err, tc.want, tc.notExist)
			}
			if len(err.Error()) > 200 {
				t.Errorf("error of %d bytes echoes the file: %.200s", len(err.Error()), err)
			}
		})
	}
}
