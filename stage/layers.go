package stage

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
)

// OCI whiteouts (image-spec layer.md): in a layer, DIR/.wh.NAME removes
// DIR/NAME of the lower layers, and DIR/.wh..wh..opq removes every entry
// of DIR the lower layers made.
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = whiteoutPrefix + whiteoutPrefix + ".opq"
)

// MaxLayers bounds the layers [Layers] applies: 127 is Docker's limit on
// an image's depth; OCI sets none, so this leaves room.
const MaxLayers = 256

// Layers applies the layers of a container image, verified local tar
// streams (tar, tar.gz or tar.zst, detected from their content) in order
// from the lowest, into root under opts as [Archive] unpacks one archive,
// with OCI whiteouts: DIR/.wh.NAME removes DIR/NAME, and DIR/.wh..wh..opq
// every entry in DIR, that lower layers of this image wrote. Entries of the
// same layer and everything this call did not write (earlier sources)
// are never removed, so a whiteout cannot delete anything outside what
// the image itself put in the extraction directory. An entry of a lower
// layer that the member at its path cannot replace (a directory and a
// file, or a symbolic link and anything else) is removed first, as an
// overlay hides it. Include patterns and StripComponents apply to the
// paths whiteouts name as to other members; a pattern must select a member
// of some layer. MaxEntries and MaxBytes bound all layers together.
func Layers(ctx context.Context, root *os.Root, layers []*os.File, opts Options) (Result, error) {
	name := opts.Origin
	if name == "" && len(layers) > 0 {
		name = layers[0].Name()
	}
	if len(layers) > MaxLayers {
		return Result{}, withFix(name, refused(ErrTooManyEntries, "%d layers, more than %d", len(layers), MaxLayers))
	}
	st, err := newStager(ctx, root, name, opts)
	if err != nil {
		return Result{}, err
	}
	st.layers = &layerState{children: map[string]map[string]int{}}
	src := &layerSource{st: st, origin: name, files: layers}
	defer src.close()
	if err := st.run(src); err != nil {
		return Result{}, err
	}
	return st.result, nil
}

// layerSource yields the members of each layer in turn, moving the
// stager's layer state and error origin to the layer it reads.
type layerSource struct {
	st     *stager
	origin string
	files  []*os.File
	opened int // layers opened so far
	tar    *tarSource
	closer func()
}

func (l *layerSource) next() (*member, error) {
	for {
		if l.tar != nil {
			m, err := l.tar.next()
			if err != io.EOF {
				return m, err
			}
			l.close()
		}
		if l.opened == len(l.files) {
			return nil, io.EOF
		}
		if err := l.open(l.files[l.opened]); err != nil {
			return nil, err
		}
	}
}

// open starts reading layer f, the next one.
func (l *layerSource) open(f *os.File) error {
	l.opened++
	l.st.layers.enter(l.opened)
	l.st.origin = fmt.Sprintf("%s layer %d of %d", l.origin, l.opened, len(l.files))
	info, err := f.Stat()
	if err != nil {
		return err
	}
	format, err := DetectFormat(f)
	if err != nil {
		return err
	}
	if format == Zip {
		return refused(ErrFormat, "a zip archive is not an image layer (want tar, tar.gz or tar.zst)")
	}
	r, closeFn, err := decompressAhead(format, io.NewSectionReader(f, 0, info.Size()))
	if err != nil {
		return refused(ErrFormat, "opening the %s stream: %v", format, err)
	}
	l.tar, l.closer = &tarSource{tr: tar.NewReader(r)}, closeFn
	return nil
}

// close ends the layer being read, if any.
func (l *layerSource) close() {
	if l.closer != nil {
		l.closer()
	}
	l.tar, l.closer = nil, nil
}

// layerState is what the stager knows in layer mode: which entries the
// image wrote, and in which layer. Its size grows with the entries
// written, which MaxEntries bounds.
type layerState struct {
	n int // the layer being applied, from 1
	// children maps each directory (relative to the root, "." for the
	// root) to the names in it the image wrote and the layer of each; the
	// directories above them that it did not make (an earlier source did)
	// are there as layer 0, so that a whiteout finds what is beneath.
	children map[string]map[string]int
	// cleared holds the entries whose lower-layer content is gone in this
	// layer (whited out, made opaque, or visited doing so): a whiteout at or
	// below one finds nothing more to remove. Whatever stays there was
	// written by this layer or by an earlier source.
	cleared map[string]bool
}

// enter starts layer n.
func (l *layerState) enter(n int) {
	l.n = n
	l.cleared = map[string]bool{}
}

// lower reports whether a lower layer of the image wrote p.
func (l *layerState) lower(p string) bool {
	n := l.children[path.Dir(p)][path.Base(p)]
	return n > 0 && n < l.n
}

