package tree

import (
	"io"
	"io/fs"
	"slices"
	"strings"
	"unsafe"

	"github.com/sysext-bakery/bakery/internal/chunked"
)

// Ino numbers the inodes of a Tree in walk order: the root is 0, a
// directory comes before its entries, entries by the bytes of their
// names, and a file with several names where its first name is met.
type Ino uint32

// Root is the Ino of the root directory.
const Root Ino = 0

// Tree is a validated file tree in a compact form whose size grows with
// the number of inodes by about 50 bytes plus the names, without a
// pointer per inode for the garbage collector to follow: what an image
// writer keeps in memory for a tree of half a million files. Read builds
// one from a host directory, FromNode from Nodes built in memory.
//
// A Tree does not change once built, and its methods are safe for
// concurrent use.
type Tree struct {
	inodes chunked.Slice[inode]
	ents   chunked.Slice[dirent]
	names  []byte // the entries' names, end to end
	extras []extra
	// dir is the host directory regular files are read from, when they
	// have no Open of their own.
	dir string
}

// inode is one inode of a Tree.
type inode struct {
	mtime int64
	// size is a regular file's length; a directory's holds where its
	// entries are in ents (see run).
	size int64
	mode fs.FileMode
	uid  uint32
	gid  uint32
	// parent is the directory of the inode's first name; the root's is
	// itself. name is that name's index in ents.
	parent Ino
	name   uint32
	// extra is 1 + the index in extras of the inode's rarer fields, or 0.
	extra uint32
}

// run is where a directory's entries are in ents: count of them from
// first.
func (n *inode) run() (first, count uint32) {
	if !n.mode.IsDir() {
		return 0, 0
	}
	return uint32(n.size), uint32(n.size >> 32)
}

// dirent is one name in a directory. The names are in names in the order
// of ents, so that a name ends where the next one starts.
type dirent struct {
	off uint32 // in names
	ino Ino
}

// extra holds what few inodes have.
type extra struct {
	xattrs       map[string][]byte
	target       string
	major, minor uint32
	holes        []Extent
	open         func() (io.ReadCloser, error)
	// names counts the names of a file with more than one, 0 otherwise.
	names uint32
}

// in is the inode i.
func (t *Tree) in(i Ino) *inode { return t.inodes.At(int(i)) }

// Len is the number of inodes.
func (t *Tree) Len() int { return t.inodes.Len() }

// Mode is the inode's type, permissions and setuid/setgid/sticky bits.
func (t *Tree) Mode(i Ino) fs.FileMode { return t.in(i).mode }

// Owner is the inode's uid and gid.
func (t *Tree) Owner(i Ino) (uid, gid uint32) {
	n := t.in(i)
	return n.uid, n.gid
}

// Mtime is the inode's modification time in seconds since 1970.
func (t *Tree) Mtime(i Ino) int64 { return t.in(i).mtime }

// Size is a regular file's length, 0 for other inodes.
func (t *Tree) Size(i Ino) int64 {
	if n := t.in(i); !n.mode.IsDir() {
		return n.size
	}
	return 0
}

// Nlink counts the inode's names; a directory's is 2 plus its
// subdirectories.
func (t *Tree) Nlink(i Ino) uint32 {
	if !t.in(i).mode.IsDir() {
		return max(t.ext(i).names, 1)
	}
	n := uint32(2)
	for k := range t.NumEntries(i) {
		if _, c := t.Entry(i, k); t.in(c).mode.IsDir() {
			n++
		}
	}
	return n
}

// Parent is the directory holding the inode's first name; the root's is
// the root.
func (t *Tree) Parent(i Ino) Ino { return t.in(i).parent }

// NumEntries is the number of a directory's entries, 0 for other inodes.
func (t *Tree) NumEntries(dir Ino) int {
	_, count := t.in(dir).run()
	return int(count)
}

// Entry is the k-th entry of a directory, by the bytes of the names: its
// name and inode.
func (t *Tree) Entry(dir Ino, k int) (string, Ino) {
	first, _ := t.in(dir).run()
	e := first + uint32(k)
	return t.name(e), t.ents.At(int(e)).ino
}

// name is the name of the entry e, sharing the tree's memory.
func (t *Tree) name(e uint32) string {
	end := uint32(len(t.names))
	if int(e)+1 < t.ents.Len() {
		end = t.ents.At(int(e + 1)).off
	}
	off := t.ents.At(int(e)).off
	if end == off {
		return ""
	}
	return unsafe.String(&t.names[off], end-off)
}

// Path is the slash path of the inode's first name, "/" for the root, for
// messages.
func (t *Tree) Path(i Ino) string {
	if i == Root {
		return "/"
	}
	return string(t.appendPath(nil, i))
}

// appendPath appends the slash path of the inode's first name to b, in
// one allocation at most: nothing for the root.
func (t *Tree) appendPath(b []byte, i Ino) []byte {
	n := 0
	for j := i; j != Root; j = t.in(j).parent {
		n += 1 + len(t.name(t.in(j).name))
	}
	b = slices.Grow(b, n)
	end := len(b) + n
	b = b[:end]
	for j := i; j != Root; j = t.in(j).parent {
		name := t.name(t.in(j).name)
		end -= len(name)
		copy(b[end:], name)
		end--
		b[end] = '/'
	}
	return b
}

// hostPath is the host path of the file i of a tree read from a host
// directory, NUL-terminated for a system call.
func (t *Tree) hostPath(i Ino) []byte {
	b := make([]byte, 0, len(t.dir)+64)
	b = append(b, t.dir...)
	return append(t.appendPath(b, i), 0)
}

// noExtra is the rarer fields of an inode without any.
var noExtra extra

// ext returns the inode's rarer fields; the caller must not change them.
func (t *Tree) ext(i Ino) *extra {
	if x := t.in(i).extra; x > 0 {
		return &t.extras[x-1]
	}
	return &noExtra
}

// Xattrs maps the inode's xattrs' full names (user.*, trusted.*,
// security.*, system.*) to their values; nil when it has none. The
// caller must not change it.
func (t *Tree) Xattrs(i Ino) map[string][]byte { return t.ext(i).xattrs }

// Target is a symlink's target.
func (t *Tree) Target(i Ino) string { return t.ext(i).target }

// Device is a device's major and minor numbers.
func (t *Tree) Device(i Ino) (major, minor uint32) {
	x := t.ext(i)
	return x.major, x.minor
}

// Holes are the ranges of a regular file that hold no data and read as
// zeros, sorted, disjoint and within its size; nil when it has none or
// none are known.
func (t *Tree) Holes(i Ino) []Extent { return t.ext(i).holes }

// HasContent reports whether the inode is a regular file with content.
func (t *Tree) HasContent(i Ino) bool {
	n := t.in(i)
	return n.mode.Type() == 0 && n.size > 0
}

// Open opens a regular file's content, which holds exactly Size bytes. A
// file read from a host directory is opened again by its path, without
// following a symlink put in its place since.
func (t *Tree) Open(i Ino) (io.ReadCloser, error) {
	switch open := t.ext(i).open; {
	case open != nil:
		return open()
	case t.dir == "":
		return io.NopCloser(strings.NewReader("")), nil // FromNode: an empty file without Open
	}
	return openHost(t.hostPath(i))
}
