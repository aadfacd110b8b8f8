package stage

import (
	"archive/tar"
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/sysext-bakery/bakery/internal/unixmode"
)

// kind is the type of a member.
type kind int

const (
	kindFile kind = iota
	kindDir
	kindSymlink
	kindHardlink
	kindSpecial // device node, fifo or socket: always refused
	kindIgnore  // metadata such as a PAX global header or a volume label
)

// member is one entry of an archive or a tree, in a common form.
type member struct {
	name string // as stored, slash-separated
	kind kind
	// special names the kind of a kindSpecial member ("device node", "fifo").
	special string
	mode    fs.FileMode // permission and setuid/setgid/sticky bits
	// size is the declared size of a regular file, -1 when unknown.
	size int64
	// link is the target of a symbolic or hard link.
	link string
	// open returns the content of a regular file.
	open func() (io.ReadCloser, error)
}

// memberSource yields members in order, then io.EOF.
type memberSource interface {
	next() (*member, error)
}

// normalMode returns the permission and setuid/setgid/sticky bits of m as
// Go FileMode flags, accepting them either as flags or as raw octal bits.
func normalMode(m fs.FileMode) fs.FileMode {
	return unixmode.FileMode(uint32(m&0o7777)) | m&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)
}

// tarSource yields the members of a tar stream.
type tarSource struct {
	tr *tar.Reader
}

func (s *tarSource) next() (*member, error) {
	h, err := s.tr.Next()
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil && !errors.Is(err, tar.ErrInsecurePath) {
		return nil, refused(ErrFormat, "reading the next tar header: %v", err)
	}
	m := &member{
		name: h.Name,
		mode: normalMode(fs.FileMode(h.Mode & 0o7777)),
		size: h.Size,
		link: h.Linkname,
	}
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse, tar.TypeCont:
		m.kind = kindFile
		m.open = func() (io.ReadCloser, error) { return io.NopCloser(s.tr), nil }
	case tar.TypeDir:
		m.kind = kindDir
	case tar.TypeSymlink:
		m.kind = kindSymlink
	case tar.TypeLink:
		m.kind = kindHardlink
	case tar.TypeChar, tar.TypeBlock:
		m.kind, m.special = kindSpecial, "device node"
	case tar.TypeFifo:
		m.kind, m.special = kindSpecial, "fifo"
	case tar.TypeXGlobalHeader, 'V': // 'V': GNU volume label
		m.kind = kindIgnore
	default:
		return nil, refused(ErrFormat, "member %q: tar entry type %q is not supported", h.Name, h.Typeflag)
	}
	return m, nil
}

// zipSource yields the members of a zip archive.
type zipSource struct {
	files []*zip.File
}

// zip "version made by" hosts whose external attributes hold a Unix mode.
const (
	zipCreatorUnix  = 3
	zipCreatorMacOS = 19
)

func (s *zipSource) next() (*member, error) {
	if len(s.files) == 0 {
		return nil, io.EOF
	}
	f := s.files[0]
	s.files = s.files[1:]
	mode := f.Mode()
	m := &member{
		name: f.Name,
		mode: normalMode(mode),
		size: int64(f.UncompressedSize64),
		open: func() (io.ReadCloser, error) { return f.Open() },
	}
	if f.UncompressedSize64 > 1<<62 {
		m.size = 1 << 62 // beyond any limit; keeps the int64 positive
	}
	unixMode := f.CreatorVersion>>8 == zipCreatorUnix || f.CreatorVersion>>8 == zipCreatorMacOS
	switch {
	case mode&fs.ModeSymlink != 0:
		m.kind = kindSymlink
		target, err := zipLinkTarget(f)
		if err != nil {
			return nil, refused(ErrFormat, "member %q: reading the symbolic link target: %v", f.Name, err)
		}
		m.link = target
	case mode.IsDir() || (len(f.Name) > 0 && f.Name[len(f.Name)-1] == '/'):
		m.kind = kindDir
		if !unixMode {
			m.mode = 0o755
		}
	case mode&(fs.ModeDevice|fs.ModeCharDevice) != 0:
		m.kind, m.special = kindSpecial, "device node"
	case mode&fs.ModeNamedPipe != 0:
		m.kind, m.special = kindSpecial, "fifo"
	case mode&fs.ModeSocket != 0:
		m.kind, m.special = kindSpecial, "socket"
	case mode&fs.ModeType != 0:
		return nil, refused(ErrFormat, "member %q: zip entry of type %v is not supported", f.Name, mode.Type())
	default:
		m.kind = kindFile
		if !unixMode {
			m.mode = 0o644
		}
	}
	return m, nil
}

// maxLinkTarget bounds the symbolic link target read from a zip entry:
// PATH_MAX on Linux.
const maxLinkTarget = 4096

// zipLinkTarget reads the target of a zip symbolic link, kept as content.
func zipLinkTarget(f *zip.File) (string, error) {
	if f.UncompressedSize64 > maxLinkTarget {
		return "", fmt.Errorf("%d bytes, more than %d", f.UncompressedSize64, maxLinkTarget)
	}
	r, err := f.Open()
	if err != nil {
		return "", err
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, maxLinkTarget+1))
	if err == nil && len(b) > maxLinkTarget {
		err = fmt.Errorf("more than %d bytes", maxLinkTarget)
	}
	return string(b), err
}

// listSource yields members from a list.
type listSource []*member

func (s *listSource) next() (*member, error) {
	if len(*s) == 0 {
		return nil, io.EOF
	}
	m := (*s)[0]
	*s = (*s)[1:]
	return m, nil
}

// newTreeSource walks the local directory tree dir, in lexical order and
// without following symbolic links, and returns its entries as members.
func newTreeSource(dir string) (*listSource, error) {
	s := &listSource{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			if !d.IsDir() {
				return fmt.Errorf("%s is not a directory — files: must name a directory beside the recipe", dir)
			}
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		m := &member{name: filepath.ToSlash(rel), mode: normalMode(info.Mode()), size: info.Size()}
		switch t := info.Mode().Type(); {
		case t == 0:
			m.kind = kindFile
			m.open = func() (io.ReadCloser, error) { return os.Open(p) }
		case t == fs.ModeDir:
			m.kind = kindDir
		case t == fs.ModeSymlink:
			m.kind = kindSymlink
			if m.link, err = os.Readlink(p); err != nil {
				return err
			}
		case t&fs.ModeNamedPipe != 0:
			m.kind, m.special = kindSpecial, "fifo"
		case t&fs.ModeSocket != 0:
			m.kind, m.special = kindSpecial, "socket"
		default:
			m.kind, m.special = kindSpecial, "device node"
		}
		*s = append(*s, m)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading tree %s: %w", dir, err)
	}
	return s, nil
}
