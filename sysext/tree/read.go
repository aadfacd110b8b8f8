package tree

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/sysext-bakery/bakery/internal/hostxattr"
)

// Read describes the host directory tree rooted at dir, not following
// symlinks, as lstat, the xattr calls and SEEK_DATA/SEEK_HOLE report it:
// modes, owners, mtimes, every xattr, device numbers, symlink targets,
// sizes and the holes of sparse files. A file with several names in the
// tree is one Node. File contents are read later, through Node.Open,
// which refuses to follow a symlink put in a file's place since.
func Read(ctx context.Context, dir string) (*Node, error) {
	w := walker{ctx: ctx, links: map[fileID]*Node{}}
	root, err := w.node(dir)
	if err != nil {
		return nil, err
	}
	if !root.Mode.IsDir() {
		return nil, fmt.Errorf("%s is not a directory: give the staged tree's root", dir)
	}
	return root, nil
}

// fileID identifies a host inode.
type fileID struct{ dev, ino uint64 }

// walker holds the state of one Read.
type walker struct {
	ctx   context.Context
	links map[fileID]*Node // multiply linked files met so far
}

// node describes the file at path and, for a directory, everything below
// it.
func (w *walker) node(path string) (*Node, error) {
	if err := w.ctx.Err(); err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: path, Err: err}
	}
	typ := st.Mode & unix.S_IFMT
	id := fileID{st.Dev, st.Ino}
	linked := typ != unix.S_IFDIR && st.Nlink > 1
	if n := w.links[id]; linked && n != nil {
		return n, nil
	}
	n := &Node{Mode: fs.FileMode(st.Mode & 0o777), UID: st.Uid, GID: st.Gid, Mtime: st.Mtim.Sec}
	for _, b := range []struct {
		unix uint32
		mode fs.FileMode
	}{{unix.S_ISUID, fs.ModeSetuid}, {unix.S_ISGID, fs.ModeSetgid}, {unix.S_ISVTX, fs.ModeSticky}} {
		if st.Mode&b.unix != 0 {
			n.Mode |= b.mode
		}
	}
	var err error
	if n.Xattrs, err = hostxattr.Read(path); err != nil {
		return nil, err
	}
	switch typ {
	case unix.S_IFDIR:
		n.Mode |= fs.ModeDir
		if n.Entries, err = w.dir(path); err != nil {
			return nil, err
		}
	case unix.S_IFREG:
		n.Size = st.Size
		n.Open = func() (io.ReadCloser, error) { return os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW, 0) }
		if st.Blocks*512 < st.Size {
			if n.Holes, err = Holes(path, st.Size); err != nil {
				return nil, fmt.Errorf("%s: find holes: %w", path, err)
			}
		}
	case unix.S_IFLNK:
		n.Mode |= fs.ModeSymlink
		if n.Target, err = os.Readlink(path); err != nil {
			return nil, err
		}
	case unix.S_IFBLK:
		n.Mode |= fs.ModeDevice
		n.Major, n.Minor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
	case unix.S_IFCHR:
		n.Mode |= fs.ModeDevice | fs.ModeCharDevice
		n.Major, n.Minor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
	case unix.S_IFIFO:
		n.Mode |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		n.Mode |= fs.ModeSocket
	default:
		return nil, fmt.Errorf("%s: unknown file type %#o", path, typ)
	}
	if linked {
		w.links[id] = n
	}
	return n, nil
}

// dir describes the entries of the directory at path, sorted by name.
func (w *walker) dir(path string) ([]Entry, error) {
	ents, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	entries := make([]Entry, 0, len(ents))
	for _, e := range ents {
		c, err := w.node(filepath.Join(path, e.Name()))
		if err != nil {
			return nil, err
		}
		entries = append(entries, Entry{Name: e.Name(), Node: c})
	}
	return entries, nil
}

// Holes returns the holes of the host file p (size bytes long) as
// SEEK_DATA and SEEK_HOLE report them, or nil when it has none. Read asks
// only for files that take fewer blocks than their size.
func Holes(p string, size int64) ([]Extent, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var holes []Extent
	off := int64(0) // the end of the data found so far
	for off < size {
		start, err := f.Seek(off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole is left
		}
		if err != nil {
			return nil, err
		}
		end, err := f.Seek(start, unix.SEEK_HOLE)
		if err != nil {
			return nil, err
		}
		if start > off {
			holes = append(holes, Extent{off, start})
		}
		off = end
	}
	if off < size {
		holes = append(holes, Extent{off, size})
	}
	return holes, nil
}
