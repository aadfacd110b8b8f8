package erofs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sysext-bakery/bakery/internal/hostxattr"
	"github.com/sysext-bakery/bakery/sysext"
)

// tree is a staged directory scanned once with lstat, with bakery's
// metadata applied. File contents are read when the image is written.
type tree struct {
	root   string   // host directory
	inodes []*inode // the root first, then in walk order (a directory before its entries)
}

// inode is one file of the image, however many names it has.
type inode struct {
	rel      string // slash path of its first name ("." for the root)
	mode     uint16 // unix type and permission bits
	uid, gid uint32
	nlink    uint32
	size     int64    // regular file: content; symlink: target; directory: set by plan
	rdev     uint32   // device number in erofs's encoding
	target   string   // symlink target
	xattrs   []xattr  // sorted by name
	entries  []dirent // directory: ".", ".." and its entries, sorted by name
	data     []extent // regular file with holes: the blocks holding data; nil when it has none
	placement
}

// maxNameLen is erofs's limit on a file name (EROFS_NAME_LEN).
const maxNameLen = 255

// scan lstats the tree rooted at dir and applies opts' metadata rules:
// every time is the epoch (the superblock's build time), owners are kept
// or made root, a hard-linked file is one inode with the link count of its
// names in the tree, a directory's link count is 2 plus its subdirectories.
func scan(ctx context.Context, dir string, opts sysext.BuildOptions) (*tree, error) {
	t := &tree{root: dir}
	s := scanner{tree: t, ctx: ctx, allRoot: opts.AllRoot, seen: map[fileID]*inode{}}
	root, err := s.entry(".", ".", nil)
	if err != nil {
		return nil, err
	}
	if root.mode&sIFMT != sIFDIR {
		return nil, fmt.Errorf("erofs: source %s is not a directory: give the staged tree's root", dir)
	}
	return t, nil
}

// fileID identifies a host inode.
type fileID struct{ dev, ino uint64 }

// scanner holds the state of one scan.
type scanner struct {
	*tree
	ctx     context.Context
	allRoot bool
	seen    map[fileID]*inode // multiply linked host inodes met so far
}

// entry scans rel (named name, in the directory parent, nil for the root)
// and, for a directory, everything below it.
func (s *scanner) entry(rel, name string, parent *inode) (*inode, error) {
	if err := s.ctx.Err(); err != nil {
		return nil, err
	}
	if len(name) > maxNameLen {
		return nil, fmt.Errorf("erofs: %s: name is %d bytes, erofs allows %d: shorten it", rel, len(name), maxNameLen)
	}
	host := s.host(rel)
	fi, err := os.Lstat(host)
	if err != nil {
		return nil, fmt.Errorf("erofs: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, fmt.Errorf("erofs: %s: no unix stat data: build on Linux", host)
	}
	id := fileID{uint64(st.Dev), uint64(st.Ino)}
	if first := s.seen[id]; first != nil {
		first.nlink++
		return first, nil
	}
	n := &inode{rel: rel, mode: uint16(st.Mode), uid: st.Uid, gid: st.Gid, nlink: 1}
	if s.allRoot {
		n.uid, n.gid = 0, 0
	}
	if !fi.IsDir() && st.Nlink > 1 {
		s.seen[id] = n
	}
	s.inodes = append(s.inodes, n)
	if n.xattrs, err = readXattrs(host); err != nil {
		return nil, err
	}
	switch n.mode & sIFMT {
	case sIFDIR:
		return n, s.dir(n, host, parent)
	case sIFREG:
		n.size = fi.Size()
		if st.Blocks*512 < n.size {
			if n.data, err = dataExtents(host, n.size); err != nil {
				return nil, fmt.Errorf("erofs: %s: find holes: %w", rel, err)
			}
		}
	case sIFLNK:
		if n.target, err = os.Readlink(host); err != nil {
			return nil, fmt.Errorf("erofs: %w", err)
		}
		n.size = int64(len(n.target))
	case sIFCHR, sIFBLK:
		if n.rdev, err = encodeDev(unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev))); err != nil {
			return nil, fmt.Errorf("erofs: %s: %w", rel, err)
		}
	}
	return n, nil
}

// dir scans the entries of directory n (in parent, nil for the root) and
// sets its link count.
func (s *scanner) dir(n *inode, host string, parent *inode) error {
	entries, err := os.ReadDir(host)
	if err != nil {
		return fmt.Errorf("erofs: %w", err)
	}
	if parent == nil {
		parent = n
	}
	n.nlink = 2
	n.entries = []dirent{{".", n}, {"..", parent}}
	for _, e := range entries {
		c, err := s.entry(path.Join(n.rel, e.Name()), e.Name(), n)
		if err != nil {
			return err
		}
		n.entries = append(n.entries, dirent{e.Name(), c})
		if c.mode&sIFMT == sIFDIR {
			n.nlink++
		}
	}
	slices.SortFunc(n.entries, func(a, b dirent) int { return strings.Compare(a.name, b.name) })
	return nil
}

// host is the host path of the slash path rel.
func (t *tree) host(rel string) string {
	return filepath.Join(t.root, filepath.FromSlash(rel))
}

// dataExtents returns the blocks of the host file p (size bytes) that hold
// data, as SEEK_DATA and SEEK_HOLE report them, or nil when it has no hole
// of a whole block.
func dataExtents(p string, size int64) ([]extent, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	nblocks := blocksOf(size)
	var data []extent
	for off := int64(0); off < size; {
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
		e := extent{start / blockSize, min(blocksOf(end), nblocks)}
		if k := len(data) - 1; k >= 0 && data[k].end >= e.start {
			data[k].end = max(data[k].end, e.end)
		} else if e.start < e.end {
			data = append(data, e)
		}
		off = end
	}
	if len(data) == 1 && data[0] == (extent{0, nblocks}) {
		return nil, nil
	}
	if data == nil {
		data = []extent{} // all hole
	}
	return data, nil
}

// readXattrs returns the copied xattrs of the host file p (not following a
// symlink) sorted by name, or nil when it has none.
func readXattrs(p string) ([]xattr, error) {
	all, err := hostxattr.Read(p)
	if err != nil {
		return nil, fmt.Errorf("erofs: %w", err)
	}
	var xattrs []xattr
	for name, value := range all {
		if copiedXattr(name) {
			xattrs = append(xattrs, xattr{name, string(value)})
		}
	}
	slices.SortFunc(xattrs, func(a, b xattr) int { return strings.Compare(a.name, b.name) })
	return xattrs, nil
}

// copiedXattr says whether the xattr name goes into images: the user.,
// trusted. and security. namespaces, as squashfs images carry them.
func copiedXattr(name string) bool {
	_, suffix, ok := splitXattrName(name)
	return ok && suffix != ""
}

// encodeDev packs a device number the way erofs stores it (the kernel's
// new_encode_dev: 12-bit major, 20-bit minor).
func encodeDev(major, minor uint32) (uint32, error) {
	if major > 0xfff || minor > 0xfffff {
		return 0, fmt.Errorf("device %d:%d does not fit erofs's 12-bit major, 20-bit minor", major, minor)
	}
	return minor&0xff | major<<8 | (minor&^0xff)<<12, nil
}
