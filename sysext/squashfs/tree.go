package squashfs

import (
	"fmt"
	"io/fs"

	"github.com/sysext-bakery/bakery/sysext/tree"
)

// treeInfo is what a validating walk learns about a tree.
type treeInfo struct {
	*tree.Shape
	// files lists regular files with content, in walk order.
	files []*tree.Node
}

// scanTree validates a tree, generally and against squashfs's limits, and
// records its shape.
func scanTree(root *tree.Node) (*treeInfo, error) {
	s, err := tree.Scan(root)
	if err != nil {
		return nil, err
	}
	t := &treeInfo{Shape: s}
	for _, n := range s.Nodes {
		if err := checkNode(n, s.Paths[n]); err != nil {
			return nil, err
		}
		for _, e := range s.Entries[n] {
			if len(e.Name) > maxNameLen {
				return nil, fmt.Errorf("%s: invalid name %q: squashfs names are at most %d bytes", s.Paths[n], e.Name, maxNameLen)
			}
		}
		if n.Mode.Type() == 0 && n.Size > 0 {
			t.files = append(t.files, n)
		}
	}
	return t, nil
}

// checkNode checks one node against squashfs's limits.
func checkNode(n *tree.Node, path string) error {
	if _, err := inodeType(n.Mode); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for name := range n.Xattrs {
		if _, _, err := xattrKey(name); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	switch {
	case n.Mode.Type() == fs.ModeSymlink && len(n.Target) > 4096:
		return fmt.Errorf("%s: symlink target must be 1..4096 bytes", path)
	case n.Mode&fs.ModeDevice != 0 && (n.Major > 0xfff || n.Minor > 0xfffff):
		return fmt.Errorf("%s: device %d:%d does not fit squashfs (major < 4096, minor < 1048576)", path, n.Major, n.Minor)
	}
	return nil
}
