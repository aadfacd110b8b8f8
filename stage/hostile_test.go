package stage

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// outsideDir is a directory outside the jail that attacks aim at; it must
// stay empty.
func outsideDir(t *testing.T) string {
	t.Helper()
	return t.TempDir()
}

func checkOutside(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("attacker's target %s was created", filepath.Join(dir, e.Name()))
	}
}

func TestArchiveRefusesHostileTar(t *testing.T) {
	const tb = int64(1) << 40
	tests := []struct {
		name    string
		members func(outside string) []tm
		opts    Options
		want    error
	}{
		{"absolute path", func(string) []tm { return []tm{reg("/etc/passwd", 0o644, "root::0:0::/:/bin/sh")} }, Options{}, ErrEscape},
		{"absolute path to the outside", func(o string) []tm { return []tm{reg(o+"/pwned", 0o644, "x")} }, Options{}, ErrEscape},
		{"dot dot", func(string) []tm { return []tm{reg("../pwned", 0o644, "x")} }, Options{}, ErrEscape},
		{"dot dot deep", func(string) []tm { return []tm{reg("a/b/../../../pwned", 0o644, "x")} }, Options{}, ErrEscape},
		{"dot dot after strip", func(string) []tm { return []tm{reg("a/b/../../x", 0o644, "x")} }, Options{StripComponents: 1}, ErrEscape},
		{"dot dot into the root from to", func(string) []tm { return []tm{reg("../../pwned", 0o644, "x")} }, Options{To: "/usr/lib"}, ErrEscape},
		{"dot dot in an excluded member", func(string) []tm {
			return []tm{reg("a", 0o644, "a"), reg("../pwned", 0o644, "x")}
		}, Options{Include: []string{"a"}}, ErrEscape},
		{"to escaping", func(string) []tm { return []tm{reg("a", 0o644, "x")} }, Options{To: "/usr/../../pwned"}, ErrEscape},
		{"symlink to / then write through it", func(string) []tm {
			return []tm{sym("x", "/"), reg("x/etc/passwd", 0o644, "pwned")}
		}, Options{}, ErrThroughSymlink},
		{"symlink to the outside then write through it", func(o string) []tm {
			return []tm{sym("x", o), reg("x/pwned", 0o644, "pwned")}
		}, Options{}, ErrThroughSymlink},
		{"relative symlink out then write through it", func(string) []tm {
			return []tm{sym("x", "../.."), reg("x/pwned", 0o644, "pwned")}
		}, Options{}, ErrThroughSymlink},
		{"symlink inside then write through it", func(string) []tm {
			return []tm{dir("d/", 0o755), sym("x", "d"), reg("x/f", 0o644, "f")}
		}, Options{}, ErrThroughSymlink},
		{"file over a symlink", func(o string) []tm {
			return []tm{sym("x", o+"/pwned"), reg("x", 0o644, "pwned")}
		}, Options{}, ErrThroughSymlink},
		{"directory over a symlink", func(o string) []tm {
			return []tm{sym("x", o), dir("x/", 0o777)}
		}, Options{}, ErrThroughSymlink},
		{"hard link over a symlink", func(o string) []tm {
			return []tm{reg("a", 0o644, "a"), sym("x", o+"/pwned"), hard("x", "a")}
		}, Options{}, ErrThroughSymlink},
		{"hard link to an absolute path", func(string) []tm { return []tm{hard("x", "/etc/passwd")} }, Options{}, ErrLinkOutside},
		{"hard link with dot dot", func(o string) []tm { return []tm{hard("x", "../../outside/f")} }, Options{}, ErrLinkOutside},
		{"hard link outside to", func(string) []tm {
			return []tm{hard("x", "../passwd")}
		}, Options{To: "/usr"}, ErrLinkOutside},
		{"hard link to a missing file", func(string) []tm { return []tm{hard("x", "nothing")} }, Options{}, ErrLinkOutside},
		{"hard link to a symlink", func(string) []tm { return []tm{sym("s", "/etc/shadow"), hard("x", "s")} }, Options{}, ErrLinkOutside},
		{"hard link to a directory", func(string) []tm { return []tm{dir("d/", 0o755), hard("x", "d")} }, Options{}, ErrLinkOutside},
		{"hard link to a file replaced by a symlink", func(string) []tm {
			return []tm{reg("a", 0o644, "a"), sym("a", "/etc/shadow"), hard("x", "a")}
		}, Options{}, ErrLinkOutside},
		{"character device", func(string) []tm { return []tm{{name: "dev/null", typ: tar.TypeChar, mode: 0o666}} }, Options{}, ErrDevice},
		{"block device", func(string) []tm { return []tm{{name: "dev/sda", typ: tar.TypeBlock, mode: 0o660}} }, Options{}, ErrDevice},
		{"fifo", func(string) []tm { return []tm{{name: "run/fifo", typ: tar.TypeFifo, mode: 0o644}} }, Options{}, ErrDevice},
		{"unknown entry type", func(string) []tm { return []tm{{name: "x", typ: 'Z', mode: 0o644}} }, Options{}, ErrFormat},
		{"entry over MaxBytes", func(string) []tm {
			return []tm{reg("big", 0o644, strings.Repeat("x", 2000))}
		}, Options{MaxBytes: 1000}, ErrTooLarge},
		{"1 TB claim with a truncated body", func(string) []tm {
			return []tm{{name: "big", typ: tar.TypeReg, mode: 0o644, body: "data", size: tb}}
		}, Options{}, ErrTooLarge},
		{"invalid UTF-8 name", func(string) []tm { return []tm{reg("bad\xff\xfe", 0o644, "x")} }, Options{}, ErrBadName},
		{"invalid UTF-8 symlink target", func(string) []tm { return []tm{sym("l", "\xff")} }, Options{}, ErrBadName},
		{"file over a directory", func(string) []tm {
			return []tm{dir("d/", 0o755), reg("d/f", 0o644, "f"), reg("d", 0o644, "x")}
		}, Options{}, ErrConflict},
		{"directory over a file", func(string) []tm {
			return []tm{reg("d", 0o644, "x"), dir("d/", 0o755)}
		}, Options{}, ErrConflict},
		{"file under a file", func(string) []tm {
			return []tm{reg("d", 0o644, "x"), reg("d/f", 0o644, "f")}
		}, Options{}, ErrConflict},
		{"truncated body", func(string) []tm {
			return []tm{{name: "f", typ: tar.TypeReg, mode: 0o644, body: "abc", size: 4096}}
		}, Options{}, ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outside := outsideDir(t)
			sb := newSandbox(t)
			src := writeSource(t, "hostile.tar", tarBytes(t, tt.members(outside)))
			_, err := Archive(testCtx, sb.root, src, tt.opts)
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if err != nil && !strings.Contains(err.Error(), src.Name()) {
				t.Errorf("error %q does not name the archive %s", err, src.Name())
			}
			sb.checkJail(t)
			checkOutside(t, outside)
			checkSmall(t, sb.dir)
		})
	}
}

