package erofs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	goerofs "github.com/erofs/go-erofs"

	"github.com/sysext-bakery/bakery/internal/clip"
)

// Image is an uncompressed erofs image opened for reading, as an fs.FS. Its
// fs.FileInfo values have the full mode (setuid, setgid, sticky) and a Sys
// of type *goerofs.Stat (owners, link count, nid as Ino, device, xattrs).
type Image struct {
	fsys fsys
	// size is the image's length as its superblock counts it, checked
	// against the bytes there are.
	size int64
}

// fsys is what go-erofs's reader implements beyond fs.FS.
type fsys interface {
	fs.FS
	fs.StatFS
	fs.ReadDirFS
	fs.ReadFileFS
	fs.ReadLinkFS
}

// Detect reports whether r holds an erofs superblock's magic.
func Detect(r io.ReaderAt) bool {
	var b [4]byte
	n, _ := r.ReadAt(b[:], superblockOffset)
	return n == len(b) && binary.LittleEndian.Uint32(b[:]) == sbMagic
}

// Open reads the superblock of the erofs image r. It refuses a compressed
// image, which go-erofs cannot read, naming its compressors, and an image
// shorter than its superblock says.
func Open(r io.ReaderAt) (*Image, error) {
	sb := make([]byte, superblockSize)
	if _, err := r.ReadAt(sb, superblockOffset); err != nil {
		return nil, fmt.Errorf("erofs: read superblock: %w", err)
	}
	if m := binary.LittleEndian.Uint32(sb); m != sbMagic {
		return nil, fmt.Errorf("erofs: bad superblock magic %#x, not an erofs image", m)
	}
	if algs := compressors(sb); algs != "" {
		return nil, fmt.Errorf("erofs: compressed erofs (%s) is not readable by bakery: build uncompressed erofs (--compression none) or squashfs", algs)
	}
	size, err := imageSize(r, sb)
	if err != nil {
		return nil, err
	}
	f, err := goerofs.Open(r)
	if err != nil {
		return nil, fmt.Errorf("erofs: open image: %w", err)
	}
	im, ok := f.(fsys)
	if !ok {
		return nil, fmt.Errorf("erofs: go-erofs's reader lacks Stat, ReadDir, ReadFile or ReadLink")
	}
	return &Image{fsys: im, size: size}, nil
}

// compressors names the compression algorithms the superblock sb says an
// image uses, "" for an uncompressed image. Only compressed images set the
// feature bits of compressed layouts (lz4 zero padding, compression
// configurations and big pclusters, tail packing of compressed data) or
// the field after them, which then lists the algorithms, or else is lz4's
// maximum distance.
func compressors(sb []byte) string {
	le := binary.LittleEndian
	incompat, algs := le.Uint32(sb[sbOffIncompat:]), le.Uint16(sb[sbOffComprAlgs:])
	if incompat&(featureZeroPadding|featureComprCfgs|featureZtailpacking) == 0 && algs == 0 {
		return ""
	}
	if incompat&featureComprCfgs == 0 {
		return "lz4"
	}
	var names []string
	for i := range 16 {
		if algs&(1<<i) == 0 {
			continue
		}
		if i < len(compressorNames) {
			names = append(names, compressorNames[i])
		} else {
			names = append(names, fmt.Sprintf("algorithm %d", i))
		}
	}
	if len(names) == 0 {
		return "unknown algorithm"
	}
	return strings.Join(names, ", ")
}

// imageSize is the image's length as its superblock counts it. The last
// byte must be there, so that bounds derived from the size (see Walk) are
// bounds of real bytes.
func imageSize(r io.ReaderAt, sb []byte) (int64, error) {
	bits, blocks := sb[sbOffBlockBits], binary.LittleEndian.Uint32(sb[sbOffBlocks:])
	if bits < 9 || bits > 16 || blocks == 0 {
		return 0, fmt.Errorf("erofs: superblock: %d blocks of 2^%d bytes is not an image size", blocks, bits)
	}
	size := int64(blocks) << bits
	var last [1]byte
	if _, err := r.ReadAt(last[:], size-1); err != nil {
		return 0, fmt.Errorf("erofs: the superblock counts %d blocks of %d bytes, but the image ends before (truncated?): %w", blocks, 1<<bits, err)
	}
	return size, nil
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

// A walk's work is bounded by the image size: each entry costs a
// directory entry and its path, and each directory the path again, for
// its resolution when it is listed (go-erofs lists a directory by path).
// An undamaged image holds a 12-byte entry, the entry's name and mostly an
// inode for each of them, and its paths are short: it stays well within
// walkWorkPerByte units per byte of image, plus walkMinWork for the paths
// of a small image's deep directories.
const (
	walkWorkPerByte = 16
	walkMinWork     = 1 << 20
)

// maxPathShown is how much of a path from an image an error shows.
const maxPathShown = 128

// Walk walks the tree like fs.WalkDir from the root. It stops with an
// error, without calling fn, at a directory met before, and once the walk
// takes more work than the image's size justifies: a damaged or hostile
// image can make a directory its own descendant, or let directories share
// their blocks of entries.
func (im *Image) Walk(fn fs.WalkDirFunc) error {
	seen := map[int64]bool{}
	left := walkWorkPerByte*im.size + walkMinWork
	return fs.WalkDir(im, ".", func(p string, d fs.DirEntry, err error) error {
		cost := int64(direntSize + len(p))
		if err == nil && d.IsDir() {
			cost += int64(len(p))
		}
		if left -= cost; left < 0 {
			return fmt.Errorf("erofs: %s: walking the image takes more work than its %d bytes can hold (directories that loop or share entries?): the image is damaged", clip.Quote(p, maxPathShown), im.size)
		}
		if err == nil && d.IsDir() {
			fi, err := d.Info()
			if err != nil {
				return fn(p, d, err)
			}
			st, ok := fi.Sys().(*goerofs.Stat)
			if !ok {
				return fmt.Errorf("erofs: %s: no erofs stat data", clip.Quote(p, maxPathShown))
			}
			if seen[st.Ino] {
				return fmt.Errorf("erofs: %s: directory loop (inode %d met before): the image is damaged", clip.Quote(p, maxPathShown), st.Ino)
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