// record notes that the current layer wrote p, and links the directories
// above it; kept is true for a directory that existed and was kept, which
// stays unowned if something else (an earlier source) made it.
func (l *layerState) record(p string, kept bool) {
	if l == nil {
		return
	}
	switch n, linked := l.children[path.Dir(p)][path.Base(p)]; {
	case !kept || n > 0:
		l.set(p, l.n)
	case !linked:
		l.set(p, 0)
	}
	for q := path.Dir(p); q != "."; q = path.Dir(q) {
		if _, linked := l.children[path.Dir(q)][path.Base(q)]; linked {
			break // and so are the directories above
		}
		l.set(q, 0)
	}
}

// set notes that layer n wrote p (0: p is only linked).
func (l *layerState) set(p string, n int) {
	dir := path.Dir(p)
	if l.children[dir] == nil {
		l.children[dir] = map[string]int{}
	}
	l.children[dir][path.Base(p)] = n
}

// isCleared reports whether p or one of its parents was cleared in this
// layer.
func (l *layerState) isCleared(p string) bool {
	for ; p != "." && p != "/"; p = path.Dir(p) {
		if l.cleared[p] {
			return true
		}
	}
	return l.cleared["."]
}

// whiteout applies the whiteout member m, whose path relative to the
// extraction directory is rel.
func (s *stager) whiteout(m *member, rel string) error {
	dir, base := path.Dir(rel), path.Base(rel)
	name := strings.TrimPrefix(base, whiteoutPrefix)
	switch {
	case name == "":
		return s.refuse(m, refused(ErrBadName, "a whiteout must name what it removes"))
	case base != whiteoutOpaque && strings.HasPrefix(name, whiteoutPrefix):
		return nil // other .wh..wh. names are metadata of old storage drivers
	}
	target, opaque := path.Join(s.to, dir), base == whiteoutOpaque
	parent := target
	if !opaque {
		target = path.Join(target, name)
		parent = path.Dir(target)
	}
	if err := s.checkNoLink(parent); err != nil {
		return s.refuse(m, err)
	}
	if s.layers.isCleared(target) {
		return nil
	}
	if err := s.clear(target, !opaque); err != nil {
		return s.refuse(m, err)
	}
	return nil
}

// checkNoLink refuses a whiteout under a symbolic link: its target would
// be reached through it. A missing or non-directory component means there
// is nothing to remove, which the removal finds out by itself.
func (s *stager) checkNoLink(dir string) error {
	for p := dir; p != "." && p != "/"; p = path.Dir(p) {
		info, err := s.root.Lstat(p)
		if err == nil && info.Mode()&fs.ModeSymlink != 0 {
			return refused(ErrThroughSymlink, "/%s is a symbolic link", p)
		}
	}
	return nil
}

// clear removes what lower layers of the image wrote beneath p and,
// with self, p itself. A directory that still holds something else (an
// entry of this layer or of an earlier source) stays. Every entry cleared
// is noted, so that no whiteout of the layer visits it again.
func (s *stager) clear(p string, self bool) error {
	l := s.layers
	if l.cleared[p] {
		return nil
	}
	for name := range l.children[p] {
		if err := s.clear(path.Join(p, name), true); err != nil {
			return err
		}
	}
	l.cleared[p] = true
	if !self || !l.lower(p) {
		return nil
	}
	err := s.root.Remove(p)
	if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
		return nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing /%s: %w", p, err)
	}
	s.forget(p)
	if err != nil {
		return nil
	}
	return s.sink.Remove(p)
}

// forget drops what the stager kept about the removed entry p.
func (s *stager) forget(p string) {
	l := s.layers
	delete(l.children[path.Dir(p)], path.Base(p))
	delete(l.children, p)
	delete(s.lockedDirs, p)
	if s.checked == p || strings.HasPrefix(s.checked, p+"/") {
		s.checked = ""
	}
	for k, d := range s.dirs {
		if d.path == p || strings.HasPrefix(d.path, p+"/") {
			s.closeDirs(k)
			break
		}
	}
}

// uncover removes the lower-layer entry existing at full when the member,
// of kind k, could not replace it: a directory and a non-directory, or a
// symbolic link and anything else. It returns what Lstat says of full
// afterwards. Outside layer mode, and for entries the image did not
// write, nothing changes and the stager refuses the conflict.
func (s *stager) uncover(full string, existing fs.FileInfo, k kind) (fs.FileInfo, error) {
	if s.layers == nil || !s.layers.lower(full) {
		return existing, nil
	}
	isLink, isDir := existing.Mode()&fs.ModeSymlink != 0, existing.IsDir()
	if !(isLink && k != kindSymlink || isDir != (k == kindDir)) {
		return existing, nil
	}
	if err := s.clear(full, true); err != nil {
		return nil, err
	}
	return s.root.Lstat(full)
}
