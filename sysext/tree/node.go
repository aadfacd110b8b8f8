// Package tree is the file tree an image writer writes: a Tree, read from
// a staged host directory in one walk (Read) or built in memory as Nodes
// and validated (FromNode).
//
// A Tree holds everything any image format stores about a file, in a
// compact form (a few dozen bytes per inode, no pointer per inode), so
// that a tree of half a million files costs tens of MB; each writer
// (sysext/squashfs, sysext/erofs) takes a Tree and keeps only its
// format's layout and limits: which xattr namespaces, how long a name,
// how many bits for a device number.
package tree

import (
	"io"
	"io/fs"
)

// Node is one inode of a tree built in memory (FromNode makes it a Tree).
// The same *Node referenced from several directory entries is one
// hard-linked inode (directories cannot be hard-linked).
type Node struct {
	// Mode holds the file type (fs.ModeDir, fs.ModeSymlink, fs.ModeDevice,
	// fs.ModeDevice|fs.ModeCharDevice, fs.ModeNamedPipe, fs.ModeSocket,
	// or none for a regular file), the permissions and
	// setuid/setgid/sticky.
	Mode     fs.FileMode
	UID, GID uint32
	// Mtime is in seconds since 1970.
	Mtime int64
	// Xattrs maps full names (user.*, trusted.*, security.*, system.*)
	// to values.
	Xattrs map[string][]byte

	// Entries are a directory's children, in any order.
	Entries []Entry
	// Target is a symlink's target.
	Target string
	// Major and Minor are a device's numbers.
	Major, Minor uint32
	// Size is a regular file's length; Open must yield exactly Size bytes.
	Size int64
	// Holes are the ranges of a regular file that hold no data and read
	// as zeros (sparse files), sorted, disjoint and within Size; nil when
	// the file has none or none are known.
	Holes []Extent
	// Open opens a regular file's content. It may be called more than once
	// (a writer may read same-sized files ahead of writing to find
	// duplicates).
	Open func() (io.ReadCloser, error)
}

// Entry names a node inside a directory.
type Entry struct {
	Name string
	Node *Node
}

// Extent is the byte range [Start, End) of a file.
type Extent struct {
	Start, End int64
}
