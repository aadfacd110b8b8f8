package squashfs

import (
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
)

// Node is one inode of a tree to write. The same *Node referenced from
// several directory entries is one hard-linked inode (directories cannot be
// hard-linked).
type Node struct {
	// Mode holds the file type (fs.ModeDir, fs.ModeSymlink, fs.ModeDevice,
	// fs.ModeCharDevice, fs.ModeNamedPipe, fs.ModeSocket, or none for a
	// regular file), the permissions and setuid/setgid/sticky.
	Mode     fs.FileMode
	UID, GID uint32
	// Mtime is in seconds since 1970; squashfs stores 32 unsigned bits.
	Mtime int64
	// Xattrs maps full names (user.*, trusted.*, security.*) to values.
	Xattrs map[string][]byte

	// Entries are a directory's children, in any order.
	Entries []Entry
	// Target is a symlink's target.
	Target string
	// Major and Minor are a device's numbers.
	Major, Minor uint32
	// Size is a regular file's length; Open must yield exactly Size bytes.
	Size int64
	// Open opens a regular file's content. It may be called more than once
	// (duplicate detection reads same-sized files ahead of writing).
	Open func() (io.ReadCloser, error)
}

// Entry names a node inside a directory.
type Entry struct {
	Name string
	Node *Node
}

// treeInfo is what a validating walk learns about a tree.
type treeInfo struct {
	// sorted holds each directory's entries in byte order of their names.
	sorted map[*Node][]Entry
	// nlink counts directory entries per node (plus subdirectories for
	// directories).
	nlink map[*Node]uint32
	// files lists regular files with content, in first-visit order.
	files []*Node
	// paths names each node (its first path) for error messages.
	paths map[*Node]string
}

// scanTree validates a tree and records its shape.
func scanTree(root *Node) (*treeInfo, error) {
	if root == nil || !root.Mode.IsDir() {
		return nil, fmt.Errorf("tree root must be a directory node")
	}
	t := &treeInfo{sorted: map[*Node][]Entry{}, nlink: map[*Node]uint32{}, paths: map[*Node]string{root: "/"}}
	return t, t.scan(root, "/")
}

func (t *treeInfo) scan(dir *Node, path string) error {
	if _, seen := t.sorted[dir]; seen {
		return fmt.Errorf("%s: directory appears twice in the tree (directories cannot be hard-linked)", path)
	}
	if err := checkNode(dir, path); err != nil {
		return err
	}
	entries := slices.Clone(dir.Entries)
	slices.SortFunc(entries, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	t.sorted[dir] = entries
	t.nlink[dir] += 2
	for i, e := range entries {
		p := strings.TrimSuffix(path, "/") + "/" + e.Name
		if e.Name == "" || e.Name == "." || e.Name == ".." || strings.ContainsRune(e.Name, '/') || len(e.Name) > maxNameLen {
			return fmt.Errorf("%s: invalid name %q (1..%d bytes, no '/', not . or ..)", path, e.Name, maxNameLen)
		}
		if i > 0 && entries[i-1].Name == e.Name {
			return fmt.Errorf("%s: duplicate entry", p)
		}
		if e.Node == nil {
			return fmt.Errorf("%s: entry has no node", p)
		}
		if e.Node.Mode.IsDir() {
			t.nlink[dir]++
			t.paths[e.Node] = p
			if err := t.scan(e.Node, p); err != nil {
				return err
			}
			continue
		}
		t.nlink[e.Node]++
		if t.nlink[e.Node] > 1 {
			continue
		}
		t.paths[e.Node] = p
		if err := checkNode(e.Node, p); err != nil {
			return err
		}
		if e.Node.Mode.Type() == 0 && e.Node.Size > 0 {
			t.files = append(t.files, e.Node)
		}
	}
	return nil
}

// checkNode validates the fields of one node.
func checkNode(n *Node, path string) error {
	if _, err := inodeType(n.Mode); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for name := range n.Xattrs {
		if _, _, err := xattrKey(name); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	switch {
	case n.Mode.Type() == 0 && n.Size < 0:
		return fmt.Errorf("%s: negative size %d", path, n.Size)
	case n.Mode.Type() == 0 && n.Size > 0 && n.Open == nil:
		return fmt.Errorf("%s: regular file of %d bytes has no Open", path, n.Size)
	case n.Mode.Type() == fs.ModeSymlink && (n.Target == "" || len(n.Target) > 4096):
		return fmt.Errorf("%s: symlink target must be 1..4096 bytes", path)
	case n.Mode&fs.ModeDevice != 0 && (n.Major > 0xfff || n.Minor > 0xfffff):
		return fmt.Errorf("%s: device %d:%d does not fit squashfs (major < 4096, minor < 1048576)", path, n.Major, n.Minor)
	}
	return nil
}