// checkSmall fails if anything under dir uses more than 1 MiB: refused
// sizes must be refused before writing.
func checkSmall(t *testing.T, dir string) {
	t.Helper()
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Size() > 1<<20 {
			t.Errorf("%s has %d bytes: a refused entry was written", p, info.Size())
		}
		return nil
	})
}

// TestArchiveRefusesSparseClaim feeds GNU sparse files whose logical size
// is 1 TB with one byte of data: refused from the header alone.
func TestArchiveRefusesSparseClaim(t *testing.T) {
	const tb = int64(1) << 40
	sparseMap := "1\n" + strconv.FormatInt(tb-1, 10) + "\n1\n"
	tests := []struct {
		name    string
		records map[string]string
		body    string
	}{
		{"PAX 0.1", map[string]string{
			"GNU.sparse.major": "0", "GNU.sparse.minor": "1", "GNU.sparse.numblocks": "1",
			"GNU.sparse.size": strconv.FormatInt(tb, 10),
			"GNU.sparse.map":  strconv.FormatInt(tb-1, 10) + ",1",
		}, "x"},
		{"PAX 1.0", map[string]string{
			"GNU.sparse.major": "1", "GNU.sparse.minor": "0",
			"GNU.sparse.name":     "big",
			"GNU.sparse.realsize": strconv.FormatInt(tb, 10),
		}, sparseMap + strings.Repeat("\x00", blockSize-len(sparseMap)) + "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			archive := paxTar(tt.records, "GNUSparseFile.0/big", tt.body)
			h, err := tar.NewReader(bytes.NewReader(archive)).Next()
			if err != nil {
				t.Fatalf("test archive: %v", err)
			}
			if h.Size != tb {
				t.Fatalf("test archive: tar reads size %d, want the 1 TB claim", h.Size)
			}
			sb := newSandbox(t)
			_, err = Archive(testCtx, sb.root, writeSource(t, "sparse.tar", archive), Options{})
			if !errors.Is(err, ErrTooLarge) {
				t.Errorf("err = %v, want %v", err, ErrTooLarge)
			}
			sb.checkJail(t)
			checkSmall(t, sb.dir)
		})
	}
}

