package stage

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/sysext-bakery/bakery/internal/unixmode"
)

// testCtx is the context tests unpack with.
var testCtx = context.Background()

// tm is one member of an archive built by a test.
type tm struct {
	name string
	typ  byte // a tar type flag
	mode int64
	body string
	link string
	size int64 // when not zero, the declared size instead of len(body)
	pax  map[string]string
}

// reg, dir, sym and hard build the common members.
func reg(name string, mode int64, body string) tm {
	return tm{name: name, typ: tar.TypeReg, mode: mode, body: body}
}
func dir(name string, mode int64) tm { return tm{name: name, typ: tar.TypeDir, mode: mode} }
func sym(name, target string) tm {
	return tm{name: name, typ: tar.TypeSymlink, mode: 0o777, link: target}
}
func hard(name, target string) tm {
	return tm{name: name, typ: tar.TypeLink, mode: 0o644, link: target}
}

// tarBytes writes members as a tar stream. A member whose declared size
// exceeds its body ends the stream right after its header, truncated.
func tarBytes(t testing.TB, members []tm) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range members {
		h := &tar.Header{Name: m.name, Typeflag: m.typ, Mode: m.mode, Linkname: m.link, Size: int64(len(m.body)), PAXRecords: m.pax}
		if m.typ != tar.TypeReg {
			h.Size = 0
		}
		if m.typ == tar.TypeChar || m.typ == tar.TypeBlock {
			h.Devmajor, h.Devminor = 1, 3
		}
		if m.size != 0 {
			h.Size = m.size
		}
		if m.pax != nil {
			h.Format = tar.FormatPAX
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("tar header %s: %v", m.name, err)
		}
		if _, err := tw.Write([]byte(m.body)); err != nil {
			t.Fatalf("tar body %s: %v", m.name, err)
		}
		if h.Size > int64(len(m.body)) {
			return buf.Bytes() // truncated on purpose
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// zipBytes writes members as a zip archive with Unix modes. Symbolic
// links keep their target as content; hard links have no zip form.
func zipBytes(t testing.TB, members []tm) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range members {
		h := &zip.FileHeader{Name: m.name, Method: zip.Deflate}
		mode := fs.FileMode(m.mode & 0o777)
		body := m.body
		switch m.typ {
		case tar.TypeDir:
			mode |= fs.ModeDir
		case tar.TypeSymlink:
			mode |= fs.ModeSymlink
			body = m.link
		case tar.TypeChar:
			mode |= fs.ModeDevice | fs.ModeCharDevice
		case tar.TypeFifo:
			mode |= fs.ModeNamedPipe
		case tar.TypeLink:
			t.Fatalf("zip has no hard links (%s)", m.name)
		}
		mode |= normalMode(fs.FileMode(m.mode & 0o7000)) // setuid, setgid, sticky
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// compress wraps a tar stream in format's compression.
func compress(t testing.TB, format Format, tarball []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch format {
	case Tar:
		return tarball
	case TarGzip:
		w := gzip.NewWriter(&buf)
		w.Write(tarball)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	case TarXz:
		w, err := xz.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(tarball)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	case TarZstd:
		w, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(tarball)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	case TarBzip2:
		bz, err := exec.LookPath("bzip2")
		if err != nil {
			t.Skip("bzip2 not installed: Go has no bzip2 writer, so tar.bz2 input needs the bzip2 tool")
		}
		cmd := exec.Command(bz, "-c")
		cmd.Stdin = bytes.NewReader(tarball)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("bzip2: %v", err)
		}
		return out
	default:
		t.Fatalf("compress: no writer for %v", format)
	}
	return buf.Bytes()
}

// archiveFor builds members in format.
func archiveFor(t testing.TB, format Format, members []tm) []byte {
	t.Helper()
	if format == Zip {
		return zipBytes(t, members)
	}
	return compress(t, format, tarBytes(t, members))
}

// sandbox is a staging root inside a jail directory that must hold nothing
// but the root afterwards.
type sandbox struct {
	jail, dir string
	root      *os.Root
}

func newSandbox(t testing.TB) *sandbox {
	t.Helper()
	jail := t.TempDir()
	dir := filepath.Join(jail, "root")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return &sandbox{jail: jail, dir: dir, root: root}
}

// checkJail fails unless the jail holds exactly the root.
func (s *sandbox) checkJail(t testing.TB) {
	t.Helper()
	ents, err := os.ReadDir(s.jail)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"root"}) {
		t.Errorf("jail around the root holds %q, want only [root]: something was written outside", names)
	}
}

// writeSource writes data to a new file outside the jail and opens it.
func writeSource(t testing.TB, name string, data []byte) *os.File {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// listing describes every entry under dir, keyed by its slash path:
// "dir 0755", "file 0644 <sha256 prefix>", "link -> target", with setuid,
// setgid and sticky shown as octal.
func listing(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		mode := octal(info.Mode())
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out[filepath.ToSlash(rel)] = "link -> " + target
		case info.IsDir():
			out[filepath.ToSlash(rel)] = fmt.Sprintf("dir %04o", mode)
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[filepath.ToSlash(rel)] = fmt.Sprintf("file %04o %x", mode, sha256.Sum256(b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// octal returns m's permission and special bits as raw Unix octal.
func octal(m fs.FileMode) uint32 { return unixmode.Bits(m) }

// fileEntry is the listing line of a regular file.
func fileEntry(mode uint32, body string) string {
	return fmt.Sprintf("file %04o %x", mode, sha256.Sum256([]byte(body)))
}
