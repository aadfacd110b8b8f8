package squashfs

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/sysext-bakery/bakery/internal/clip"
)

// maxPathShown is how much of a path from an image an error shows.
const maxPathShown = 128

// errLoop marks a walk that met a directory, or a directory's entries, a
// second time.
var errLoop = fmt.Errorf("%w: directory loop", errFormat)

// Walk walks the image's tree like fs.WalkDir from the root, listing each
// directory once through its inode rather than resolving paths again. A
// damaged or hostile image can make a directory its own descendant, list
// one directory twice or let directories share entries: Walk stops with an
// error, without calling fn, at a directory or listing met before, and
// when the walk takes more work than the image's tables can hold.
func (r *Reader) Walk(fn fs.WalkDirFunc) error {
	wk := &walk{r: r, fn: fn, w: r.newWork(), dirs: map[uint64]bool{}, runs: map[tablePos]bool{}}
	err := wk.visit(".", dirEntry{r: r, name: ".", typ: typeDir, ref: r.sb.RootInode})
	if err == fs.SkipDir || err == fs.SkipAll {
		return nil
	}
	return err
}

// walk is the state of one Walk.
type walk struct {
	r  *Reader
	fn fs.WalkDirFunc
	w  *work
	// dirs holds the inode references of the directories listed, runs
	// where each header of their listings starts.
	dirs map[uint64]bool
	runs map[tablePos]bool
}

// visit calls fn for d and, for a directory, walks its entries in name
// order, as fs.WalkDir does.
func (wk *walk) visit(p string, d dirEntry) error {
	if err := wk.fn(p, d, nil); err != nil || !d.IsDir() {
		if err == fs.SkipDir && d.IsDir() {
			err = nil
		}
		return err
	}
	entries, err := wk.list(d)
	if errors.Is(err, errLoop) || errors.Is(err, errWork) {
		return fmt.Errorf("walk %s: %w", clip.Quote(p, maxPathShown), err)
	}
	if err != nil {
		if err = wk.fn(p, d, &fs.PathError{Op: "readdir", Path: p, Err: err}); err != nil {
			if err == fs.SkipDir {
				err = nil
			}
			return err
		}
	}
	for _, e := range entries {
		q := e.name
		if p != "." {
			q = p + "/" + e.name
		}
		// Paths grow with depth: a chain of nested directories must not
		// cost the square of its length for free.
		if err := wk.w.charge(len(q)); err != nil {
			return fmt.Errorf("walk %s: %w", clip.Quote(q, maxPathShown), err)
		}
		if err := wk.visit(q, e); err != nil {
			if err == fs.SkipDir {
				break
			}
			return err
		}
	}
	return nil
}

// list reads the entries of the directory d, sorted by name.
func (wk *walk) list(d dirEntry) ([]dirEntry, error) {
	if wk.dirs[d.ref] {
		return nil, fmt.Errorf("%w: directory inode met before", errLoop)
	}
	wk.dirs[d.ref] = true
	in, err := wk.r.inodeAt(d.ref, wk.w)
	if err != nil {
		return nil, err
	}
	if basicType(in.typ) != typeDir {
		return nil, corrupt("entry of type directory for inode %d of type %d", in.number, in.typ)
	}
	var entries []dirEntry
	if err := wk.r.listDir(in, "", wk.w, wk.runs, func(e dirEntry) bool { entries = append(entries, e); return true }); err != nil {
		return nil, err
	}
	slices.SortFunc(entries, func(a, b dirEntry) int { return strings.Compare(a.name, b.name) })
	return entries, nil
}
