package tree

import (
	"io"
	"io/fs"
	"sort"
	"strings"
	"time"
)

// FS returns the tree as an fs.FS (also fs.ReadDirFS and fs.StatFS):
// names, types and modes from memory, the content of a regular file
// opened by Open (and read at any offset, io.ReaderAt, when its content
// allows). Symlinks are not followed: Open of one fails, as the tree does
// not resolve them. A FileInfo's Sys is the file's Ino.
func (t *Tree) FS() fs.FS { return treeFS{t} }

// treeFS is the fs.FS of a Tree.
type treeFS struct{ t *Tree }

// lookup finds the inode of the slash path name.
func (f treeFS) lookup(op, name string) (Ino, error) {
	if !fs.ValidPath(name) {
		return 0, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	i := Root
	if name == "." {
		return i, nil
	}
	for _, c := range strings.Split(name, "/") {
		n := f.t.NumEntries(i)
		k := sort.Search(n, func(k int) bool { e, _ := f.t.Entry(i, k); return e >= c })
		if k == n {
			return 0, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		e, c2 := f.t.Entry(i, k)
		if e != c {
			return 0, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		i = c2
	}
	return i, nil
}

func (f treeFS) Open(name string) (fs.File, error) {
	i, err := f.lookup("open", name)
	if err != nil {
		return nil, err
	}
	info := fileInfo{f.t, i, pathBase(name)}
	switch mode := f.t.Mode(i); {
	case mode.IsDir():
		return &dirFile{fileInfo: info}, nil
	case mode.IsRegular():
		rc, err := f.t.Open(i)
		if err != nil {
			return nil, err
		}
		if ra, ok := rc.(io.ReaderAt); ok {
			return &regFileAt{regFile{info, rc}, ra}, nil
		}
		return &regFile{info, rc}, nil
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
}

func (f treeFS) ReadDir(name string) ([]fs.DirEntry, error) {
	i, err := f.lookup("readdir", name)
	if err != nil {
		return nil, err
	}
	if !f.t.Mode(i).IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrInvalid}
	}
	entries := make([]fs.DirEntry, f.t.NumEntries(i))
	for k := range entries {
		e, c := f.t.Entry(i, k)
		entries[k] = fs.FileInfoToDirEntry(fileInfo{f.t, c, e})
	}
	return entries, nil
}

func (f treeFS) Stat(name string) (fs.FileInfo, error) {
	i, err := f.lookup("stat", name)
	if err != nil {
		return nil, err
	}
	return fileInfo{f.t, i, pathBase(name)}, nil
}

// pathBase is the last element of a valid fs path.
func pathBase(name string) string { return name[strings.LastIndexByte(name, '/')+1:] }

// fileInfo describes an inode of a Tree by one of its names.
type fileInfo struct {
	t    *Tree
	i    Ino
	name string
}

func (fi fileInfo) Name() string       { return fi.name }
func (fi fileInfo) Size() int64        { return fi.t.Size(fi.i) }
func (fi fileInfo) Mode() fs.FileMode  { return fi.t.Mode(fi.i) }
func (fi fileInfo) ModTime() time.Time { return time.Unix(fi.t.Mtime(fi.i), 0) }
func (fi fileInfo) IsDir() bool        { return fi.t.Mode(fi.i).IsDir() }

// Sys is the file's Ino in the tree.
func (fi fileInfo) Sys() any { return fi.i }

// dirFile is an open directory of a Tree.
type dirFile struct {
	fileInfo
	next int // the next entry ReadDir returns
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return d.fileInfo, nil }
func (d *dirFile) Close() error               { return nil }

func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.name, Err: fs.ErrInvalid}
}

func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	left := d.t.NumEntries(d.i) - d.next
	if n > 0 && left == 0 {
		return nil, io.EOF
	}
	if n <= 0 || n > left {
		n = left
	}
	entries := make([]fs.DirEntry, n)
	for k := range entries {
		e, c := d.t.Entry(d.i, d.next+k)
		entries[k] = fs.FileInfoToDirEntry(fileInfo{d.t, c, e})
	}
	d.next += n
	return entries, nil
}

// regFile is an open regular file of a Tree.
type regFile struct {
	fileInfo
	rc io.ReadCloser
}

func (r *regFile) Stat() (fs.FileInfo, error) { return r.fileInfo, nil }
func (r *regFile) Read(p []byte) (int, error) { return r.rc.Read(p) }
func (r *regFile) Close() error               { return r.rc.Close() }

// regFileAt is an open regular file whose content reads at any offset (a
// host file's does), as debug/elf and other readers of headers want.
type regFileAt struct {
	regFile
	io.ReaderAt
}
