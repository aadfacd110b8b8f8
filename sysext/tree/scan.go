package tree

import (
	"fmt"
	"io/fs"
	"slices"
	"strings"
)

// Shape is what a validating walk of a tree learns, for a writer to lay
// the tree out.
type Shape struct {
	// Nodes holds every node once, in walk order: the root first, a
	// directory before its entries, entries by name.
	Nodes []*Node
	// Entries holds each directory's entries sorted by the bytes of their
	// names.
	Entries map[*Node][]Entry
	// Nlink counts the names of each node in the tree; a directory's is
	// 2 plus its subdirectories.
	Nlink map[*Node]uint32
	// Paths names each node by its first path, "/" for the root, for
	// messages.
	Paths map[*Node]string
	// Parents holds each directory's parent; the root is its own.
	Parents map[*Node]*Node
}

// Scan validates the tree rooted at root and records its shape. It
// refuses what no image can hold: a root that is not a directory, an
// entry without a node, a name that is empty, "." or "..", or holds '/',
// two entries of one name, a directory met twice (directories cannot be
// hard-linked), a file type other than the seven Node lists, a regular
// file of negative size or with content but no Open, and a symlink
// without a target. The limits of a format (name length, xattr
// namespaces, device numbers) are its writer's to check.
func Scan(root *Node) (*Shape, error) {
	if root == nil || !root.Mode.IsDir() {
		return nil, fmt.Errorf("tree root must be a directory node")
	}
	s := &Shape{Entries: map[*Node][]Entry{}, Nlink: map[*Node]uint32{}, Paths: map[*Node]string{}, Parents: map[*Node]*Node{root: root}}
	return s, s.dir(root, "/")
}

// dir records the directory n at path p and everything below it.
func (s *Shape) dir(n *Node, p string) error {
	if err := s.add(n, p); err != nil {
		return err
	}
	entries := slices.Clone(n.Entries)
	slices.SortFunc(entries, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	s.Entries[n] = entries
	s.Nlink[n] += 2
	for i, e := range entries {
		ep := strings.TrimSuffix(p, "/") + "/" + e.Name
		switch {
		case e.Name == "" || e.Name == "." || e.Name == ".." || strings.ContainsRune(e.Name, '/'):
			return fmt.Errorf("%s: invalid name %q (not empty, no '/', not . or ..)", p, e.Name)
		case i > 0 && entries[i-1].Name == e.Name:
			return fmt.Errorf("%s: duplicate entry", ep)
		case e.Node == nil:
			return fmt.Errorf("%s: entry has no node", ep)
		case e.Node.Mode.IsDir():
			if _, seen := s.Entries[e.Node]; seen {
				return fmt.Errorf("%s: directory appears twice in the tree (directories cannot be hard-linked)", ep)
			}
			s.Nlink[n]++
			s.Parents[e.Node] = n
			if err := s.dir(e.Node, ep); err != nil {
				return err
			}
			continue
		}
		if s.Nlink[e.Node]++; s.Nlink[e.Node] > 1 {
			continue
		}
		if err := s.add(e.Node, ep); err != nil {
			return err
		}
	}
	return nil
}

// add records the node n, met first at path p, and checks its fields.
func (s *Shape) add(n *Node, p string) error {
	s.Nodes = append(s.Nodes, n)
	s.Paths[n] = p
	switch t := n.Mode.Type(); {
	case t != 0 && t != fs.ModeDir && t != fs.ModeSymlink && t != fs.ModeDevice && t != fs.ModeDevice|fs.ModeCharDevice && t != fs.ModeNamedPipe && t != fs.ModeSocket:
		return fmt.Errorf("%s: file type %v: no image holds it", p, t)
	case t == 0 && n.Size < 0:
		return fmt.Errorf("%s: negative size %d", p, n.Size)
	case t == 0 && n.Size > 0 && n.Open == nil:
		return fmt.Errorf("%s: regular file of %d bytes has no Open", p, n.Size)
	case t == fs.ModeSymlink && n.Target == "":
		return fmt.Errorf("%s: symlink without a target", p)
	}
	return nil
}
