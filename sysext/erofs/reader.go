package erofs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"

	goerofs "github.com/erofs/go-erofs"
)

// Image is an uncompressed erofs image opened for reading, as an fs.FS. Its
// fs.FileInfo values have the full mode (setuid, setgid, sticky) and a Sys
// of type *goerofs.Stat (owners, link count, nid as Ino, device, xattrs).
type Image struct {
	fsys fsys
}

// fsys is what go-erofs's reader implements beyond fs.FS.
type fsys interface {
	fs.FS
	fs.StatFS
	fs.ReadDirFS
	fs.ReadFileFS
	fs.ReadLinkFS
}

// Open reads the superblock of the erofs image r.
func Open(r io.ReaderAt) (*Image, error) {
	f, err := goerofs.Open(r)
	if err != nil {
		return nil, fmt.Errorf("erofs: open image: %w", err)
	}
	im, ok := f.(fsys)
	if !ok {
		return nil, fmt.Errorf("erofs: go-erofs's reader lacks Stat, ReadDir, ReadFile or ReadLink")
	}
	return &Image{fsys: im}, nil
}

// checkName refuses a name fs.FS does not allow (go-erofs takes "/a",
// "a//b", "a/../b").
func checkName(op, name string) error {
	if !fs.ValidPath(name) {
		return &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	return nil
}

// Open opens the named file, following symlinks.
func (im *Image) Open(name string) (fs.File, error) {
	if err := checkName("open", name); err != nil {
		return nil, err
	}
	f, err := im.fsys.Open(name)
	if err != nil {
		return nil, err
	}
	return openFile{File: f, name: name}, nil
}

// Stat describes the named file, following symlinks.
func (im *Image) Stat(name string) (fs.FileInfo, error) {
	if err := checkName("stat", name); err != nil {
		return nil, err
	}
	return fixInfo(im.fsys.Stat(name))
}

// Lstat describes the named file without following a final symlink.
func (im *Image) Lstat(name string) (fs.FileInfo, error) {
	if err := checkName("lstat", name); err != nil {
		return nil, err
	}
	return fixInfo(im.fsys.Lstat(name))
}

// ReadLink returns the target of the symlink name.
func (im *Image) ReadLink(name string) (string, error) {
	if err := checkName("readlink", name); err != nil {
		return "", err
	}
	return im.fsys.ReadLink(name)
}

// ReadFile returns the content of the named file (go-erofs refuses files
// over 128 MiB: use Open for those).
func (im *Image) ReadFile(name string) ([]byte, error) {
	if err := checkName("readfile", name); err != nil {
		return nil, err
	}
	return im.fsys.ReadFile(name)
}

// ReadDir lists the directory name, sorted by name.
func (im *Image) ReadDir(name string) ([]fs.DirEntry, error) {
	if err := checkName("readdir", name); err != nil {
		return nil, err
	}
	entries, err := im.fsys.ReadDir(name)
	if err != nil {
		return nil, err
	}
	for i, e := range entries {
		entries[i] = dirEntry{e}
	}
	return entries, nil
}

// Walk walks the tree like fs.WalkDir from the root, and stops with an
// error at a directory met before: a damaged or hostile image can make a
// directory its own descendant.
func (im *Image) Walk(fn fs.WalkDirFunc) error {
	seen := map[int64]bool{}
	return fs.WalkDir(im, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			fi, err := d.Info()
			if err != nil {
				return fn(p, d, err)
			}
			st, ok := fi.Sys().(*goerofs.Stat)
			if !ok {
				return fmt.Errorf("erofs: %s: no erofs stat data", p)
			}
			if seen[st.Ino] {
				return fmt.Errorf("erofs: %s: directory loop (inode %d met before): the image is damaged", p, st.Ino)
			}
			seen[st.Ino] = true
		}
		return fn(p, d, err)
	})
}

// fileInfo takes its mode from the raw erofs mode: go-erofs's own Mode
// leaves setuid, setgid and sticky as raw bits.
type fileInfo struct {
	fs.FileInfo
}

// Mode is the file's type and permission bits, setuid, setgid and sticky.
func (fi fileInfo) Mode() fs.FileMode {
	if st, ok := fi.Sys().(*goerofs.Stat); ok {
		return st.Mode
	}
	return fi.FileInfo.Mode()
}

// fixInfo wraps a go-erofs FileInfo.
func fixInfo(fi fs.FileInfo, err error) (fs.FileInfo, error) {
	if err != nil {
		return nil, err
	}
	return fileInfo{fi}, nil
}

// dirEntry gives Info the full mode.
type dirEntry struct {
	fs.DirEntry
}

// Info describes the entry without following a symlink.
func (e dirEntry) Info() (fs.FileInfo, error) {
	return fixInfo(e.DirEntry.Info())
}

// openFile gives Stat the full mode.
type openFile struct {
	fs.File
	name string
}

// Stat describes the open file.
func (f openFile) Stat() (fs.FileInfo, error) {
	return fixInfo(f.File.Stat())
}

// ReadDir lists an open directory, n entries at a time (fs.ReadDirFile).
func (f openFile) ReadDir(n int) ([]fs.DirEntry, error) {
	d, ok := f.File.(fs.ReadDirFile)
	if !ok {
		return nil, &fs.PathError{Op: "readdir", Path: f.name, Err: errors.New("not a directory")}
	}
	entries, err := d.ReadDir(n)
	for i, e := range entries {
		entries[i] = dirEntry{e}
	}
	return entries, err
}
