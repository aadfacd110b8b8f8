package squashfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/tree"
)

// memFile is an in-memory image.
type memFile struct{ b []byte }

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	if end := int(off) + len(p); end > len(m.b) {
		m.b = append(m.b, make([]byte, end-len(m.b))...)
	}
	return copy(m.b[off:], p), nil
}

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(m.b).ReadAt(p, off)
}

// content returns a regular file node holding data.
func content(data []byte, mode fs.FileMode) *tree.Node {
	return &tree.Node{Mode: mode, Size: int64(len(data)), Open: func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}}
}

func dir(entries ...tree.Entry) *tree.Node {
	return &tree.Node{Mode: fs.ModeDir | 0o755, Entries: entries}
}

// writeNodes writes the image of a tree built in memory.
func writeNodes(ctx context.Context, w io.WriterAt, root *tree.Node, opts Options) (int64, error) {
	t, err := tree.FromNode(root)
	if err != nil {
		return 0, err
	}
	return Write(ctx, w, t, opts)
}

// dumpNodes describes an in-memory tree the way dumpImage describes an
// image written from it with KeepMtimes.
func dumpNodes(root *tree.Node) []string {
	t, err := tree.FromNode(root)
	if err != nil {
		panic(err)
	}
	var facts []fileFacts
	var walk func(p string, n tree.Ino)
	walk = func(p string, n tree.Ino) {
		mode := t.Mode(n)
		uid, gid := t.Owner(n)
		f := fileFacts{path: p, typ: typeLetter(mode), perm: uint32(unixMode(mode)), uid: uid, gid: gid,
			nlink: t.Nlink(n), size: fmt.Sprint(t.Size(n)), mtime: t.Mtime(n), dev: "-", sum: "-",
			inodeKey: fmt.Sprint(n), xattrs: t.Xattrs(n)}
		switch f.typ {
		case "d":
			f.size = "-"
		case "l":
			f.target, f.size = t.Target(n), fmt.Sprint(len(t.Target(n)))
		case "b", "c":
			major, minor := t.Device(n)
			f.dev = fmt.Sprintf("%d:%d", major, minor)
		case "f":
			f.sum = "e3b0c44298fc1c14" // sha256 of nothing
			if t.Size(n) > 0 {
				rc, _ := t.Open(n)
				f.sum, _ = sumOf(rc)
			}
		}
		if len(f.xattrs) == 0 {
			f.xattrs = nil
		}
		facts = append(facts, f)
		for k := range t.NumEntries(n) {
			name, c := t.Entry(n, k)
			walk(strings.TrimPrefix(p+"/"+name, "./"), c)
		}
	}
	walk(".", tree.Root)
	return dumpLines(facts)
}

// byteSource hands out fuzz input bytes, then zeros.
type byteSource struct{ b []byte }

func (s *byteSource) next() byte {
	if len(s.b) == 0 {
		return 0
	}
	c := s.b[0]
	s.b = s.b[1:]
	return c
}

// genTree builds a small tree of every node type from fuzz input.
func genTree(s *byteSource, depth int) *tree.Node {
	d := dir()
	d.Mode |= fs.FileMode(s.next() & 0o7)
	d.Mtime = int64(s.next()) * 1000000
	var files []*tree.Node
	n := int(s.next() % 12)
	for i := range n {
		name := fmt.Sprintf("e%d", i)
		if s.next()%16 == 0 {
			name = strings.Repeat("L", 200+int(s.next()%50)) + name
		}
		var c *tree.Node
		switch k := s.next() % 10; {
		case k == 0 && depth < 3:
			c = genTree(s, depth+1)
		case k <= 4:
			size := []int{0, 1, 100, 4095, 4096, 4097, 9000, 12288}[s.next()%8]
			fill := s.next()
			data := make([]byte, size)
			for j := range data {
				if fill%3 != 0 && j/4096 != int(fill%4) {
					data[j] = fill + byte(j*int(fill|1)>>3)
				}
			}
			c = content(data, fs.FileMode(s.next())&0o777|fs.FileMode(s.next()%2)*fs.ModeSetuid)
			files = append(files, c)
		case k == 5:
			c = &tree.Node{Mode: fs.ModeSymlink | 0o777, Target: strings.Repeat("../t", 1+int(s.next()%5))}
		case k == 6:
			c = &tree.Node{Mode: fs.ModeDevice | fs.FileMode(s.next()%2)*fs.ModeCharDevice | 0o600, Major: uint32(s.next()), Minor: uint32(s.next()) * 1000}
		case k == 7:
			c = &tree.Node{Mode: []fs.FileMode{fs.ModeNamedPipe, fs.ModeSocket}[s.next()%2] | 0o644}
		case k == 8 && len(files) > 0:
			c = files[int(s.next())%len(files)]
		default:
			c = content([]byte(name), 0o644)
		}
		if c.Mtime == 0 {
			c.Mtime = int64(s.next()) << 20
			c.UID, c.GID = uint32(s.next())*300, uint32(s.next())
			if s.next()%4 == 0 {
				c.Xattrs = map[string][]byte{"user.k": {s.next()}, "trusted.t" + fmt.Sprint(s.next()%3): bytes.Repeat([]byte{s.next()}, int(s.next()))}
			}
		}
		d.Entries = append(d.Entries, tree.Entry{Name: name, Node: c})
	}
	return d
}

