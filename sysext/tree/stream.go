package tree

import (
	"context"
	"io"
	"sync"
)

// File is a regular file with content, as a Stream hands it out before
// its tree is complete.
type File struct {
	// ID names the file to the Stream that handed it out.
	ID   uint32
	Size int64
}

// Stream hands out the regular files with content of a tree in walk
// order while the tree is still being built (read from a host directory,
// staged from archives), so that an image writer can compress their data
// before it knows the whole tree, then gives the complete tree.
type Stream interface {
	// Next returns the next file, waiting until it is known, and io.EOF
	// after the last.
	Next(ctx context.Context) (File, error)
	// Open opens the content of a file Next returned, again if need be.
	Open(f File) (io.ReadCloser, error)
	// Path is the slash path of a file Next returned, for messages.
	Path(f File) string
	// Tree waits until the tree is complete and returns it: its regular
	// files with content, in walk order, are the files Next returns, in
	// that order. It may be called before Next returned io.EOF, from
	// another goroutine.
	Tree(ctx context.Context) (*Tree, error)
}

// Files returns a Stream of the complete tree t.
func (t *Tree) Files() Stream { return &treeFiles{t: t} }

// treeFiles is the Stream of a complete Tree.
type treeFiles struct {
	t    *Tree
	next int // the next Ino to look at
}

func (s *treeFiles) Next(ctx context.Context) (File, error) {
	for ; s.next < s.t.Len(); s.next++ {
		if i := Ino(s.next); s.t.HasContent(i) {
			s.next++
			return File{ID: uint32(i), Size: s.t.Size(i)}, nil
		}
	}
	return File{}, io.EOF
}

func (s *treeFiles) Open(f File) (io.ReadCloser, error) { return s.t.Open(Ino(f.ID)) }

func (s *treeFiles) Path(f File) string { return s.t.Path(Ino(f.ID)) }

func (s *treeFiles) Tree(context.Context) (*Tree, error) { return s.t, nil }

// ReadStream is Read, walking in the background: the files come as the
// walk meets them, so that an image writer compresses them while the
// walk goes on. The walk stops when ctx is done.
func ReadStream(ctx context.Context, dir string) Stream {
	s := &readStream{tree: &Tree{dir: dir}, done: make(chan struct{})}
	s.more = sync.NewCond(&s.mu)
	go func() {
		defer close(s.done)
		err := read(ctx, s.tree, &s.mu, func(i Ino) {
			s.files = append(s.files, i)
			s.more.Signal()
		})
		s.mu.Lock()
		s.err, s.walked = err, true
		s.more.Broadcast()
		s.mu.Unlock()
	}()
	return s
}

// readStream is the Stream of a background Read. The walk changes the
// tree holding mu, and hands out the Ino of each file with content.
type readStream struct {
	mu     sync.Mutex
	more   *sync.Cond // a file or the end of the walk came
	files  []Ino      // the files met, from the first not yet handed out
	tree   *Tree      // being built; complete once walked
	err    error
	walked bool
	done   chan struct{} // closed when the walk ends
}

func (s *readStream) Next(ctx context.Context) (File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := waitFor(ctx, s.more, func() bool { return len(s.files) > 0 || s.walked }); err != nil {
		return File{}, err
	}
	if len(s.files) == 0 {
		if s.err != nil {
			return File{}, s.err
		}
		return File{}, io.EOF
	}
	i := s.files[0]
	s.files = s.files[1:]
	return File{ID: uint32(i), Size: s.tree.in(i).size}, nil
}

func (s *readStream) Open(f File) (io.ReadCloser, error) {
	s.mu.Lock()
	p := s.tree.hostPath(Ino(f.ID))
	s.mu.Unlock()
	return openHost(p)
}

func (s *readStream) Path(f File) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tree.Path(Ino(f.ID))
}

func (s *readStream) Tree(ctx context.Context) (*Tree, error) {
	select {
	case <-s.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if s.err != nil {
		return nil, s.err
	}
	return s.tree, nil
}
