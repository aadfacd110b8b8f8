package erofs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sysext-bakery/bakery/sysext"
)

// tree is a staged directory scanned once with lstat, with bakery's metadata
// applied. It is the fs.FS go-erofs copies from: ReadDir and Stat answer from
// the scan, Open reads file contents from the host lazily (one open file at
// a time, whatever the tree's size).
type tree struct {
	ctx        context.Context
	root       string           // host directory
	nodes      map[string]*node // by fs.FS name ("." for the root)
	withXattrs []*node          // nodes having xattrs, in walk order
	links      []hardLink       // second and later names of multiply linked inodes
}

// node is one scanned entry. Its Sys is a *syscall.Stat_t, the form go-erofs
// takes owners, time, link count and device number from.
type node struct {
	rel      string // fs.FS name
	name     string
	mode     fs.FileMode
	size     int64
	st       syscall.Stat_t
	target   string // symlink target
	xattrs   map[string]string
	children []*node // sorted by name, as os.ReadDir returns them
}

// hardLink is a second or later name of an inode: name is to become a
// directory entry for the inode first names.
type hardLink struct {
	name, first string
}

// maxNameLen is erofs's limit on a file name (EROFS_NAME_LEN).
const maxNameLen = 255

// xattrPrefixes are the xattr namespaces copied into images.
var xattrPrefixes = []string{"user.", "trusted.", "security."}

// scan lstats the tree rooted at dir and applies opts' metadata rules.
func scan(ctx context.Context, dir string, opts sysext.BuildOptions) (*tree, error) {
	t := &tree{ctx: ctx, root: dir, nodes: map[string]*node{}}
	s := scanner{tree: t, opts: opts, seen: map[fileID]*node{}}
	root, err := s.entry(".", ".")
	if err != nil {
		return nil, err
	}
	if !root.mode.IsDir() {
		return nil, fmt.Errorf("erofs: source %s is not a directory: give the staged tree's root", dir)
	}
	for first, n := range s.linkCount {
		setUint(&first.st.Nlink, n)
	}
	return t, nil
}

// fileID identifies a host inode.
type fileID struct{ dev, ino uint64 }

// scanner holds the state of one scan.
type scanner struct {
	*tree
	opts      sysext.BuildOptions
	seen      map[fileID]*node // first name of each multiply linked inode
	linkCount map[*node]uint64 // names in the tree per first name
}

// entry scans rel (named name) and, for a directory, everything below it.
func (s *scanner) entry(rel, name string) (*node, error) {
	if err := s.ctx.Err(); err != nil {
		return nil, err
	}
	if len(name) > maxNameLen {
		return nil, fmt.Errorf("erofs: %s: name is %d bytes, erofs allows %d: shorten it", rel, len(name), maxNameLen)
	}
	host := s.host(rel)
	fi, err := os.Lstat(host)
	if err != nil {
		return nil, fmt.Errorf("erofs: %w", err)
	}
	hostSt, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, fmt.Errorf("erofs: %s: no unix stat data: build on Linux", host)
	}
	n := &node{rel: rel, name: name, mode: fi.Mode(), size: fi.Size()}
	n.st = syscall.Stat_t{
		Mode:  hostSt.Mode,
		Nlink: 1,
		Uid:   hostSt.Uid,
		Gid:   hostSt.Gid,
		Mtim:  syscall.NsecToTimespec(s.opts.Epoch * int64(time.Second)),
	}
	if s.opts.AllRoot {
		n.st.Uid, n.st.Gid = 0, 0
	}
	s.nodes[rel] = n
	if !n.mode.IsDir() && hostSt.Nlink > 1 && s.link(n, fileID{uint64(hostSt.Dev), uint64(hostSt.Ino)}) {
		return n, nil
	}
	if n.xattrs, err = readXattrs(host); err != nil {
		return nil, err
	}
	if len(n.xattrs) > 0 {
		s.withXattrs = append(s.withXattrs, n)
	}

	switch n.mode.Type() {
	case fs.ModeDir:
		if err := s.dir(n, host); err != nil {
			return nil, err
		}
		return n, nil
	case fs.ModeSymlink:
		if n.target, err = os.Readlink(host); err != nil {
			return nil, fmt.Errorf("erofs: %w", err)
		}
	case fs.ModeDevice, fs.ModeDevice | fs.ModeCharDevice:
		dev, err := encodeDev(unix.Major(uint64(hostSt.Rdev)), unix.Minor(uint64(hostSt.Rdev)))
		if err != nil {
			return nil, fmt.Errorf("erofs: %s: %w", rel, err)
		}
		setUint(&n.st.Rdev, uint64(dev))
	}
	return n, nil
}

