package tree

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"sync"

	"golang.org/x/sys/unix"
)

// ErrOrder is the error of a Builder's Stream when the files did not come
// in walk order: an image writer that took them must start over from the
// complete tree (Builder.Built).
var ErrOrder = errors.New("files did not come in walk order")

// Builder builds a Tree from entries added by path, in any order,
// replacing one another or removed, as a stager writes them into the host
// directory dir, from where the content of regular files is read. Its
// Stream hands out the files with content as they come, a file held until
// a later one in walk order comes, as long as each comes after the last
// handed out in walk order, as archives made by a sorted walk have them;
// otherwise (or when a file handed out is replaced or removed) the Stream
// fails with ErrOrder, and the complete tree is had from Built. Owners are uid and gid, mtimes 0 and there are
// no xattrs, as a stager leaves them. Its methods are safe for concurrent
// use.
type Builder struct {
	dir      string
	uid, gid uint32

	mu    sync.Mutex
	more  *sync.Cond         // ready, broken or closed changed
	paths map[string]*Node   // every name, "" for the root
	names map[*Node][]string // the names of each file with content
	// pending holds the files with content added and not yet ready,
	// sorted by walk order of their first names.
	pending []*Node
	// ready holds the files handed out or to be, in order: the ID of a
	// File is its index.
	ready  []*Node
	last   string // the first name of the last file of ready
	broken bool
	closed bool
	err    error // why the tree is incomplete
	// tree and ino are the complete tree, built once after Close.
	tree *Tree
	ino  map[*Node]Ino
}

// NewBuilder returns a Builder of a tree read from dir, holding only its
// root directory, of mode 0755.
func NewBuilder(dir string, uid, gid uint32) *Builder {
	root := &Node{Mode: fs.ModeDir | 0o755, UID: uid, GID: gid}
	b := &Builder{dir: dir, uid: uid, gid: gid, paths: map[string]*Node{"": root}, names: map[*Node][]string{}}
	b.more = sync.NewCond(&b.mu)
	return b
}

// Dir adds the directory p (slash-separated, relative to the root), or
// gives the one there mode.
func (b *Builder) Dir(p string, mode fs.FileMode) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n := b.paths[p]; n != nil && n.Mode.IsDir() {
		n.Mode = fs.ModeDir | mode
		return nil
	}
	return b.put(p, &Node{Mode: fs.ModeDir | mode})
}

