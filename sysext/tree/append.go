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
	if t.inodes.Len() == math.MaxUint32 {
		return 0, fmt.Errorf("more than %d inodes", uint32(math.MaxUint32))
	}
	if !x.empty() {
		t.extras = append(t.extras, x)
		n.extra = uint32(len(t.extras))
	}
	return Ino(t.inodes.Append(n)), nil
}

// reserve gives the directory dir the entries names (sorted, distinct),
// their inodes to be set by link in the same order.
func (a *appender) reserve(dir Ino, names []string) error {
	t := a.t
	if t.ents.Len()+len(names) > math.MaxUint32 {
		return fmt.Errorf("more than %d directory entries", uint32(math.MaxUint32))
	}
	t.in(dir).size = int64(t.ents.Len()) | int64(len(names))<<32
	for _, name := range names {
		if len(t.names)+len(name) > math.MaxUint32 {
			return fmt.Errorf("more than %d bytes of names", uint32(math.MaxUint32))
		}
		t.ents.Append(dirent{off: uint32(len(t.names))})
		t.names = append(t.names, name...)
	}
	return nil
}

// link makes i the k-th entry of dir; first says whether it is i's first
// name.
func (a *appender) link(dir Ino, k int, i Ino, first bool) {
	t := a.t
	start, _ := t.in(dir).run()
	e := start + uint32(k)
	t.ents.At(int(e)).ino = i
	n := t.in(i)
	if first {
		n.parent, n.name = dir, e
		return
	}
	// Another name of a file: rare, counted with its rarer fields.
	if n.extra == 0 {
		t.extras = append(t.extras, extra{})
		n.extra = uint32(len(t.extras))
	}
	x := &t.extras[n.extra-1]
	x.names = max(x.names, 1) + 1
}

// empty reports whether x holds nothing.
func (x *extra) empty() bool {
	return x.xattrs == nil && x.target == "" && x.major == 0 && x.minor == 0 && x.holes == nil && x.open == nil && x.names == 0
}
