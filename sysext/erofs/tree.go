package erofs

import (
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/sysext-bakery/bakery/internal/unixmode"
	"github.com/sysext-bakery/bakery/sysext/tree"
)

// inode is one file of the image, however many names it has.
type inode struct {
	t        *tree.Tree
	ino      tree.Ino
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

// rel is the slash path of the inode's first name ("/" for the root), for
// messages.
func (n *inode) rel() string { return n.t.Path(n.ino) }

// maxNameLen is erofs's limit on a file name (EROFS_NAME_LEN).
const maxNameLen = 255

// scan turns the tree t into the image's inodes, in the tree's walk
// order (the root first), and applies erofs's metadata rules: owners are
// kept or made root, a file with several names in the tree is one inode
// with their number as its link count, a directory's link count is 2
// plus its subdirectories, device numbers take erofs's encoding and only
// the xattrs erofs images carry are kept. Times are set when the inodes
// are written.
func scan(t *tree.Tree, allRoot bool) ([]*inode, error) {
	inodes := make([]*inode, t.Len())
	for i := range inodes {
		var err error
		if inodes[i], err = newInode(t, tree.Ino(i), allRoot); err != nil {
			return nil, err
		}
	}
	for i, n := range inodes {
		if n.mode&sIFMT != sIFDIR {
			continue
		}
		dir := tree.Ino(i)
		n.entries = make([]dirent, 0, 2+t.NumEntries(dir))
		n.entries = append(n.entries, dirent{".", n}, dirent{"..", inodes[t.Parent(dir)]})
		for k := range t.NumEntries(dir) {
			name, c := t.Entry(dir, k)
			if len(name) > maxNameLen {
				return nil, fmt.Errorf("%s/%s: name is %d bytes, erofs allows %d: shorten it", strings.TrimSuffix(n.rel(), "/"), name, len(name), maxNameLen)
			}
			n.entries = append(n.entries, dirent{name, inodes[c]})
		}
		// "." and ".." sort among the names: a name may start with a byte
		// below '.'.
		slices.SortFunc(n.entries, func(a, b dirent) int { return strings.Compare(a.name, b.name) })
	}
	return inodes, nil
}

// newInode is the inode i of t.
func newInode(t *tree.Tree, i tree.Ino, allRoot bool) (*inode, error) {
	mode, err := unixMode(t.Mode(i))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.Path(i), err)
	}
	n := &inode{t: t, ino: i, mode: mode, nlink: t.Nlink(i), xattrs: copiedXattrs(t.Xattrs(i))}
	if !allRoot {
		n.uid, n.gid = t.Owner(i)
	}
	switch n.mode & sIFMT {
	case sIFREG:
		n.size = t.Size(i)
		if n.data, err = dataBlocks(t.Holes(i), n.size); err != nil {
			return nil, fmt.Errorf("%s: %w", t.Path(i), err)
		}
	case sIFLNK:
		n.target = t.Target(i)
		n.size = int64(len(n.target))
	case sIFCHR, sIFBLK:
		if n.rdev, err = encodeDev(t.Device(i)); err != nil {
			return nil, fmt.Errorf("%s: %w", t.Path(i), err)
		}
	}
	return n, nil
}

// dataBlocks returns the blocks of a file of size bytes with the given
// holes that hold data: nil when every block does, so that the file is
// stored flat, and an empty list when none does.
func dataBlocks(holes []tree.Extent, size int64) ([]extent, error) {
	if holes == nil {
		return nil, nil
	}
	nblocks := blocksOf(size)
	var data []extent
	add := func(start, end int64) { // a byte range holding data
		if start >= end {
			return
		}
		e := extent{start / blockSize, min(blocksOf(end), nblocks)}
		if k := len(data) - 1; k >= 0 && data[k].end >= e.start {
			data[k].end = max(data[k].end, e.end)
		} else {
			data = append(data, e)
		}
	}
	off := int64(0)
	for _, h := range holes {
		if h.Start < off || h.End < h.Start || h.End > size {
			return nil, fmt.Errorf("hole [%d, %d) is not sorted, disjoint and inside the file of %d bytes", h.Start, h.End, size)
		}
		add(off, h.Start)
		off = h.End
	}
	add(off, size)
	if len(data) == 1 && data[0] == (extent{0, nblocks}) {
		return nil, nil
	}
	if data == nil {
		data = []extent{} // all hole
	}
	return data, nil
}

// copiedXattrs returns the xattrs that go into images, sorted by name: the
// user., trusted. and security. namespaces, as squashfs images carry
// them; nil when there are none.
func copiedXattrs(all map[string][]byte) []xattr {
	var xattrs []xattr
	for name, value := range all {
		if copiedXattr(name) {
			xattrs = append(xattrs, xattr{name, string(value)})
		}
	}
	slices.SortFunc(xattrs, func(a, b xattr) int { return strings.Compare(a.name, b.name) })
	return xattrs
}

// copiedXattr says whether the xattr name goes into images.
func copiedXattr(name string) bool {
	_, suffix, ok := splitXattrName(name)
	return ok && suffix != ""
}

// unixMode is the unix type and permission bits of the file mode m.
func unixMode(m fs.FileMode) (uint16, error) {
	u := uint16(unixmode.Bits(m))
	switch m.Type() {
	case 0:
		return u | sIFREG, nil
	case fs.ModeDir:
		return u | sIFDIR, nil
	case fs.ModeSymlink:
		return u | sIFLNK, nil
	case fs.ModeDevice | fs.ModeCharDevice:
		return u | sIFCHR, nil
	case fs.ModeDevice:
		return u | sIFBLK, nil
	case fs.ModeNamedPipe:
		return u | sIFIFO, nil
	case fs.ModeSocket:
		return u | sIFSOCK, nil
	}
	return 0, fmt.Errorf("file type %v has no erofs inode", m.Type())
}

// encodeDev packs a device number the way erofs stores it (the kernel's
// new_encode_dev: 12-bit major, 20-bit minor).
func encodeDev(major, minor uint32) (uint32, error) {
	if major > 0xfff || minor > 0xfffff {
		return 0, fmt.Errorf("device %d:%d does not fit erofs's 12-bit major, 20-bit minor", major, minor)
	}
	return minor&0xff | major<<8 | (minor&^0xff)<<12, nil
}