// File adds the regular file p of size bytes, replacing what is there.
// Its holes are those the host file has now, as Read finds them.
func (b *Builder) File(p string, mode fs.FileMode, size int64) error {
	n := &Node{Mode: mode, Size: size}
	if size > 0 { // an empty file needs no Open
		n.Open = func() (io.ReadCloser, error) { return b.open(n) }
		host := b.dir + "/" + p
		var st unix.Stat_t
		if err := unix.Lstat(host, &st); err != nil {
			return &fs.PathError{Op: "lstat", Path: host, Err: err}
		}
		if st.Blocks*512 < size {
			holes, err := Holes(host, size)
			if err != nil {
				return fmt.Errorf("%s: find holes: %w", host, err)
			}
			n.Holes = holes
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.put(p, n)
}

// open opens the content of the file n through its first name now: the
// name it was added under may have been replaced since, its other names
// not.
func (b *Builder) open(n *Node) (io.ReadCloser, error) {
	b.mu.Lock()
	names := b.names[n]
	b.mu.Unlock()
	if len(names) == 0 {
		return nil, fmt.Errorf("tree: open: the file is no longer in the tree")
	}
	return openHost([]byte(b.dir + "/" + names[0] + "\x00"))
}

// Symlink adds the symlink p to target, replacing what is there.
func (b *Builder) Symlink(p, target string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.put(p, &Node{Mode: fs.ModeSymlink | 0o777, Target: target})
}

// Link adds p as another name of the regular file target, replacing what
// is there.
func (b *Builder) Link(p, target string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := b.paths[target]
	if n == nil || !n.Mode.IsRegular() {
		return fmt.Errorf("tree: link %s: %s is not a regular file of the tree", p, target)
	}
	if b.paths[p] == n {
		return nil
	}
	return b.put(p, n)
}

// Remove drops the entry p and, for a directory, everything in it, as the
// stager removed it.
func (b *Builder) Remove(p string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	parent, err := b.parent(p)
	if err != nil {
		return err
	}
	n := b.paths[p]
	if n == nil {
		return fmt.Errorf("tree: remove %s: not in the tree", p)
	}
	k := index(parent, path.Base(p))
	parent.Entries = slices.Delete(parent.Entries, k, k+1)
	b.drop(p, n)
	return nil
}

// drop forgets the name p of n, removed from its directory, and what is
// below it.
func (b *Builder) drop(p string, n *Node) {
	delete(b.paths, p)
	for _, e := range n.Entries {
		b.drop(p+"/"+e.Name, e.Node)
	}
	b.unname(n, p)
}

// parent returns the directory that holds p.
func (b *Builder) parent(p string) (*Node, error) {
	if p == "" || p == "." || !fs.ValidPath(p) {
		return nil, fmt.Errorf("tree: invalid path %q", p)
	}
	dir := path.Dir(p)
	if dir == "." {
		dir = ""
	}
	parent := b.paths[dir]
	if parent == nil || !parent.Mode.IsDir() {
		return nil, fmt.Errorf("tree: %s: parent is not a directory of the tree", p)
	}
	return parent, nil
}

// index is the index of the entry name of dir, which has one.
func index(dir *Node, name string) int {
	return slices.IndexFunc(dir.Entries, func(e Entry) bool { return e.Name == name })
}

// put makes n the entry p, replacing what is there but a directory.
func (b *Builder) put(p string, n *Node) error {
	parent, err := b.parent(p)
	if err != nil {
		return err
	}
	if old := b.paths[p]; old != nil {
		if old.Mode.IsDir() {
			return fmt.Errorf("tree: %s: a directory cannot be replaced", p)
		}
		b.unname(old, p)
		parent.Entries[index(parent, path.Base(p))].Node = n
	} else {
		parent.Entries = append(parent.Entries, Entry{Name: path.Base(p), Node: n})
	}
	b.paths[p] = n
	if n.UID, n.GID = b.uid, b.gid; n.Mode.IsRegular() && n.Size > 0 {
		b.name(n, p)
	}
	return nil
}

// maxHeld bounds the files a Builder holds back: that many files come
// before one can be handed out only when they come in reverse, and the
// Stream fails with ErrOrder rather than keep them sorted.
const maxHeld = 4096

// name records p as a name of the file with content n, and hands files
// out: those before n in walk order, n once a later file comes. Once the
// order is broken, only the names are kept.
func (b *Builder) name(n *Node, p string) {
	names := b.names[n]
	b.names[n] = append(names, p)
	switch {
	case len(names) > 0:
		// Another name of a file already added: its place in the walk
		// moves if p comes first.
		first := names[0]
		slices.SortFunc(b.names[n], walkCompare)
		if b.broken || !walkLess(p, first) {
			return
		}
		if b.handedOut(n) || len(b.ready) > 0 && walkLess(p, b.last) {
			b.breakOrder()
			return
		}
		b.sortPending()
		return
	case b.broken:
		return
	case len(b.ready) > 0 && !walkLess(b.last, p), len(b.pending) == maxHeld:
		b.breakOrder()
		return
	}
	k, _ := slices.BinarySearchFunc(b.pending, p, func(q *Node, p string) int { return walkCompare(b.names[q][0], p) })
	b.pending = slices.Insert(b.pending, k, n)
	for len(b.pending) > 0 && walkLess(b.names[b.pending[0]][0], p) {
		b.handOut()
	}
}

// unname drops the name p of the replaced or removed file n, which
// leaves the tree with its last name.
func (b *Builder) unname(n *Node, p string) {
	names := b.names[n]
	if len(names) == 0 {
		return
	}
	first := names[0]
	names = slices.DeleteFunc(names, func(q string) bool { return q == p })
	if len(names) == 0 {
		delete(b.names, n)
	} else {
		b.names[n] = names
	}
	switch {
	case !b.handedOut(n) && len(names) == 0:
		b.pending = slices.DeleteFunc(b.pending, func(q *Node) bool { return q == n })
	case !b.handedOut(n):
		if names[0] != first && !b.broken {
			b.sortPending()
		}
	case len(names) == 0 || names[0] != first:
		b.breakOrder()
	}
}

// handedOut reports whether the file with content n is ready rather than
// pending (a short list).
func (b *Builder) handedOut(n *Node) bool { return !slices.Contains(b.pending, n) }

// sortPending sorts pending by walk order.
func (b *Builder) sortPending() {
	slices.SortFunc(b.pending, func(x, y *Node) int { return walkCompare(b.names[x][0], b.names[y][0]) })
}

// handOut makes the first pending file ready.
func (b *Builder) handOut() {
	n := b.pending[0]
	b.pending = b.pending[1:]
	b.ready = append(b.ready, n)
	b.last = b.names[n][0]
	b.more.Broadcast()
}

// breakOrder records that the files did not come in walk order.
func (b *Builder) breakOrder() {
	b.broken = true
	b.more.Broadcast()
}

// Close ends the tree: err, if not nil, is why it is incomplete.
func (b *Builder) Close(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.pending) > 0 {
		b.handOut()
	}
	b.closed, b.err = true, err
	b.more.Broadcast()
}

// Built waits until Close and returns the complete tree, whatever order
// its files came in: the same Tree each time, and the one its Streams
// give.
func (b *Builder) Built(ctx context.Context) (*Tree, error) {
	t, _, err := b.built(ctx)
	return t, err
}

// built waits until Close and returns the complete tree and the inode of
// each node, the same each time.
func (b *Builder) built(ctx context.Context) (*Tree, map[*Node]Ino, error) {
	if err := b.wait(ctx, func() bool { return b.closed }); err != nil {
		return nil, nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return nil, nil, b.err
	}
	if b.tree == nil {
		c, err := fromNode(b.paths[""])
		if err != nil {
			return nil, nil, err
		}
		b.tree, b.ino = c.a.t, c.ino
	}
	return b.tree, b.ino, nil
}

// wait waits until cond, checked holding mu, or until ctx is done.
func (b *Builder) wait(ctx context.Context, cond func() bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return waitFor(ctx, b.more, cond)
}

// waitFor waits until cond or until ctx is done, holding more's lock
// (the caller holds it when it calls, and holds it again on return);
// more is broadcast on every change cond looks at.
func waitFor(ctx context.Context, more *sync.Cond, cond func() bool) error {
	if cond() {
		return nil
	}
	stop := context.AfterFunc(ctx, func() {
		more.L.Lock()
		more.Broadcast()
		more.L.Unlock()
	})
	defer stop()
	for !cond() {
		if err := ctx.Err(); err != nil {
			return err
		}
		more.Wait()
	}
	return nil
}

// Stream returns a Stream of the Builder's files: each Stream hands out
// every file, whatever the others did, so that several readers (an image
// writer, a validator) can follow the staging; a File's ID is the same in
// all of them.
func (b *Builder) Stream() Stream { return &builderStream{b: b} }

// builderStream is a Builder's Stream.
type builderStream struct {
	b    *Builder
	next int // the first of b.ready this Stream has not handed out
}

// Next waits for the next file ready, and fails with ErrOrder as soon as
// the files are known not to come in walk order.
func (s *builderStream) Next(ctx context.Context) (File, error) {
	b := s.b
	if err := b.wait(ctx, func() bool { return b.broken || s.next < len(b.ready) || b.closed }); err != nil {
		return File{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.broken:
		return File{}, ErrOrder
	case s.next < len(b.ready):
		s.next++
		return File{ID: uint32(s.next - 1), Size: b.ready[s.next-1].Size}, nil
	case b.err != nil:
		return File{}, b.err
	}
	return File{}, io.EOF
}

// Open opens f's content through its first name now.
func (s *builderStream) Open(f File) (io.ReadCloser, error) {
	s.b.mu.Lock()
	n := s.b.ready[f.ID]
	s.b.mu.Unlock()
	return n.Open()
}

// Path is the first name of f now, for messages; a file removed since it
// was handed out has none.
func (s *builderStream) Path(f File) string {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if names := s.b.names[s.b.ready[f.ID]]; len(names) > 0 {
		return "/" + names[0]
	}
	return fmt.Sprintf("(file %d, removed since)", f.ID)
}

// Tree returns the complete tree, or ErrOrder when its files with content
// in walk order are not those handed out, in that order.
func (s *builderStream) Tree(ctx context.Context) (*Tree, error) {
	t, ino, err := s.b.built(ctx)
	if err != nil {
		return nil, err
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if s.b.broken {
		return nil, ErrOrder
	}
	k := 0
	for i := range t.Len() {
		if n := Ino(i); t.HasContent(n) {
			if k == len(s.b.ready) || ino[s.b.ready[k]] != n {
				return nil, ErrOrder
			}
			k++
		}
	}
	if k != len(s.b.ready) {
		return nil, ErrOrder
	}
	return t, nil
}

// walkCompare orders slash paths as a walk meets them: a directory's
// entries by the bytes of their names, a directory before its entries. It
// is byte order with '/' taken as the lowest byte (names hold no NUL).
func walkCompare(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		x, y := a[i], b[i]
		if x == '/' {
			x = 0
		}
		if y == '/' {
			y = 0
		}
		if x != y {
			return int(x) - int(y)
		}
	}
	return len(a) - len(b)
}

// walkLess reports whether a comes before b in walk order.
func walkLess(a, b string) bool { return walkCompare(a, b) < 0 }
