package validate

import (
	"context"
	"io"
	"io/fs"

	"github.com/sysext-bakery/bakery/recipes"
	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/tree"
)

// Ahead reads the content of a tree's regular files as a tree.Stream
// hands them out, while the tree is still being staged, so that its Tree
// does not read them at the end: opening every file of the tree was most
// of validation's time, and bake waited for it once staging was done.
type Ahead struct {
	s    tree.Stream
	want sysext.Arch
	done chan struct{} // closed when the reading ends
	// found holds the loadable ELF files among those read, by the order
	// the stream handed them out in; n is how many were read, err why the
	// reading stopped before the stream's end.
	found map[int]*elfCheck
	n     int
	err   error
	// byIno holds found by inode once Tree matched the stream's files
	// with the tree's; covered says it did.
	byIno   map[tree.Ino]*elfCheck
	covered bool
}

// ReadAhead starts reading the files s hands out, for an image of arch (a
// systemd architecture name), until s ends or fails or ctx is done.
func ReadAhead(ctx context.Context, s tree.Stream, arch string) (*Ahead, error) {
	want, err := sysext.ArchByName(arch)
	if err != nil {
		return nil, err
	}
	a := &Ahead{s: s, want: want, done: make(chan struct{}), found: map[int]*elfCheck{}}
	go a.read(ctx)
	return a, nil
}

// read reads the files of the stream in the order it hands them out.
func (a *Ahead) read(ctx context.Context) {
	defer close(a.done)
	for {
		f, err := a.s.Next(ctx)
		if err != nil {
			if err != io.EOF {
				a.err = err
			}
			return
		}
		rc, err := a.s.Open(f)
		if err != nil {
			a.err = err
			return
		}
		c, err := elfOf(rc, a.want)
		rc.Close()
		if err != nil {
			a.err = err
			return
		}
		if c != nil {
			a.found[a.n] = c
		}
		a.n++
	}
}

// Wait waits until the reading ended.
func (a *Ahead) Wait() { <-a.done }

// Tree waits until the reading ended, then checks t, the complete tree of
// the stream, as Tree checks it for r: it reads only unit files (checked
// by name) and, when the stream did not hand out every file of t with
// content in walk order (tree.ErrOrder) or the reading failed, every
// file.
func (a *Ahead) Tree(ctx context.Context, t *tree.Tree, r *recipes.Recipe) ([]AllowedELF, error) {
	select {
	case <-a.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if a.err == nil {
		if st, err := a.s.Tree(ctx); err == nil && st == t {
			a.match(t)
		}
	}
	return check(t.FS(), a.want, r, a) // a.elf knows nothing unless covered
}

// match maps the files read to t's inodes: the k-th file the stream
// handed out is the k-th inode with content, as tree.Stream says.
func (a *Ahead) match(t *tree.Tree) {
	a.byIno = map[tree.Ino]*elfCheck{}
	k := 0
	for i := range t.Len() {
		if ino := tree.Ino(i); t.HasContent(ino) {
			if c := a.found[k]; c != nil {
				a.byIno[ino] = c
			}
			k++
		}
	}
	a.covered = k == a.n
}

// elf gives what the reading found in the regular file d of the tree
// (nil for a file that is not a loadable ELF file), with known false when
// the reading did not cover it (or a is nil).
func (a *Ahead) elf(d fs.DirEntry) (c *elfCheck, known bool) {
	if a == nil || !a.covered {
		return nil, false
	}
	info, err := d.Info()
	if err != nil {
		return nil, false
	}
	ino, ok := info.Sys().(tree.Ino)
	if !ok {
		return nil, false
	}
	return a.byIno[ino], true
}
