package stage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/sysext-bakery/bakery/internal/pathmatch"
)

// stager writes members into a root, refusing anything hostile.
type stager struct {
	ctx     context.Context // stops the stager between members and blocks
	root    *os.Root
	origin  string // the archive or tree, for error messages
	to      string // cleaned extraction directory relative to the root; "" is the root
	strip   int
	include []*pattern
	mode    fs.FileMode // replaces regular file modes when not zero
	limit   int64       // bytes still allowed
	entries int         // members allowed (MaxEntries)

	// What follows is all the stager keeps between members. Its size does
	// not grow with their number, except written (a few bytes per regular
	// file) and lockedDirs (rare).
	// dirs are open on the directory of the last member and on its
	// ancestors below the root, outermost first, each an ancestor of the
	// next (see at).
	dirs []openDir
	buf  []byte // copy buffer
	// checked is the last directory parents made sure of: it and its
	// ancestors are real directories, and stay so, as no member may
	// replace a directory.
	checked string
	// written holds the inode numbers of the regular files written: the
	// only valid hard link targets.
	written map[uint64]struct{}
	// lockedDirs holds the modes of directories that deny their owner
	// read, write or search permission, applied at the end so that they do
	// not stop later members; other directory modes are applied at once.
	lockedDirs map[string]fs.FileMode
	result     Result
	sink       Sink // told of every entry written
	// layers is set when applying an image's layers (layers.go): what
	// they wrote, for whiteouts.
	layers *layerState
}

// pattern is one include glob and whether it selected a member.
type pattern struct {
	glob    string
	matched bool
}

// newStager validates opts and returns a stager for them.
func newStager(ctx context.Context, root *os.Root, origin string, opts Options) (*stager, error) {
	to, err := targetDir(opts.To)
	if err != nil {
		return nil, fmt.Errorf("%s: to %q: %w", origin, opts.To, err)
	}
	if opts.StripComponents < 0 {
		return nil, fmt.Errorf("%s: strip-components %d: must not be negative", origin, opts.StripComponents)
	}
	s := &stager{
		ctx:        ctx,
		root:       root,
		origin:     origin,
		to:         to,
		strip:      opts.StripComponents,
		limit:      opts.MaxBytes,
		entries:    opts.MaxEntries,
		written:    map[uint64]struct{}{},
		lockedDirs: map[string]fs.FileMode{},
		sink:       sinkOf(ctx),
	}
	if opts.Mode != 0 {
		s.mode = normalMode(opts.Mode)
	}
	if s.limit <= 0 {
		s.limit = DefaultMaxBytes
	}
	if s.entries <= 0 {
		s.entries = DefaultMaxEntries
	}
	for _, g := range opts.Include {
		clean := path.Clean("/" + g)[1:]
		if _, err := path.Match(clean, ""); err != nil || clean == "" {
			return nil, fmt.Errorf("%s: include pattern %q: %w — use a path.Match glob such as \"bin/*\"", origin, g, path.ErrBadPattern)
		}
		s.include = append(s.include, &pattern{glob: clean})
	}
	return s, nil
}

// run writes every member of src, checks that each include pattern was
// used, then applies the remaining directory modes.
func (s *stager) run(src memberSource) error {
	defer s.closeDirs(0)
	for n := 0; ; n++ {
		m, err := src.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return withFix(s.origin, err)
		}
		if err := s.ctx.Err(); err != nil {
			return fmt.Errorf("%s: %w", s.origin, err)
		}
		if n == s.entries {
			return s.tooManyEntries()
		}
		if err := s.add(m); err != nil {
			return err
		}
	}
	for _, p := range s.include {
		if !p.matched {
			return refused(ErrNoMatch, "include pattern %q matched no member of %s — list the archive and check the pattern against the member paths left after strip-components %d", p.glob, s.origin, s.strip)
		}
	}
	return s.finish()
}

