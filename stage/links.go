package stage

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"syscall"
)

// symlink stores the link as is, replacing a file or link at full.
func (s *stager) symlink(full string, m *member) error {
	target := m.link
	if target == "" {
		return refused(ErrBadName, "empty symbolic link target")
	}
	if err := checkName(target); err != nil {
		return refused(ErrBadName, "symbolic link target %q: %v", target, err)
	}
	if err := s.replace(full, func(d *os.Root, name string) error { return d.Symlink(target, name) }, nil); err != nil {
		return err
	}
	return s.sink.Symlink(full, target)
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
	err = s.replace(full, func(_ *os.Root, name string) error {
		return s.root.Link(target, path.Join(path.Dir(full), name))
	}, nil)
	if err != nil {
		return err
	}
	return s.sink.Link(full, target)
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