var compressions = []sysext.Compression{sysext.Zstd, sysext.Gzip, sysext.Xz, sysext.Lz4, sysext.None}

// FuzzRoundTrip writes random small trees and reads them back.
func FuzzRoundTrip(f *testing.F) {
	for i := range 5 {
		f.Add(bytes.Repeat([]byte{byte(i*37 + 11), 5, 200, 3, 9}, 40+i*20))
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		s := &byteSource{b: data}
		comp := compressions[int(s.next())%len(compressions)]
		root := genTree(s, 0)
		img := &memFile{}
		if _, err := writeNodes(context.Background(), img, root, Options{Compression: comp, BlockSize: 4096, KeepMtimes: true, Workers: 2}); err != nil {
			t.Fatalf("write (%s): %v", comp, err)
		}
		r, err := Open(img)
		if err != nil {
			t.Fatalf("open (%s): %v", comp, err)
		}
		got, err := dumpImage(r)
		if err != nil {
			t.Fatalf("read (%s): %v", comp, err)
		}
		diffLines(t, string(comp), dumpNodes(root), got)
	})
}

// bigTree is a generated tree of about size bytes in files of mixed
// compressibility, for determinism tests and benchmarks.
func bigTree(files, size int) *tree.Node {
	root := dir()
	per := size / files
	for i := range files {
		data := make([]byte, per+i%5000)
		x := uint32(i*2654435761 + 1)
		for j := range data {
			if i%3 == 0 {
				x = x*1664525 + 1013904223
				data[j] = byte(x >> 24)
			} else {
				data[j] = "squashfs text "[(i+j)%14]
			}
		}
		sub := fmt.Sprintf("d%02d", i%16)
		var d *tree.Node
		for _, e := range root.Entries {
			if e.Name == sub {
				d = e.Node
			}
		}
		if d == nil {
			d = dir()
			root.Entries = append(root.Entries, tree.Entry{Name: sub, Node: d})
		}
		d.Entries = append(d.Entries, tree.Entry{Name: fmt.Sprintf("f%05d", i), Node: content(data, 0o644)})
	}
	return root
}

// TestDeterministic checks that the same tree gives the same bytes for any
// number of workers and GOMAXPROCS.
func TestDeterministic(t *testing.T) {
	root := bigTree(300, 6<<20)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, comp := range compressions {
		var first []byte
		for _, procs := range []int{1, 2, 4} {
			runtime.GOMAXPROCS(procs)
			for _, workers := range []int{0, 3} {
				img := &memFile{}
				if _, err := writeNodes(context.Background(), img, root, Options{Compression: comp, Workers: workers, Epoch: 42}); err != nil {
					t.Fatal(err)
				}
				if first == nil {
					first = img.b
				} else if !bytes.Equal(first, img.b) {
					t.Fatalf("%s: GOMAXPROCS=%d workers=%d gives different bytes", comp, procs, workers)
				}
			}
		}
	}
}

