package tree

import (
	"fmt"
	"io/fs"
	"slices"
	"strings"
)

// FromNode validates the tree rooted at root, built in memory, and returns
// it as a Tree. It refuses what no image can hold: a root that is not a
// directory, an entry without a node, a name that is empty, "." or "..",
// or holds '/', two entries of one name, a directory met twice
// (directories cannot be hard-linked), a file type other than the seven
// Node lists, a regular file of negative size or with content but no
// Open, and a symlink without a target. The limits of a format (name
// length, xattr namespaces, device numbers) are its writer's to check.
// The Nodes are not changed.
func FromNode(root *Node) (*Tree, error) {
	c, err := fromNode(root)
	if err != nil {
		return nil, err
	}
	return c.a.t, nil
}

// fromNode is FromNode, which also tells the inode of each node.
func fromNode(root *Node) (*converter, error) {
	if root == nil || !root.Mode.IsDir() {
		return nil, fmt.Errorf("tree root must be a directory node")
	}
	c := &converter{a: appender{t: &Tree{}}, ino: map[*Node]Ino{}}
	i, err := c.node(root, "/")
	if err != nil {
		return nil, err
	}
	c.a.t.in(i).parent = i
	return c, nil
}

// converter holds the state of one FromNode.
type converter struct {
	a   appender
	ino map[*Node]Ino // the nodes met so far
}

// node appends the node n, met first at path p, and, for a directory,
// everything below it.
func (c *converter) node(n *Node, p string) (Ino, error) {
	switch t := n.Mode.Type(); {
	case t != 0 && t != fs.ModeDir && t != fs.ModeSymlink && t != fs.ModeDevice && t != fs.ModeDevice|fs.ModeCharDevice && t != fs.ModeNamedPipe && t != fs.ModeSocket:
		return 0, fmt.Errorf("%s: file type %v: no image holds it", p, t)
	case t == 0 && n.Size < 0:
		return 0, fmt.Errorf("%s: negative size %d", p, n.Size)
	case t == 0 && n.Size > 0 && n.Open == nil:
		return 0, fmt.Errorf("%s: regular file of %d bytes has no Open", p, n.Size)
	case t == fs.ModeSymlink && n.Target == "":
		return 0, fmt.Errorf("%s: symlink without a target", p)
	}
	in := inode{mode: n.Mode, uid: n.UID, gid: n.GID, mtime: n.Mtime}
	x := extra{xattrs: n.Xattrs}
	switch n.Mode.Type() {
	case 0:
		in.size, x.holes, x.open = n.Size, n.Holes, n.Open
	case fs.ModeSymlink:
		x.target = n.Target
	case fs.ModeDevice, fs.ModeDevice | fs.ModeCharDevice:
		x.major, x.minor = n.Major, n.Minor
	}
	i, err := c.a.add(in, x)
	if err != nil {
		return 0, err
	}
	c.ino[n] = i
	if !n.Mode.IsDir() {
		return i, nil
	}
	entries := slices.Clone(n.Entries)
	slices.SortFunc(entries, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	names := make([]string, len(entries))
	for k, e := range entries {
		ep := strings.TrimSuffix(p, "/") + "/" + e.Name
		switch {
		case e.Name == "" || e.Name == "." || e.Name == ".." || strings.ContainsRune(e.Name, '/'):
			return 0, fmt.Errorf("%s: invalid name %q (not empty, no '/', not . or ..)", p, e.Name)
		case k > 0 && entries[k-1].Name == e.Name:
			return 0, fmt.Errorf("%s: duplicate entry", ep)
		case e.Node == nil:
			return 0, fmt.Errorf("%s: entry has no node", ep)
		}
		names[k] = e.Name
	}
	if err := c.a.reserve(i, names); err != nil {
		return 0, fmt.Errorf("%s: %w", p, err)
	}
	for k, e := range entries {
		ep := strings.TrimSuffix(p, "/") + "/" + e.Name
		child, seen := c.ino[e.Node]
		switch {
		case seen && e.Node.Mode.IsDir():
			return 0, fmt.Errorf("%s: directory appears twice in the tree (directories cannot be hard-linked)", ep)
		case !seen:
			if child, err = c.node(e.Node, ep); err != nil {
				return 0, err
			}
		}
		c.a.link(i, k, child, !seen)
	}
	return i, nil
}
