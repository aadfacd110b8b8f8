package squashfs

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/sysext-bakery/bakery/internal/hostxattr"
	"github.com/sysext-bakery/bakery/sysext"
	"golang.org/x/sys/unix"
)

// Builder is the native squashfs sysext.Builder.
type Builder struct {
	// Workers is the number of compressing goroutines; 0 means GOMAXPROCS.
	Workers int
}

var _ sysext.Builder = Builder{}

// Name is "native", as --builder spells it.
func (Builder) Name() string { return "native" }

// Build writes the squashfs image of srcDir to dst with every inode's time
// set to opts.Epoch.
func (b Builder) Build(ctx context.Context, srcDir, dst string, opts sysext.BuildOptions) error {
	if opts.Format != "" && opts.Format != sysext.Squashfs {
		return fmt.Errorf("native squashfs builder: format %q is not squashfs", opts.Format)
	}
	root, err := ReadTree(srcDir)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("create image: %w", err)
	}
	_, err = Write(ctx, f, root, Options{
		Compression: opts.Compression, Level: opts.Level, AllRoot: opts.AllRoot,
		Epoch: opts.Epoch, Workers: b.Workers,
	})
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close image: %w", cerr)
	}
	if err != nil {
		return fmt.Errorf("write squashfs %s from %s: %w", dst, srcDir, err)
	}
	return nil
}

// ReadTree describes the directory tree at dir (not following symlinks) as
// a Node tree: owners, modes, mtimes, xattrs, devices and hard links as
// lstat and the xattr calls report them. File contents are read later,
// when the tree is written.
func ReadTree(dir string) (*Node, error) {
	r := treeReader{links: map[[2]uint64]*Node{}}
	return r.node(dir)
}

type treeReader struct {
	links map[[2]uint64]*Node
}

func (r *treeReader) node(path string) (*Node, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: path, Err: err}
	}
	isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	key := [2]uint64{st.Dev, st.Ino}
	if !isDir && st.Nlink > 1 {
		if n := r.links[key]; n != nil {
			return n, nil
		}
	}
	n := &Node{Mode: fs.FileMode(st.Mode & 0o777), UID: st.Uid, GID: st.Gid, Mtime: st.Mtim.Sec}
	if st.Mode&unix.S_ISUID != 0 {
		n.Mode |= fs.ModeSetuid
	}
	if st.Mode&unix.S_ISGID != 0 {
		n.Mode |= fs.ModeSetgid
	}
	if st.Mode&unix.S_ISVTX != 0 {
		n.Mode |= fs.ModeSticky
	}
	var err error
	if n.Xattrs, err = hostxattr.Read(path); err != nil {
		return nil, err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		n.Mode |= fs.ModeDir
		ents, err := os.ReadDir(path)
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			c, err := r.node(filepath.Join(path, e.Name()))
			if err != nil {
				return nil, err
			}
			n.Entries = append(n.Entries, Entry{Name: e.Name(), Node: c})
		}
	case unix.S_IFREG:
		n.Size = st.Size
		n.Open = func() (io.ReadCloser, error) { return os.Open(path) }
	case unix.S_IFLNK:
		n.Mode |= fs.ModeSymlink
		if n.Target, err = os.Readlink(path); err != nil {
			return nil, err
		}
	case unix.S_IFBLK, unix.S_IFCHR:
		n.Mode |= fs.ModeDevice
		if st.Mode&unix.S_IFMT == unix.S_IFCHR {
			n.Mode |= fs.ModeCharDevice
		}
		n.Major, n.Minor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
	case unix.S_IFIFO:
		n.Mode |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		n.Mode |= fs.ModeSocket
	default:
		return nil, fmt.Errorf("%s: unknown file type %#o", path, st.Mode&unix.S_IFMT)
	}
	if !isDir && st.Nlink > 1 {
		r.links[key] = n
	}
	return n, nil
}