// TestDuplicatesAndSparse checks that equal files share their data and
// that zero blocks are stored as sparse blocks.
func TestDuplicatesAndSparse(t *testing.T) {
	unique := bigTree(1, 1<<20).Entries[0].Node.Entries[0].Node
	zeros := &tree.Node{Size: 10 << 20, Open: func() (io.ReadCloser, error) {
		return io.NopCloser(io.LimitReader(zeroReader{}, 10<<20)), nil
	}}
	root := dir(tree.Entry{Name: "a", Node: unique}, tree.Entry{Name: "b", Node: content(mustReadAll(t, unique), 0o600)}, tree.Entry{Name: "zeros", Node: zeros},
		tree.Entry{Name: "s1", Node: content([]byte("small twin"), 0o644)}, tree.Entry{Name: "s2", Node: content([]byte("other size"), 0o644)},
		tree.Entry{Name: "s3", Node: content([]byte("small twin"), 0o755)})
	img := &memFile{}
	n, err := writeNodes(context.Background(), img, root, Options{Compression: sysext.None})
	if err != nil {
		t.Fatal(err)
	}
	if n > 1<<20+64<<10 {
		t.Errorf("image of two equal 1 MiB files and 10 MiB of zeros is %d bytes: duplicates or zeros were stored", n)
	}
	r, err := Open(img)
	if err != nil {
		t.Fatal(err)
	}
	inode := func(name string) *inode {
		in, err := r.resolve("t", name, false, r.newWork())
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	a, b := blockSizes(t, r, "a"), blockSizes(t, r, "b")
	if inode("a").start != inode("b").start || fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("duplicate files have different data: %d %v vs %d %v", inode("a").start, a, inode("b").start, b)
	}
	s1, s2, s3 := inode("s1"), inode("s2"), inode("s3")
	if s1.frag != s3.frag || s1.fragAt != s3.fragAt || s1.fragAt == s2.fragAt {
		t.Errorf("small files: fragment places %d+%d, %d+%d, %d+%d; want the equal first and last to share one", s1.frag, s1.fragAt, s2.frag, s2.fragAt, s3.frag, s3.fragAt)
	}
	for i, s := range blockSizes(t, r, "zeros") {
		if s != 0 {
			t.Fatalf("zero block %d stored with size %#x, want 0 (sparse)", i, s)
		}
	}
	got, err := dumpImage(r)
	if err != nil {
		t.Fatal(err)
	}
	diffLines(t, "dump", dumpNodes(root), got)
}

