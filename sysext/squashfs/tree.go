package squashfs

import (
	"fmt"
	"io/fs"
	"math"

	"github.com/sysext-bakery/bakery/sysext/tree"
)

// shape is what the writer learns of a complete tree: how many regular
// files with content it has.
type shape struct {
	files int
}

// checkTree checks every inode of t against squashfs's limits and counts
// the files with content.
func checkTree(t *tree.Tree) (shape, error) {
	if t.Len() >= math.MaxUint32 {
		return shape{}, fmt.Errorf("tree of %d inodes: too large for squashfs", t.Len())
	}
	var s shape
	for i := range t.Len() {
		n := tree.Ino(i)
		if err := checkNode(t, n); err != nil {
			return shape{}, fmt.Errorf("%s: %w", t.Path(n), err)
		}
		for k := range t.NumEntries(n) {
			if name, _ := t.Entry(n, k); len(name) > maxNameLen {
				return shape{}, fmt.Errorf("%s: invalid name %q: squashfs names are at most %d bytes", t.Path(n), name, maxNameLen)
			}
		}
		if t.HasContent(n) {
			s.files++
		}
	}
	return s, nil
}

// checkNode checks one inode against squashfs's limits.
func checkNode(t *tree.Tree, n tree.Ino) error {
	mode := t.Mode(n)
	if _, err := inodeType(mode); err != nil {
		return err
	}
	for name := range t.Xattrs(n) {
		if _, _, err := xattrKey(name); err != nil {
			return err
		}
	}
	major, minor := t.Device(n)
	switch {
	case mode.Type() == fs.ModeSymlink && len(t.Target(n)) > 4096:
		return fmt.Errorf("symlink target must be 1..4096 bytes")
	case mode&fs.ModeDevice != 0 && (major > 0xfff || minor > 0xfffff):
		return fmt.Errorf("device %d:%d does not fit squashfs (major < 4096, minor < 1048576)", major, minor)
	}
	return nil
}