// add writes one member.
func (s *stager) add(m *member) error {
	if m.kind == kindIgnore {
		return nil
	}
	if err := checkName(m.name); err != nil {
		return s.refuse(m, err)
	}
	rel, skip, err := memberPath(m.name, s.strip)
	if err != nil {
		return s.refuse(m, err)
	}
	if !skip && s.layers != nil && strings.HasPrefix(path.Base(rel), whiteoutPrefix) {
		return s.whiteout(m, rel)
	}
	if skip || !s.selected(rel) {
		return nil
	}
	if rel == "" && m.kind != kindDir {
		return s.refuse(m, refused(ErrBadName, "names the extraction directory itself"))
	}
	if rel == "" {
		return nil // the extraction directory itself: its mode is not the archive's to set
	}
	full := path.Join(s.to, rel)
	if m.kind == kindSpecial {
		return s.refuse(m, refused(ErrDevice, "%s %s not allowed in a sysext source", m.special, "/"+full))
	}
	if err := s.parents(path.Dir(full)); err != nil {
		return s.refuse(m, err)
	}
	d, base, err := s.at(full)
	if err != nil {
		return s.refuse(m, err)
	}
	// A regular file is made exclusively where its name is free, the
	// usual case: what is there is looked at only when the name is taken
	// (writeFile). Layers look first, to uncover lower entries.
	var existing fs.FileInfo
	if m.kind != kindFile || s.layers != nil {
		if existing, err = s.existing(d, full, base, m.kind); err != nil {
			return s.refuse(m, err)
		}
	}
	switch m.kind {
	case kindDir:
		err = s.dir(d, full, existing, m.mode)
	case kindFile:
		err = s.file(full, m)
	case kindSymlink:
		err = s.symlink(full, m)
	case kindHardlink:
		err = s.hardlink(full, existing, m)
	}
	if err != nil {
		return s.refuse(m, err)
	}
	s.layers.record(full, m.kind == kindDir && existing != nil)
	return nil
}

// existing returns what is at full, the entry base of d, that a member
// of kind k would replace (nil when nothing is), uncovering a lower
// layer's entry, and refuses what it must not replace: a symbolic link by
// anything but a symbolic link, a directory by a non-directory and the
// reverse.
func (s *stager) existing(d *os.Root, full, base string, k kind) (fs.FileInfo, error) {
	existing, err := d.Lstat(base)
	if err == nil {
		existing, err = s.uncover(full, existing, k)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, err
	case existing.Mode()&fs.ModeSymlink != 0 && k != kindSymlink:
		return nil, refused(ErrThroughSymlink, "/%s is a symbolic link", full)
	case existing.IsDir() && k != kindDir:
		return nil, refused(ErrConflict, "would replace directory /%s", full)
	case !existing.IsDir() && k == kindDir:
		return nil, refused(ErrConflict, "a directory would replace the file /%s", full)
	}
	return existing, nil
}

// tooManyEntries is the refusal of a source with more than MaxEntries
// members.
func (s *stager) tooManyEntries() error {
	return withFix(s.origin, refused(ErrTooManyEntries, "more than %d entries (MaxEntries)", s.entries))
}

// selected reports whether rel is chosen by the include patterns, marking
// the patterns that choose it. A pattern matching any leading part of rel
// chooses rel.
func (s *stager) selected(rel string) bool {
	if len(s.include) == 0 {
		return true
	}
	chosen := false
	for _, p := range s.include {
		if pathmatch.Subtree(p.glob, rel) {
			p.matched, chosen = true, true
		}
	}
	return chosen
}

// parents makes sure every component of dir is a real directory, creating
// missing ones with mode 0755, and refuses symbolic links.
func (s *stager) parents(dir string) error {
	if dir == "." || dir == s.checked || strings.HasPrefix(s.checked, dir+"/") {
		return nil
	}
	if err := s.parents(path.Dir(dir)); err != nil {
		return err
	}
	d, base, err := s.at(dir)
	if err != nil {
		return err
	}
	info, err := d.Lstat(base)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := d.Mkdir(base, 0o755); err != nil {
			return err
		}
		if err := d.Chmod(base, 0o755); err != nil { // not narrowed by the umask
			return err
		}
		s.layers.record(dir, false)
		if err := s.sink.Dir(dir, 0o755); err != nil {
			return err
		}
	case err != nil:
		return err
	case info.Mode()&fs.ModeSymlink != 0:
		return refused(ErrThroughSymlink, "/%s is a symbolic link", dir)
	case !info.IsDir():
		return refused(ErrConflict, "/%s is not a directory", dir)
	}
	s.checked = dir
	return nil
}

// dir makes directory full, or keeps the existing one, and gives it mode;
// a mode denying the owner anything waits for the end, so that it does not
// stop later members.
func (s *stager) dir(d *os.Root, full string, existing fs.FileInfo, mode fs.FileMode) error {
	base := path.Base(full)
	if existing == nil {
		if err := d.Mkdir(base, 0o700); err != nil {
			return err
		}
	}
	if mode.Perm()&0o700 != 0o700 {
		s.lockedDirs[full] = mode
		return s.sink.Dir(full, mode)
	}
	delete(s.lockedDirs, full)
	if err := d.Chmod(base, mode); err != nil {
		return err
	}
	return s.sink.Dir(full, mode)
}

