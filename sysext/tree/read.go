package tree

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/sysext-bakery/bakery/internal/hostxattr"
	"github.com/sysext-bakery/bakery/internal/unixmode"
)

// Read describes the host directory tree rooted at dir, not following
// symlinks, as lstat, the xattr calls and SEEK_DATA/SEEK_HOLE report it:
// modes, owners, mtimes, every xattr, device numbers, symlink targets,
// sizes and the holes of sparse files. A file with several names in the
// tree is one inode. File contents are read later, through Tree.Open,
// which refuses to follow a symlink put in a file's place since.
func Read(ctx context.Context, dir string) (*Tree, error) {
	t := &Tree{dir: dir}
	if err := read(ctx, t, &sync.Mutex{}, func(Ino) {}); err != nil {
		return nil, err
	}
	return t, nil
}

// read fills t, empty, with the host tree at t.dir, changing t only
// while holding mu, and calls file, holding mu, with each regular file
// with content as it is added.
func read(ctx context.Context, t *Tree, mu *sync.Mutex, file func(Ino)) error {
	w := walker{ctx: ctx, a: appender{t: t}, mu: mu, file: file, links: map[fileID]Ino{}}
	var st unix.Stat_t
	if err := unix.Lstat(t.dir, &st); err != nil {
		return &fs.PathError{Op: "lstat", Path: t.dir, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("%s is not a directory: give the staged tree's root", t.dir)
	}
	root, err := w.node(t.dir, &st)
	if err != nil {
		return err
	}
	return w.dir(t.dir, root)
}

// fileID identifies a host inode.
type fileID struct{ dev, ino uint64 }

// walker holds the state of one Read.
type walker struct {
	ctx   context.Context
	a     appender
	mu    *sync.Mutex    // held while the tree changes
	file  func(Ino)      // told of each file with content
	links map[fileID]Ino // multiply linked files met so far
}

// node appends the file at path, whose lstat is st.
func (w *walker) node(path string, st *unix.Stat_t) (Ino, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	typ := st.Mode & unix.S_IFMT
	n := inode{mode: unixmode.FileMode(st.Mode), uid: st.Uid, gid: st.Gid, mtime: st.Mtim.Sec}
	var x extra
	var err error
	if x.xattrs, err = hostxattr.Read(path); err != nil {
		return 0, err
	}
	switch typ {
	case unix.S_IFDIR:
		n.mode |= fs.ModeDir
	case unix.S_IFREG:
		n.size = st.Size
		if st.Blocks*512 < st.Size {
			if x.holes, err = Holes(path, st.Size); err != nil {
				return 0, fmt.Errorf("%s: find holes: %w", path, err)
			}
		}
	case unix.S_IFLNK:
		n.mode |= fs.ModeSymlink
		if x.target, err = os.Readlink(path); err != nil {
			return 0, err
		}
	case unix.S_IFBLK:
		n.mode |= fs.ModeDevice
		x.major, x.minor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
	case unix.S_IFCHR:
		n.mode |= fs.ModeDevice | fs.ModeCharDevice
		x.major, x.minor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
	case unix.S_IFIFO:
		n.mode |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		n.mode |= fs.ModeSocket
	default:
		return 0, fmt.Errorf("%s: unknown file type %#o", path, typ)
	}
	w.mu.Lock()
	i, err := w.a.add(n, x)
	w.mu.Unlock()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return i, nil
}

// dir appends the entries of the directory i at path, sorted by name,
// and everything below them.
func (w *walker) dir(path string, i Ino) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return &fs.PathError{Op: "readdir", Path: path, Err: err}
	}
	slices.Sort(names)
	w.mu.Lock()
	err = w.a.reserve(i, names)
	w.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	dirfd := int(f.Fd())
	for k, name := range names {
		var st unix.Stat_t
		p := path + "/" + name
		if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &fs.PathError{Op: "lstat", Path: p, Err: err}
		}
		id := fileID{st.Dev, st.Ino}
		linked := st.Mode&unix.S_IFMT != unix.S_IFDIR && st.Nlink > 1
		if c, ok := w.links[id]; linked && ok {
			w.mu.Lock()
			w.a.link(i, k, c, false)
			w.mu.Unlock()
			continue
		}
		c, err := w.node(p, &st)
		if err != nil {
			return err
		}
		if linked {
			w.links[id] = c
		}
		w.mu.Lock()
		w.a.link(i, k, c, true)
		if w.a.t.HasContent(c) {
			w.file(c)
		}
		w.mu.Unlock()
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			if err := w.dir(p, c); err != nil {
				return err
			}
		}
	}
	return nil
}

// Holes returns the holes of the host file p (size bytes long) as
// SEEK_DATA and SEEK_HOLE report them, or nil when it has none. Read asks
// only for files that take fewer blocks than their size.
func Holes(p string, size int64) ([]Extent, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0) // a fifo put there must not block
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
