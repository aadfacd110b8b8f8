package unpack

import (
	"bytes"
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
	"syscall"
	"unicode/utf8"

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
	cwd     string   // the directory cwdRoot is open on
	cwdRoot *os.Root // the directory of the last member: one lookup per member
	buf     []byte   // copy buffer
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

// targetDir cleans an extraction directory to a path relative to the root.
func targetDir(to string) (string, error) {
	if err := checkName(to); err != nil {
		return "", err
	}
	rel, ok := resolve(splitPath(to))
	if !ok {
		return "", refused(ErrEscape, "\"..\" leaves the root")
	}
	return rel, nil
}

// run writes every member of src, checks that each include pattern was
// used, then applies the remaining directory modes.
func (s *stager) run(src memberSource) error {
	defer func() {
		if s.cwdRoot != nil {
			s.cwdRoot.Close()
		}
	}()
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
	existing, err := d.Lstat(base)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		existing = nil
	case err != nil:
		return s.refuse(m, err)
	case existing.Mode()&fs.ModeSymlink != 0 && m.kind != kindSymlink:
		return s.refuse(m, refused(ErrThroughSymlink, "/%s is a symbolic link", full))
	case existing.IsDir() && m.kind != kindDir:
		return s.refuse(m, refused(ErrConflict, "would replace directory /%s", full))
	case !existing.IsDir() && m.kind == kindDir:
		return s.refuse(m, refused(ErrConflict, "a directory would replace the file /%s", full))
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
	return nil
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
	info, err := s.root.Lstat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := s.root.Mkdir(dir, 0o755); err != nil {
			return err
		}
		if err := s.root.Chmod(dir, 0o755); err != nil { // not narrowed by the umask
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
		return nil
	}
	delete(s.lockedDirs, full)
	return d.Chmod(base, mode)
}

// file writes a regular file under a temporary name and renames it over
// full, replacing any earlier file without reading or changing it (so hard
// links to the old file keep the old content).
func (s *stager) file(full string, m *member) error {
	if m.size > s.limit {
		return refused(ErrTooLarge, "%d bytes declared, %d allowed (MaxBytes)", m.size, s.limit)
	}
	mode := m.mode
	if s.mode != 0 {
		mode = s.mode
	}
	body, err := m.open()
	if err != nil {
		return refused(ErrFormat, "%v", err)
	}
	defer body.Close()
	n, err := s.writeFile(full, body, m.size, mode)
	if err != nil {
		return err
	}
	s.limit -= n
	s.result.Bytes += n
	return nil
}

// writeFile writes exactly size bytes of r (all of r when size is -1,
// within the limit) to full with mode, via a temporary file in the same
// directory, and records it as a hard link target. Runs of zeros become
// holes.
func (s *stager) writeFile(full string, r io.Reader, size int64, mode fs.FileMode) (int64, error) {
	var n int64
	err := s.replace(full, func(d *os.Root, tmp string) error {
		f, err := d.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if s.buf == nil {
			s.buf = make([]byte, 2*copyBlock)
		}
		n, err = copySparse(s.ctx, f, r, size, s.limit, s.buf)
		if err == nil {
			err = f.Chmod(mode)
		}
		if err == nil {
			err = s.recordWritten(f)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	})
	return n, err
}

// at returns a Root open on the directory of full, and full's last
// component: operations on the base name then cost one lookup, not one
// per path component. The directory must already be checked by parents.
func (s *stager) at(full string) (*os.Root, string, error) {
	dir := path.Dir(full)
	if s.cwdRoot == nil || s.cwd != dir {
		d, err := s.root.OpenRoot(dir)
		if err != nil {
			return nil, "", err
		}
		if s.cwdRoot != nil {
			s.cwdRoot.Close()
		}
		s.cwd, s.cwdRoot = dir, d
	}
	return s.cwdRoot, path.Base(full), nil
}

// replace makes a new entry under a free temporary name beside full with
// mk, then renames it over full, so full is never seen half-made; on
// failure the temporary entry is removed.
func (s *stager) replace(full string, mk func(d *os.Root, tmp string) error) error {
	d, base, err := s.at(full)
	if err != nil {
		return err
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

// copyBlock is the unit of copying and of hole detection.
const copyBlock = 128 << 10

// copySparse copies r to the new, empty file f, skipping zero blocks so they
// become holes, until ctx is done. With size >= 0 exactly size bytes must
// come; with size -1, r is read to its end. More than limit bytes fail
// with ErrTooLarge. scratch holds 2*copyBlock bytes, the second half zeros.
func copySparse(ctx context.Context, f *os.File, r io.Reader, size, limit int64, scratch []byte) (int64, error) {
	want := size
	if size < 0 {
		want = limit + 1
	}
	buf, zero := scratch[:copyBlock], scratch[copyBlock:2*copyBlock]
	var n int64
	holeAtEnd := false
	for n < want {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		chunk := buf[:min(int64(len(buf)), want-n)]
		k, err := io.ReadFull(r, chunk)
		if k > 0 {
			if bytes.Equal(chunk[:k], zero[:k]) {
				if _, err := f.Seek(int64(k), io.SeekCurrent); err != nil {
					return n, err
				}
				holeAtEnd = true
			} else {
				if _, err := f.Write(chunk[:k]); err != nil {
					return n, err
				}
				holeAtEnd = false
			}
			n += int64(k)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			if size >= 0 {
				return n, refused(ErrFormat, "content ends after %d of %d bytes", n, size)
			}
			break
		}
		if err != nil {
			return n, fmt.Errorf("reading content: %w", err)
		}
	}
	if size >= 0 {
		// Read past the declared end: a zip entry verifies its checksum
		// there, and a longer body is corrupt.
		var one [1]byte
		k, err := r.Read(one[:])
		if k > 0 {
			return n, refused(ErrFormat, "content runs past the declared %d bytes", size)
		}
		if err != nil && err != io.EOF {
			return n, refused(ErrFormat, "checking the content: %v", err)
		}
	}
	if n > limit {
		return n, refused(ErrTooLarge, "more than %d bytes (MaxBytes)", limit)
	}
	if holeAtEnd {
		if err := f.Truncate(n); err != nil {
			return n, err
		}
	}
	return n, nil
}

// symlink stores the link as is, replacing a file or link at full.
func (s *stager) symlink(full string, m *member) error {
	target := m.link
	if target == "" {
		return refused(ErrBadName, "empty symbolic link target")
	}
	if err := checkName(target); err != nil {
		return refused(ErrBadName, "symbolic link target %q: %v", target, err)
	}
	return s.replace(full, func(d *os.Root, tmp string) error { return d.Symlink(target, tmp) })
}

// recordWritten records the file f as written by this stager.
func (s *stager) recordWritten(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	s.written[fi.Sys().(*syscall.Stat_t).Ino] = struct{}{}
	return nil
}

// hardlink links full to a regular file written earlier by this stager.
func (s *stager) hardlink(full string, existing fs.FileInfo, m *member) error {
	rel, skip, err := memberPath(m.link, s.strip)
	if err == nil && skip {
		err = errors.New("stripped to nothing")
	}
	if err == nil && checkName(m.link) != nil {
		err = ErrBadName
	}
	if err != nil {
		return refused(ErrLinkOutside, "target %q is outside the extraction directory (%v)", m.link, err)
	}
	target := path.Join(s.to, rel)
	ti, err := s.root.Lstat(target)
	if err != nil || !ti.Mode().IsRegular() || !s.wrote(ti) {
		return refused(ErrLinkOutside, "target %q is not a regular file unpacked earlier from this archive", m.link)
	}
	if existing != nil && os.SameFile(ti, existing) {
		return nil // already this file
	}
	return s.replace(full, func(_ *os.Root, tmp string) error {
		return s.root.Link(target, path.Join(path.Dir(full), tmp))
	})
}

// wrote reports whether fi is a file this stager wrote. Every file in the
// staging root holds its inode, so an inode once written by this stager,
// even if freed and reused since, is in a file it wrote.
func (s *stager) wrote(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	_, ok = s.written[st.Ino]
	return ok
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

// checkName refuses names that are not valid UTF-8 or hold NUL.
func checkName(name string) error {
	if !utf8.ValidString(name) {
		return refused(ErrBadName, "not valid UTF-8")
	}
	if strings.ContainsRune(name, 0) {
		return refused(ErrBadName, "holds a NUL byte")
	}
	return nil
}

// splitPath splits a slash-separated path into its components, dropping
// empty ones (from "//" and leading or trailing slashes).
func splitPath(p string) []string {
	return strings.FieldsFunc(p, func(r rune) bool { return r == '/' })
}

// resolve applies "." and ".." to components and joins them, reporting
// false when ".." would climb above the start.
func resolve(comps []string) (string, bool) {
	var out []string
	for _, c := range comps {
		switch c {
		case ".":
		case "..":
			if len(out) == 0 {
				return "", false
			}
			out = out[:len(out)-1]
		default:
			out = append(out, c)
		}
	}
	return strings.Join(out, "/"), true
}

// memberPath turns a member name into a clean path relative to the
// extraction directory: absolute names and ".." leaving the directory are
// refused, before and after stripping strip leading components the way GNU
// tar counts them. skip reports a member stripped to nothing.
func memberPath(name string, strip int) (rel string, skip bool, err error) {
	if strings.HasPrefix(name, "/") {
		return "", false, refused(ErrEscape, "absolute path")
	}
	comps := splitPath(name)
	if _, ok := resolve(comps); !ok {
		return "", false, refused(ErrEscape, "\"..\" leaves the extraction directory")
	}
	if len(comps) <= strip && strip > 0 {
		return "", true, nil
	}
	rel, ok := resolve(comps[strip:])
	if !ok {
		return "", false, refused(ErrEscape, "\"..\" leaves the extraction directory after strip-components %d", strip)
	}
	return rel, false, nil
}

// failure is an error with its own message that wraps another error,
// usually one of the sentinels.
type failure struct {
	msg string
	err error
}

func (f *failure) Error() string { return f.msg }

func (f *failure) Unwrap() error { return f.err }

// refused returns an error wrapping kind whose message is the formatted
// detail alone, without kind's own text.
func refused(kind error, format string, args ...any) error {
	return &failure{msg: fmt.Sprintf(format, args...), err: kind}
}

// fixes says what to do about each kind of refusal.
var fixes = []struct {
	kind error
	fix  string
}{
	{ErrEscape, "the archive is unsafe; use another source"},
	{ErrThroughSymlink, "the archive or an earlier source puts a symbolic link where this member is written; use another source, or leave the member out with include:"},
	{ErrDevice, "leave it out with include:"},
	{ErrTooLarge, "raise MaxBytes only if the source is trusted, or use another source"},
	{ErrTooManyEntries, "raise MaxEntries (bake --max-entries) only if the source is trusted, or use another source"},
	{ErrLinkOutside, "include the link's target too, or use another source"},
	{ErrConflict, "an earlier member or source has another type of file at that path; change to: or the order of the sources"},
	{ErrBadName, "the member cannot be stored in a sysext; use another source"},
	{ErrFormat, "the archive is corrupt, truncated or uses an unsupported feature; fetch it again or use another source"},
}

// fixFor says what to do about err.
func fixFor(err error) string {
	for _, f := range fixes {
		if errors.Is(err, f.kind) {
			return f.fix
		}
	}
	return "check that the staging directory is writable"
}

// withFix wraps err as "ORIGIN: what — fix".
func withFix(origin string, err error) error {
	return &failure{msg: fmt.Sprintf("%s: %v — %s", origin, err, fixFor(err)), err: err}
}

// refuse wraps err as "ORIGIN: member NAME: what — fix".
func (s *stager) refuse(m *member, err error) error {
	return &failure{msg: fmt.Sprintf("%s: member %q: %v — %s", s.origin, m.name, err, fixFor(err)), err: err}
}