// blockSizes reads the whole block list of the regular file name.
func blockSizes(t *testing.T, r *Reader, name string) []uint32 {
	t.Helper()
	fh, err := r.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	f := fh.(*file)
	if f.info.in.nblocks > 0 {
		if err := f.list.load(f.info.in.nblocks-1, f.info.in, r.sb.BlockSize); err != nil {
			t.Fatal(err)
		}
	}
	return f.list.sizes
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func mustReadAll(t *testing.T, n *tree.Node) []byte {
	t.Helper()
	rc, err := n.Open()
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestWriteErrors checks that bad options and trees are refused with an
// error naming the problem.
func TestWriteErrors(t *testing.T) {
	file := content([]byte("x"), 0o644)
	short := &tree.Node{Size: 10, Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("abc")), nil }}
	grown := func(size int64, data string) *tree.Node {
		return &tree.Node{Size: size, Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(data)), nil }}
	}
	sub := dir()
	for _, tc := range []struct {
		name string
		root *tree.Node
		opts Options
		want string
	}{
		{"block size", dir(), Options{BlockSize: 5000}, "block size 5000"},
		{"small block", dir(), Options{BlockSize: 2048}, "block size 2048"},
		{"zstd level", dir(), Options{Level: 23}, "zstd level 23"},
		{"gzip level", dir(), Options{Compression: sysext.Gzip, Level: 10}, "gzip level 10"},
		{"xz level", dir(), Options{Compression: sysext.Xz, Level: 3}, "xz level 3"},
		{"compression", dir(), Options{Compression: "brotli"}, `compression "brotli"`},
		{"epoch", dir(), Options{Epoch: -1}, "epoch -1"},
		{"root not dir", file, Options{}, "root must be a directory"},
		{"empty name", dir(tree.Entry{Name: "", Node: file}), Options{}, "invalid name"},
		{"slash", dir(tree.Entry{Name: "a/b", Node: file}), Options{}, "invalid name"},
		{"dotdot", dir(tree.Entry{Name: "..", Node: file}), Options{}, "invalid name"},
		{"long name", dir(tree.Entry{Name: strings.Repeat("x", 257), Node: file}), Options{}, "invalid name"},
		{"duplicate", dir(tree.Entry{Name: "a", Node: file}, tree.Entry{Name: "a", Node: file}), Options{}, "/a: duplicate entry"},
		{"dir twice", dir(tree.Entry{Name: "a", Node: sub}, tree.Entry{Name: "b", Node: sub}), Options{}, "/b: directory appears twice"},
		{"acl", dir(tree.Entry{Name: "f", Node: &tree.Node{Xattrs: map[string][]byte{"system.posix_acl_access": nil}}}), Options{}, `/f: xattr "system.posix_acl_access"`},
		{"major", dir(tree.Entry{Name: "d", Node: &tree.Node{Mode: fs.ModeDevice, Major: 5000}}), Options{}, "/d: device 5000:0"},
		{"no open", dir(tree.Entry{Name: "f", Node: &tree.Node{Size: 3}}), Options{}, "/f: regular file of 3 bytes has no Open"},
		{"shrunk", dir(tree.Entry{Name: "f", Node: short}), Options{}, "/f: read tail"},
		{"grew, tail only", dir(tree.Entry{Name: "f", Node: grown(3, "abcdef")}), Options{}, "/f: it grew"},
		{"grew, whole blocks", dir(tree.Entry{Name: "f", Node: grown(4096, strings.Repeat("x", 4097))}), Options{BlockSize: 4096}, "/f: it grew"},
		{"grew, blocks and a tail", dir(tree.Entry{Name: "f", Node: grown(4100, strings.Repeat("x", 5000))}), Options{BlockSize: 4096}, "/f: it grew"},
		{"mtime", dir(tree.Entry{Name: "f", Node: &tree.Node{Mtime: -5}}), Options{KeepMtimes: true}, "/f: mtime -5"},
		{"irregular", dir(tree.Entry{Name: "f", Node: &tree.Node{Mode: fs.ModeIrregular}}), Options{}, "/f: file type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := writeNodes(context.Background(), &memFile{}, tc.root, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestWriteCanceled checks that a canceled context stops the writer.
func TestWriteCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := writeNodes(ctx, &memFile{}, bigTree(20, 4<<20), Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}

// TestBuilder builds a directory with the sysext options: every time is
// the epoch and owners are root with AllRoot.
func TestBuilder(t *testing.T) {
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "usr/lib/extension-release.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	rel := []byte("ID=_any\nARCHITECTURE=x86-64\n")
	if err := os.WriteFile(filepath.Join(src, "usr/lib/extension-release.d/extension-release.test"), rel, 0o644); err != nil {
		t.Fatal(err)
	}
	b := Builder{}
	if b.Name() != "native" {
		t.Errorf("Name() = %q, want native", b.Name())
	}
	for _, comp := range compressions {
		img := filepath.Join(t.TempDir(), "test.raw")
		if err := b.Build(context.Background(), src, img, sysext.BuildOptions{Compression: comp, Epoch: 1700000000, AllRoot: true}); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(img)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if !Detect(f) {
			t.Fatal("Detect = false for a squashfs image")
		}
		r, err := Open(f)
		if err != nil {
			t.Fatal(err)
		}
		if sb := r.Superblock(); sb.Compression != comp || sb.BlockSize != DefaultBlockSize || sb.ModTime.Unix() != 1700000000 || sb.Inodes != 5 {
			t.Errorf("superblock %+v, want %s, 128 KiB blocks, time 1700000000, 5 inodes", sb, comp)
		}
		got, err := fs.ReadFile(r, "usr/lib/extension-release.d/extension-release.test")
		if err != nil || !bytes.Equal(got, rel) {
			t.Errorf("extension-release = %q, %v", got, err)
		}
		err = fs.WalkDir(r, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			if st := info.Sys().(*Stat); st.UID != 0 || st.GID != 0 || info.ModTime().Unix() != 1700000000 {
				t.Errorf("%s: owner %d:%d time %d, want 0:0 and the epoch", p, st.UID, st.GID, info.ModTime().Unix())
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestWriteStream writes a host tree as tree.ReadStream hands it out,
// while the walk goes on, and as tree.Read gives it whole: the images
// must be byte-identical.
func TestWriteStream(t *testing.T) {
	src := t.TempDir()
	big := bytes.Repeat([]byte("stream "), 60000)
	for i := range 300 {
		p := filepath.Join(src, fmt.Sprintf("usr/d%02d/f%03d", i%17, i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		data := big[:(i*7919)%len(big)]
		if i%5 == 0 {
			data = big[:1000] // duplicates, small
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	whole, err := tree.Read(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	for _, comp := range []sysext.Compression{sysext.Zstd, sysext.None} {
		opts := Options{Compression: comp, BlockSize: 16 << 10, Workers: 3}
		want, got := &memFile{}, &memFile{}
		if _, err := Write(context.Background(), want, whole, opts); err != nil {
			t.Fatal(err)
		}
		if _, err := WriteStream(context.Background(), got, tree.ReadStream(context.Background(), src), opts); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.b, want.b) {
			t.Errorf("%s: the streamed image differs from the one of the whole tree", comp)
		}
	}
}