// dir scans the children of directory n and sets its link count.
func (s *scanner) dir(n *node, host string) error {
	entries, err := os.ReadDir(host)
	if err != nil {
		return fmt.Errorf("erofs: %w", err)
	}
	n.st.Nlink = 2
	for _, e := range entries {
		c, err := s.entry(path.Join(n.rel, e.Name()), e.Name())
		if err != nil {
			return err
		}
		n.children = append(n.children, c)
		if c.mode.IsDir() {
			n.st.Nlink++
		}
	}
	return nil
}

// link records n as a name of the multiply linked host inode id and says
// whether it is a second or later name. Such a name becomes an empty regular
// file, repointed at the first name's inode once the image is written.
func (s *scanner) link(n *node, id fileID) bool {
	first, ok := s.seen[id]
	if !ok {
		s.seen[id] = n
		if s.linkCount == nil {
			s.linkCount = map[*node]uint64{}
		}
		s.linkCount[n] = 1
		return false
	}
	s.linkCount[first]++
	s.links = append(s.links, hardLink{name: n.rel, first: first.rel})
	n.mode, n.size = 0, 0
	n.st = syscall.Stat_t{Mode: syscall.S_IFREG, Nlink: 1, Mtim: n.st.Mtim}
	return true
}

// setUint sets a syscall.Stat_t field whose width differs between
// architectures.
func setUint[T ~uint32 | ~uint64](field *T, v uint64) { *field = T(v) }

// host is the host path of the fs.FS name rel.
func (t *tree) host(rel string) string {
	return filepath.Join(t.root, filepath.FromSlash(rel))
}

// abs is n's path as go-erofs's Writer spells it.
func (n *node) abs() string {
	if n.rel == "." {
		return "/"
	}
	return "/" + n.rel
}

// readXattrs returns the copied xattrs of the host file p (not following a
// symlink), or nil when it has none or its file system has no xattrs.
func readXattrs(p string) (map[string]string, error) {
	names, err := xattrCall(func(buf []byte) (int, error) { return unix.Llistxattr(p, buf) })
	if errors.Is(err, unix.ENOTSUP) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("erofs: list xattrs of %s: %w", p, err)
	}
	var xattrs map[string]string
	for _, name := range strings.Split(string(names), "\x00") {
		if !copiedXattr(name) {
			continue
		}
		value, err := xattrCall(func(buf []byte) (int, error) { return unix.Lgetxattr(p, name, buf) })
		if errors.Is(err, unix.ENODATA) {
			continue // removed since listed
		}
		if err != nil {
			return nil, fmt.Errorf("erofs: read xattr %s of %s: %w", name, p, err)
		}
		if xattrs == nil {
			xattrs = map[string]string{}
		}
		xattrs[name] = string(value)
	}
	return xattrs, nil
}

// copiedXattr says whether the xattr name goes into images.
func copiedXattr(name string) bool {
	for _, p := range xattrPrefixes {
		if strings.HasPrefix(name, p) && len(name) > len(p) {
			return true
		}
	}
	return false
}