// paxTar hand-builds a tar holding one file preceded by a PAX header with
// records, which archive/tar's writer would not emit for GNU.sparse keys.
func paxTar(records map[string]string, name, body string) []byte {
	var pax strings.Builder
	for _, k := range slices.Sorted(maps.Keys(records)) {
		rec := " " + k + "=" + records[k] + "\n"
		n := len(rec) + 1
		for len(strconv.Itoa(n))+len(rec) != n {
			n++
		}
		pax.WriteString(strconv.Itoa(n) + rec)
	}
	var out []byte
	out = append(out, padBlock(ustarHeader("PaxHeaders/big", 'x', pax.Len()))...)
	out = append(out, padBlock([]byte(pax.String()))...)
	out = append(out, ustarHeader(name, '0', len(body))...)
	out = append(out, padBlock([]byte(body))...)
	return append(out, make([]byte, 2*blockSize)...)
}

// ustarHeader builds one ustar header block.
func ustarHeader(name string, typ byte, size int) []byte {
	b := make([]byte, blockSize)
	copy(b, name)
	copy(b[100:], "0000644\x00")
	copy(b[108:], "0000000\x00")
	copy(b[116:], "0000000\x00")
	copy(b[124:], fmt.Sprintf("%011o\x00", size))
	copy(b[136:], "00000000000\x00")
	b[156] = typ
	copy(b[257:], "ustar\x0000")
	copy(b[148:], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// padBlock pads b with zeros to a whole number of tar blocks.
func padBlock(b []byte) []byte {
	return append(b, make([]byte, (blockSize-len(b)%blockSize)%blockSize)...)
}

func TestArchiveErrorMessage(t *testing.T) {
	const url = "https://example.org/hostile.tar"
	device := tarBytes(t, []tm{{name: "dev/null", typ: tar.TypeChar, mode: 0o666}})
	tests := []struct {
		name   string
		data   []byte
		origin string
		want   string // %s is the source file's name
	}{
		{"origin defaults to the file", device, "", `%s: member "dev/null": device node /usr/dev/null not allowed in a sysext source — `},
		{"member refused", device, url, url + `: member "dev/null": device node /usr/dev/null not allowed in a sysext source — `},
		{"not an archive", []byte("plain text, not an archive"), url, url + ": not a tar, tar.gz"},
		{"corrupt stream", compress(t, TarGzip, device)[:40], url, url + ": "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sb := newSandbox(t)
			src := writeSource(t, "blob", tt.data)
			_, err := Archive(testCtx, sb.root, src, Options{To: "/usr", Origin: tt.origin})
			want := strings.ReplaceAll(tt.want, "%s", src.Name())
			if err == nil || !strings.HasPrefix(err.Error(), want) || tt.origin != "" && strings.Contains(err.Error(), src.Name()) {
				t.Errorf("err = %v, want it to start with %q and not name %s", err, want, src.Name())
			}
		})
	}
}

// TestArchiveRefusesThroughEarlierSource checks that a symbolic link left by
// an earlier source is never followed.
func TestArchiveRefusesThroughEarlierSource(t *testing.T) {
	tests := []struct {
		name    string
		planted string // path of a symlink to the outside dir planted before
		members []tm
		opts    Options
	}{
		{"member under the link", "usr/lib", []tm{reg("usr/lib/x", 0o644, "x")}, Options{}},
		{"to through the link", "usr/lib", []tm{reg("x", 0o644, "x")}, Options{To: "/usr/lib/cni"}},
		{"to is the link", "usr/lib", []tm{reg("x", 0o644, "x")}, Options{To: "/usr/lib"}},
		{"file over the link", "usr/bin/tool", []tm{reg("usr/bin/tool", 0o755, "x")}, Options{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outside := outsideDir(t)
			sb := newSandbox(t)
			if err := sb.root.MkdirAll(filepath.Dir(tt.planted), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := sb.root.Symlink(outside, tt.planted); err != nil {
				t.Fatal(err)
			}
			src := writeSource(t, "src.tar", tarBytes(t, tt.members))
			_, err := Archive(testCtx, sb.root, src, tt.opts)
			if !errors.Is(err, ErrThroughSymlink) {
				t.Errorf("err = %v, want %v", err, ErrThroughSymlink)
			}
			sb.checkJail(t)
			checkOutside(t, outside)
		})
	}
}

func TestArchiveRefusesHostileZip(t *testing.T) {
	tests := []struct {
		name    string
		archive func(t *testing.T, outside string) []byte
		want    error
	}{
		{"dot dot", func(t *testing.T, _ string) []byte {
			return zipBytes(t, []tm{reg("../pwned", 0o644, "x")})
		}, ErrEscape},
		{"dot dot deep", func(t *testing.T, _ string) []byte {
			return zipBytes(t, []tm{reg("a/../../../pwned", 0o644, "x")})
		}, ErrEscape},
		{"absolute", func(t *testing.T, o string) []byte {
			return zipBytes(t, []tm{reg(o+"/pwned", 0o644, "x")})
		}, ErrEscape},
		{"zip slip through a symlink", func(t *testing.T, o string) []byte {
			return zipBytes(t, []tm{sym("x", o), reg("x/pwned", 0o644, "x")})
		}, ErrThroughSymlink},
		{"zip slip through a relative symlink", func(t *testing.T, _ string) []byte {
			return zipBytes(t, []tm{sym("x", "../../.."), reg("x/pwned", 0o644, "x")})
		}, ErrThroughSymlink},
		{"NUL in a name", func(t *testing.T, _ string) []byte {
			return zipBytes(t, []tm{reg("a\x00b", 0o644, "x")})
		}, ErrBadName},
		{"NUL in a symlink target", func(t *testing.T, _ string) []byte {
			return zipBytes(t, []tm{sym("l", "/etc\x00passwd")})
		}, ErrBadName},
		{"invalid UTF-8 name", func(t *testing.T, _ string) []byte {
			return zipBytes(t, []tm{reg("\xc3\x28", 0o644, "x")})
		}, ErrBadName},
		{"device", func(t *testing.T, _ string) []byte {
			return zipBytes(t, []tm{{name: "dev/null", typ: tar.TypeChar, mode: 0o666}})
		}, ErrDevice},
		{"fifo", func(t *testing.T, _ string) []byte {
			return zipBytes(t, []tm{{name: "fifo", typ: tar.TypeFifo, mode: 0o666}})
		}, ErrDevice},
		{"1 TB claimed", func(t *testing.T, _ string) []byte {
			return rawZip(t, "big", 1<<40, "tiny")
		}, ErrTooLarge},
		{"more content than claimed", func(t *testing.T, _ string) []byte {
			return rawZip(t, "liar", 10, strings.Repeat("x", 100))
		}, ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outside := outsideDir(t)
			sb := newSandbox(t)
			src := writeSource(t, "hostile.zip", tt.archive(t, outside))
			_, err := Archive(testCtx, sb.root, src, Options{})
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			sb.checkJail(t)
			checkOutside(t, outside)
			checkSmall(t, sb.dir)
		})
	}
}

// rawZip writes one stored entry whose header claims size bytes while
// holding body.
func rawZip(t *testing.T, name string, size uint64, body string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: name, Method: zip.Store, CompressedSize64: uint64(len(body)), UncompressedSize64: size}
	h.SetMode(0o644)
	w, err := zw.CreateRaw(h)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(body))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestHardLinkOnlyToThisArchive: a hard link may only point at a file the
