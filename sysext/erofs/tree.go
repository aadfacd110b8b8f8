package erofs

import (
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"

	"github.com/sysext-bakery/bakery/sysext/tree"
)

// inode is one file of the image, however many names it has.
type inode struct {
	rel      string // slash path of its first name ("/" for the root)
	mode     uint16 // unix type and permission bits
	uid, gid uint32
	nlink    uint32
	size     int64    // regular file: content; symlink: target; directory: set by plan
	rdev     uint32   // device number in erofs's encoding
	target   string   // symlink target
	xattrs   []xattr  // sorted by name
	entries  []dirent // directory: ".", ".." and its entries, sorted by name
	data     []extent // regular file with holes: the blocks holding data; nil when it has none
	// open opens a regular file's content; nil for an empty file without
	// content.
	open func() (io.ReadCloser, error)
	placement
}

// maxNameLen is erofs's limit on a file name (EROFS_NAME_LEN).
const maxNameLen = 255

// scan turns the tree rooted at root into the image's inodes, in the
// tree's walk order (the root first), and applies erofs's metadata rules:
// owners are kept or made root, a file with several names in the tree is
// one inode with their number as its link count, a directory's link count
// is 2 plus its subdirectories, device numbers take erofs's encoding and
// only the xattrs erofs images carry are kept. Times are set when the
// inodes are written.
func scan(root *tree.Node, allRoot bool) ([]*inode, error) {
	s, err := tree.Scan(root)
	if err != nil {
		return nil, err
	}
	inodes := make([]*inode, len(s.Nodes))
	of := make(map[*tree.Node]*inode, len(s.Nodes))
	for i, node := range s.Nodes {
		if inodes[i], err = newInode(node, s.Paths[node], s.Nlink[node], allRoot); err != nil {
			return nil, err
		}
		of[node] = inodes[i]
	}
	for i, n := range inodes {
		if n.mode&sIFMT != sIFDIR {
			continue
		}
		node := s.Nodes[i]
		n.entries = []dirent{{".", n}, {"..", of[s.Parents[node]]}}
		for _, e := range s.Entries[node] {
			if len(e.Name) > maxNameLen {
				return nil, fmt.Errorf("%s/%s: name is %d bytes, erofs allows %d: shorten it", strings.TrimSuffix(n.rel, "/"), e.Name, len(e.Name), maxNameLen)
			}
			n.entries = append(n.entries, dirent{e.Name, of[e.Node]})
		}
		// "." and ".." sort among the names: a name may start with a byte
		// below '.'.
		slices.SortFunc(n.entries, func(a, b dirent) int { return strings.Compare(a.name, b.name) })
	}
	return inodes, nil
}

// newInode is the inode of node, first named rel, with nlink names.
func newInode(node *tree.Node, rel string, nlink uint32, allRoot bool) (*inode, error) {
	mode, err := unixMode(node.Mode)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rel, err)
	}
	n := &inode{rel: rel, mode: mode, uid: node.UID, gid: node.GID, nlink: nlink, xattrs: copiedXattrs(node.Xattrs)}
	if allRoot {
		n.uid, n.gid = 0, 0
	}
	switch n.mode & sIFMT {
	case sIFREG:
		n.size, n.open = node.Size, node.Open
		if n.data, err = dataBlocks(node.Holes, n.size); err != nil {
			return nil, fmt.Errorf("%s: %w", rel, err)
		}
	case sIFLNK:
		n.target = node.Target
		n.size = int64(len(n.target))
	case sIFCHR, sIFBLK:
		if n.rdev, err = encodeDev(node.Major, node.Minor); err != nil {
			return nil, fmt.Errorf("%s: %w", rel, err)
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
	u := uint16(m.Perm())
	for _, b := range []struct {
		mode fs.FileMode
		bit  uint16
	}{{fs.ModeSetuid, 0o4000}, {fs.ModeSetgid, 0o2000}, {fs.ModeSticky, 0o1000}} {
		if m&b.mode != 0 {
			u |= b.bit
		}
	}
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