// at returns a Root open on the directory of full, and full's last
// component: operations on the base name then cost one lookup, not one
// per path component. The directory and its ancestors must already be
// checked by parents (none is a symbolic link). The Roots of the
// directories on the way are kept (dirs), so that going down opens one
// directory and going back up none: an archive in walk order costs one
// open per directory.
func (s *stager) at(full string) (*os.Root, string, error) {
	dir := path.Dir(full)
	k := 0 // dirs[:k] are dir and its ancestors
	for k < len(s.dirs) && (s.dirs[k].path == dir || strings.HasPrefix(dir, s.dirs[k].path+"/")) {
		k++
	}
	s.closeDirs(k)
	d, at := s.root, "."
	if k > 0 {
		d, at = s.dirs[k-1].root, s.dirs[k-1].path
	}
	for at != dir {
		rest := strings.TrimPrefix(dir, at+"/")
		if at == "." {
			rest = dir
		}
		name, _, _ := strings.Cut(rest, "/")
		if len(s.dirs) >= maxOpenDirs {
			name = rest // the rest in one walk: a deep tree holds no more descriptors
		}
		child, err := d.OpenRoot(name)
		if err != nil {
			return nil, "", err
		}
		at = path.Join(at, name)
		if len(s.dirs) > maxOpenDirs { // the last is a deeper rest, d: a deeper one replaces it
			d.Close()
			s.dirs[len(s.dirs)-1] = openDir{at, child}
		} else {
			s.dirs = append(s.dirs, openDir{at, child})
		}
		d = child
	}
	return d, path.Base(full), nil
}

// maxOpenDirs is how many directories at keeps open, at the most, before
// the last: a tree deeper than that (a hostile one can be 2,000 deep)
// has its deeper directories opened by one walk each time.
const maxOpenDirs = 32

// openDir is a directory of the staging root, open.
type openDir struct {
	path string
	root *os.Root
}

// closeDirs closes dirs from the k-th on.
func (s *stager) closeDirs(k int) {
	for _, d := range s.dirs[k:] {
		d.root.Close()
	}
	s.dirs = s.dirs[:k]
}

// replace makes a new entry at full with mk, which creates exclusively
// (fs.ErrExist when the name is taken, and then nothing made). Where
// nothing is yet, the usual case, it is made in place; else, once taken
// (if not nil) accepts what is there, under a free temporary name beside
// full, renamed over it, so that what was there is replaced whole and
// never changed (hard links to an earlier file keep its content). On
// failure the new entry is removed. A Sink hears of an entry only once it
// is made, and a failed staging's root is thrown away whole, so an entry
// made in place is never seen half-made.
func (s *stager) replace(full string, mk func(d *os.Root, name string) error, taken func(d *os.Root, base string) error) error {
	d, base, err := s.at(full)
	if err != nil {
		return err
	}
	if err := mk(d, base); !errors.Is(err, fs.ErrExist) {
		if err != nil {
			d.Remove(base)
		}
		return err
	}
	if taken != nil {
		if err := taken(d, base); err != nil {
			return err
		}
	}
	for range 10 {
		tmp := fmt.Sprintf(".unpack-%016x", rand.Uint64())
		err := mk(d, tmp)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err == nil {
			err = d.Rename(tmp, base)
		}
		if err != nil {
			d.Remove(tmp)
		}
		return err
	}
	return fmt.Errorf("no free temporary name beside /%s", full)
}

// finish applies the directory modes that deny the owner some access,
// deepest first so a directory without search permission does not block
// its children.
func (s *stager) finish() error {
	dirs := make([]string, 0, len(s.lockedDirs))
	for d := range s.lockedDirs {
		dirs = append(dirs, d)
	}
	sort.Slice(dirs, func(i, j int) bool { return strings.Count(dirs[i], "/") > strings.Count(dirs[j], "/") })
	for _, d := range dirs {
		if err := s.root.Chmod(d, s.lockedDirs[d]); err != nil {
			return fmt.Errorf("%s: directory /%s: setting mode: %w", s.origin, d, err)
		}
	}
	return nil
}
