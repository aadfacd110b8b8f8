package tree

import (
	"fmt"
	"math"
)

// appender builds a Tree in walk order: an inode, then, for a directory,
// its entries (reserved at once, in name order) and what they hold.
type appender struct{ t *Tree }

// add appends an inode with rarer fields x and returns its number.
func (a *appender) add(n inode, x extra) (Ino, error) {
	t := a.t
	if len(t.inodes) == math.MaxUint32 {
		return 0, fmt.Errorf("more than %d inodes", uint32(math.MaxUint32))
	}
	if !x.empty() {
		t.extras = append(t.extras, x)
		n.extra = uint32(len(t.extras))
	}
	if n.mode.IsDir() {
		n.nlink = 2
	} else {
		n.nlink = 1
	}
	t.inodes = append(t.inodes, n)
	return Ino(len(t.inodes) - 1), nil
}

// reserve gives the directory dir the entries names (sorted, distinct),
// their inodes to be set by link in the same order.
func (a *appender) reserve(dir Ino, names []string) error {
	t := a.t
	if len(t.ents)+len(names) > math.MaxUint32 {
		return fmt.Errorf("more than %d directory entries", uint32(math.MaxUint32))
	}
	t.inodes[dir].size = int64(len(t.ents)) | int64(len(names))<<32
	for _, name := range names {
		if len(t.names)+len(name) > math.MaxUint32 {
			return fmt.Errorf("more than %d bytes of names", uint32(math.MaxUint32))
		}
		t.ents = append(t.ents, dirent{off: uint32(len(t.names))})
		t.names = append(t.names, name...)
	}
	return nil
}

// link makes i the k-th entry of dir; first says whether it is i's first
// name.
func (a *appender) link(dir Ino, k int, i Ino, first bool) {
	t := a.t
	start, _ := t.inodes[dir].run()
	e := start + uint32(k)
	t.ents[e].ino = i
	n := &t.inodes[i]
	switch {
	case first:
		n.parent, n.name = dir, e
	case !n.mode.IsDir():
		n.nlink++
	}
	if n.mode.IsDir() {
		t.inodes[dir].nlink++
	}
}

// empty reports whether x holds nothing.
func (x *extra) empty() bool {
	return x.xattrs == nil && x.target == "" && x.major == 0 && x.minor == 0 && x.holes == nil && x.open == nil
}