// same archive wrote, not at one an earlier source left in the root.
func TestHardLinkOnlyToThisArchive(t *testing.T) {
	sb := newSandbox(t)
	if err := sb.root.MkdirAll("usr/bin", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := sb.root.WriteFile("usr/bin/earlier", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := writeSource(t, "link.tar", tarBytes(t, []tm{reg("usr/bin/own", 0o644, "own"), hard("usr/bin/a", "usr/bin/own"), hard("usr/bin/b", "usr/bin/earlier")}))
	_, err := Archive(testCtx, sb.root, src, Options{})
	if !errors.Is(err, ErrLinkOutside) || !strings.Contains(err.Error(), `member "usr/bin/b"`) {
		t.Errorf("err = %v, want %v for usr/bin/b", err, ErrLinkOutside)
	}
}

// endless yields 'x' forever, calling onRead at the first read.
type endless struct{ onRead func() }

func (e *endless) Read(p []byte) (int, error) {
	if e.onRead != nil {
		e.onRead()
		e.onRead = nil
	}
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

// TestUnpackStopsWhenCancelled: a cancelled context stops unpacking
// between members and within a file's content, leaving no temporary file.
func TestUnpackStopsWhenCancelled(t *testing.T) {
	cancelled, cancel := context.WithCancel(testCtx)
	cancel()
	var many []tm
	for i := range 100 {
		many = append(many, reg(fmt.Sprintf("usr/share/%d", i), 0o644, "x"))
	}
	tests := []struct {
		name   string
		unpack func(t *testing.T, sb *sandbox) error
	}{
		{"archive, cancelled before", func(t *testing.T, sb *sandbox) error {
			_, err := Archive(cancelled, sb.root, writeSource(t, "many.tar", tarBytes(t, many)), Options{})
			return err
		}},
		{"tree, cancelled before", func(t *testing.T, sb *sandbox) error {
			src := t.TempDir()
			makeTree(t, src, map[string]string{"usr/bin/tool": "x"}, nil)
			return Tree(cancelled, sb.root, src, Options{})
		}},
		{"endless file, cancelled while copying", func(t *testing.T, sb *sandbox) error {
			ctx, cancel := context.WithCancel(testCtx)
			defer cancel()
			return File(ctx, sb.root, &endless{onRead: cancel}, "endless", "/usr/share/endless", 0)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sb := newSandbox(t)
			done := make(chan error, 1)
			go func() { done <- tt.unpack(t, sb) }()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("err = %v, want context.Canceled", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("still unpacking 10 s after the context was cancelled")
			}
			sb.checkJail(t)
			for p, what := range listing(t, sb.dir) {
				if strings.HasPrefix(what, "file") {
					t.Errorf("%s was written: %s", p, what)
				}
			}
		})
	}
}

// TestTruncatedFileLeavesNothing cuts an archive off in the middle of a
// file's content: the staging fails and the file written so far, made
// in place under its own name, is removed.
func TestTruncatedFileLeavesNothing(t *testing.T) {
	body := strings.Repeat("content ", 4096)
	archive := tarBytes(t, []tm{dir("./", 0o755), reg("./first", 0o644, "whole"), reg("./cut", 0o644, body)})
	end := bytes.Index(archive, []byte(body)) + len(body)/2
	sb := newSandbox(t)
	_, err := Archive(testCtx, sb.root, writeSource(t, "cut.tar", archive[:end]), Options{})
	if err == nil {
		t.Fatal("a truncated archive was staged")
	}
	if got := listing(t, sb.dir); !maps.Equal(got, map[string]string{"first": fileEntry(0o644, "whole")}) {
		t.Errorf("after the failure the root holds %q, want only the whole file before the cut", got)
	}
	sb.checkJail(t)
}

// TestCutCompressedStreamIsRefused cuts a compressed archive off where its
// tar stream is between two members: everything before the cut decompresses,
// then the stream ends without its end marker. That is a damaged archive,
// not a shorter one, and staging it must fail.
func TestCutCompressedStreamIsRefused(t *testing.T) {
	tarball := tarBytes(t, []tm{reg("./first", 0o644, "whole"), reg("./second", 0o644, "never seen")})
	const boundary = 1024 // the first member's header and its one block
	for _, c := range []struct {
		format Format
		cut    func() []byte // tarball[:boundary], compressed and flushed but never closed
	}{
		{TarGzip, func() []byte {
			var buf bytes.Buffer
			w := gzip.NewWriter(&buf)
			w.Write(tarball[:boundary])
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			return buf.Bytes()
		}},
		{TarZstd, func() []byte {
			var buf bytes.Buffer
			w, err := zstd.NewWriter(&buf)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(tarball[:boundary])
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			return buf.Bytes()
		}},
	} {
		t.Run(c.format.String(), func(t *testing.T) {
			sb := newSandbox(t)
			_, err := Archive(testCtx, sb.root, writeSource(t, "cut", c.cut()), Options{})
			if err == nil {
				t.Fatalf("a %s stream cut off between two members was staged", c.format)
			}
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "unexpected EOF") {
				t.Errorf("error %v: want ErrFormat, saying the stream ended unexpectedly", err)
			}
			sb.checkJail(t)
		})
	}
}