// xattrCall runs a size-probing xattr syscall: first for the size, then with
// a buffer, again if the value grew in between.
func xattrCall(call func([]byte) (int, error)) ([]byte, error) {
	for {
		n, err := call(nil)
		if err != nil || n == 0 {
			return nil, err
		}
		buf := make([]byte, n)
		n, err = call(buf)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

// encodeDev packs a device number the way erofs stores it (the kernel's
// new_encode_dev: 12-bit major, 20-bit minor).
func encodeDev(major, minor uint32) (uint32, error) {
	if major > 0xfff || minor > 0xfffff {
		return 0, fmt.Errorf("device %d:%d does not fit erofs's 12-bit major, 20-bit minor", major, minor)
	}
	return minor&0xff | major<<8 | (minor&^0xff)<<12, nil
}

// lookup returns the node named name, or a *fs.PathError.
func (t *tree) lookup(op, name string) (*node, error) {
	n, ok := t.nodes[name]
	if !ok {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	return n, nil
}

// Open opens name; a regular file's content is opened on first Read.
func (t *tree) Open(name string) (fs.File, error) {
	n, err := t.lookup("open", name)
	if err != nil {
		return nil, err
	}
	return &file{node: n, tree: t}, nil
}

// Stat returns the scanned info of name.
func (t *tree) Stat(name string) (fs.FileInfo, error) {
	return t.lookup("stat", name)
}

// ReadDir returns the scanned children of name.
func (t *tree) ReadDir(name string) ([]fs.DirEntry, error) {
	n, err := t.lookup("readdir", name)
	if err != nil {
		return nil, err
	}
	if !n.mode.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: syscall.ENOTDIR}
	}
	entries := make([]fs.DirEntry, len(n.children))
	for i, c := range n.children {
		entries[i] = c
	}
	return entries, nil
}

// ReadLink returns the scanned target of the symlink name.
func (t *tree) ReadLink(name string) (string, error) {
	n, err := t.lookup("readlink", name)
	if err != nil {
		return "", err
	}
	if n.mode.Type() != fs.ModeSymlink {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	return n.target, nil
}

// Lstat is Stat: the tree never follows symlinks.
func (t *tree) Lstat(name string) (fs.FileInfo, error) {
	return t.lookup("lstat", name)
}

// Name is the base name (fs.FileInfo, fs.DirEntry).
func (n *node) Name() string { return n.name }

// Size is the size scanned (fs.FileInfo).
func (n *node) Size() int64 { return n.size }

// Mode is the mode scanned (fs.FileInfo).
func (n *node) Mode() fs.FileMode { return n.mode }

// ModTime is the epoch (fs.FileInfo).
func (n *node) ModTime() time.Time { return time.Unix(n.st.Mtim.Unix()) }

// IsDir tells a directory (fs.FileInfo, fs.DirEntry).
func (n *node) IsDir() bool { return n.mode.IsDir() }

// Sys is the *syscall.Stat_t go-erofs reads metadata from (fs.FileInfo).
func (n *node) Sys() any { return &n.st }

// Type is the type bits of Mode (fs.DirEntry).
func (n *node) Type() fs.FileMode { return n.mode.Type() }

// Info is n itself (fs.DirEntry).
func (n *node) Info() (fs.FileInfo, error) { return n, nil }

// file is an open tree entry; a regular file opens its host file lazily.
type file struct {
	*node
	tree   *tree
	host   *os.File
	offset int // for ReadDir
}

// Stat returns the scanned info.
func (f *file) Stat() (fs.FileInfo, error) { return f.node, nil }

// Read reads a regular file's content from the host, stopping when the
// build's context is done.
func (f *file) Read(p []byte) (int, error) {
	if !f.mode.IsRegular() {
		return 0, &fs.PathError{Op: "read", Path: f.rel, Err: fs.ErrInvalid}
	}
	if f.size == 0 {
		return 0, io.EOF
	}
	if err := f.tree.ctx.Err(); err != nil {
		return 0, err
	}
	if f.host == nil {
		h, err := os.OpenFile(f.tree.host(f.rel), os.O_RDONLY|syscall.O_NOFOLLOW, 0)
		if err != nil {
			return 0, fmt.Errorf("erofs: %w", err)
		}
		f.host = h
	}
	return f.host.Read(p)
}

// ReadDir returns the next n children (fs.ReadDirFile).
func (f *file) ReadDir(n int) ([]fs.DirEntry, error) {
	all, err := f.tree.ReadDir(f.rel)
	if err != nil {
		return nil, err
	}
	rest := all[f.offset:]
	if n > 0 && len(rest) == 0 {
		return nil, io.EOF
	}
	if n > 0 && n < len(rest) {
		rest = rest[:n]
	}
	f.offset += len(rest)
	return rest, nil
}

// Close closes the host file if one was opened.
func (f *file) Close() error {
	if f.host == nil {
		return nil
	}
	err := f.host.Close()
	f.host = nil
	return err
}
