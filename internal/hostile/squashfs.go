// Package hostile builds damaged and hostile extension images for tests
// and fuzz seeds: a normal image from bakery's own writer, then patched the
// way an attacker would patch it. Every builder checks that its patches
// landed where it meant them to, so a change of the writers' layout shows
// as an error rather than as a test that no longer tests anything.
package hostile

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/squashfs"
	"github.com/sysext-bakery/bakery/sysext/tree"
)

var le = binary.LittleEndian

// ReleaseDir is where the images keep their extension-release file.
var ReleaseDir = sysext.Sysext.ReleaseDir

// Release is the extension-release the images carry, as extension-release.x.
const Release = "ID=_any\n"

// SparseSize is the length of the sparse extension-release files.
const SparseSize = 3 << 30

// ChainLink is the symlink of the lookup-chain images: resolving it
// rescans a listing of SharedFiles entries 454 times per symlink, through
// 40 symlinks.
const ChainLink = "s"

// Image is a hostile image: its name, and how to build it.
type Image struct {
	Name  string
	Build func() ([]byte, error)
}

// Squashfs images. Each is an extension image with one extension-release.x
// and is damaged only as its name says.
var Squashfs = []Image{
	{"loop-self", func() ([]byte, error) { return squashfsLoop(false) }},
	{"loop-root", func() ([]byte, error) { return squashfsLoop(true) }},
	{"shared-listing", func() ([]byte, error) { return squashfsShared(SharedDirs, false) }},
	{"lookup-chain", func() ([]byte, error) { return squashfsShared(1, true) }},
	{"sparse-release", func() ([]byte, error) { return squashfsRelease(sparseFile()) }},
	{"fifo-release", func() ([]byte, error) { return squashfsRelease(&tree.Node{Mode: fs.ModeNamedPipe | 0o644}) }},
}

// sqDir is a squashfs directory node.
func sqDir(entries ...tree.Entry) *tree.Node {
	return &tree.Node{Mode: fs.ModeDir | 0o755, Entries: entries}
}

// sqFile is a squashfs regular file node.
func sqFile(content string) *tree.Node {
	return &tree.Node{Mode: 0o644, Size: int64(len(content)), Open: func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(content)), nil
	}}
}

// sparseFile is a SparseSize file of zeros, which the writer stores as
// holes.
func sparseFile() *tree.Node {
	return &tree.Node{Mode: 0o644, Size: SparseSize, Open: func() (io.ReadCloser, error) {
		return io.NopCloser(io.LimitReader(zeros{}, SparseSize)), nil
	}}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// sqRoot is a root directory holding usr/lib/extension-release.d with the
// file release as extension-release.x, and the other entries.
func sqRoot(release *tree.Node, entries ...tree.Entry) *tree.Node {
	usr := sqDir(tree.Entry{Name: "lib", Node: sqDir(tree.Entry{Name: "extension-release.d", Node: sqDir(
		tree.Entry{Name: "extension-release.x", Node: release})})})
	return sqDir(append(entries, tree.Entry{Name: "usr", Node: usr})...)
}

// memImage is an image being written in memory.
type memImage struct{ b []byte }

func (m *memImage) WriteAt(p []byte, off int64) (int, error) {
	if end := int(off) + len(p); end > len(m.b) {
		m.b = append(m.b, make([]byte, end-len(m.b))...)
	}
	return copy(m.b[off:], p), nil
}

// squashfsRelease is an image whose extension-release.x is the node rel,
// written with 1 MiB blocks, so that a sparse file of 3 GiB has a block
// list of 12 KiB that compresses to a few bytes, and with lz4, which is
// the same Go code in builds with and without cgo (zstd, xz and gzip are
// C libraries with cgo), so that the image is the same too.
func squashfsRelease(rel *tree.Node) ([]byte, error) {
	img := &memImage{}
	err := writeSquashfs(img, sqRoot(rel), squashfs.Options{Compression: sysext.Lz4, BlockSize: 1 << 20})
	return img.b, err
}

// writeSquashfs writes the squashfs image of the tree rooted at root.
func writeSquashfs(img io.WriterAt, root *tree.Node, opts squashfs.Options) error {
	t, err := tree.FromNode(root)
	if err != nil {
		return err
	}
	_, err = squashfs.Write(context.Background(), img, t, opts)
	return err
}

// sqImage is an uncompressed squashfs image whose inode table is one
// metadata block, so that every inode reference has block 0 and an inode
// is found at a fixed place.
type sqImage struct {
	b []byte
	r *squashfs.Reader
	// inodes maps inode numbers to where the inodes start in b.
	inodes map[uint32]int
}

// Superblock fields and sizes of squashfs 4.0.
const (
	sqRootInode  = 32
	sqInodeTable = 64
	sqDirTable   = 72
	sqMetaRaw    = 0x8000
	sqDirInode   = 1
	sqExtDir     = 8
	sqBlockSize  = 4096
)

// newSqImage writes root uncompressed and indexes its inodes.
func newSqImage(root *tree.Node) (*sqImage, error) {
	img := &memImage{}
	if err := writeSquashfs(img, root, squashfs.Options{Compression: sysext.None, BlockSize: sqBlockSize}); err != nil {
		return nil, err
	}
	s := &sqImage{b: img.b, inodes: map[uint32]int{}}
	start, end := le.Uint64(s.b[sqInodeTable:]), le.Uint64(s.b[sqDirTable:])
	if h := uint64(le.Uint16(s.b[start:])); h&sqMetaRaw == 0 || start+2+h&^sqMetaRaw != end {
		return nil, fmt.Errorf("squashfs: the inode table is not one uncompressed metadata block: make the tree smaller")
	}
	for p := int(start) + 2; p < int(end); {
		n, err := sqInodeSize(s.b[p:end])
		if err != nil {
			return nil, err
		}
		s.inodes[le.Uint32(s.b[p+12:])] = p
		p += n
	}
	return s, s.reopen()
}

// reopen reads the image again after patches.
func (s *sqImage) reopen() error {
	var err error
	s.r, err = squashfs.Open(bytes.NewReader(s.b))
	return err
}

// sqInodeSize is the length of the inode at the start of b, for the inode
// types the builders' trees hold.
func sqInodeSize(b []byte) (int, error) {
	switch typ := le.Uint16(b); typ {
	case sqDirInode:
		return 32, nil
	case sqExtDir:
		n := 40
		for range le.Uint16(b[32:]) {
			n += 12 + int(le.Uint32(b[n+8:])) + 1
		}
		return n, nil
	case 2: // basic file, no blocks
		if le.Uint32(b[28:]) >= sqBlockSize {
			return 0, fmt.Errorf("squashfs: file of a block or more in the tree")
		}
		return 32, nil
	case 9: // extended file, no blocks
		if le.Uint64(b[24:]) >= sqBlockSize {
			return 0, fmt.Errorf("squashfs: file of a block or more in the tree")
		}
		return 56, nil
	case 3: // symlink
		return 24 + int(le.Uint32(b[20:])), nil
	default:
		return 0, fmt.Errorf("squashfs: inode type %d in the tree", typ)
	}
}

// inode returns where the inode at path p starts.
func (s *sqImage) inode(p string) (int, error) {
	fi, err := s.r.Lstat(p)
	if err != nil {
		return 0, err
	}
	at, ok := s.inodes[fi.Sys().(*squashfs.Stat).Inode]
	if !ok {
		return 0, fmt.Errorf("squashfs: %s: inode %d not found", p, fi.Sys().(*squashfs.Stat).Inode)
	}
	return at, nil
}

// ref is the inode reference of the inode starting at at.
func (s *sqImage) ref(at int) uint16 {
	return uint16(at - int(le.Uint64(s.b[sqInodeTable:])) - 2)
}

// entry returns where the directory entry named name starts (its inode
// offset); the name must occur once in the directory table.
func (s *sqImage) entry(name string) (int, error) {
	dirs := int(le.Uint64(s.b[sqDirTable:]))
	pat := append(le.AppendUint16(nil, uint16(len(name)-1)), name...)
	i := bytes.Index(s.b[dirs:], pat)
	if i < 0 || bytes.Count(s.b[dirs:], pat) != 1 {
		return 0, fmt.Errorf("squashfs: entry %q is not once in the directory table", name)
	}
	return dirs + i - 6, nil
}

// squashfsLoop is an image with a directory dloop whose entries loopa and
// loopb are dloop itself, or the root directory.
func squashfsLoop(toRoot bool) ([]byte, error) {
	s, err := newSqImage(sqRoot(sqFile(Release), tree.Entry{Name: "dloop", Node: sqDir(
		tree.Entry{Name: "loopa", Node: sqDir()}, tree.Entry{Name: "loopb", Node: sqDir()})}))
	if err != nil {
		return nil, err
	}
	target, err := s.inode("dloop")
	if err != nil {
		return nil, err
	}
	ref := s.ref(target)
	if toRoot {
		ref = uint16(le.Uint64(s.b[sqRootInode:]))
	}
	for _, name := range []string{"loopa", "loopb"} {
		e, err := s.entry(name)
		if err != nil {
			return nil, err
		}
		le.PutUint16(s.b[e:], ref)
	}
	if err := s.reopen(); err != nil {
		return nil, err
	}
	want, _ := s.r.Lstat(".")
	if !toRoot {
		want, _ = s.r.Lstat("dloop")
	}
	if got, err := s.r.Lstat("dloop/loopb"); err != nil || got.Sys().(*squashfs.Stat).Inode != want.Sys().(*squashfs.Stat).Inode {
		return nil, fmt.Errorf("squashfs: dloop/loopb does not loop after the patch (%v)", err)
	}
	return s.b, nil
}

// Sizes of the shared-listing images: SharedDirs directories that all list
// the SharedFiles entries of one directory.
const (
	SharedDirs  = 200
	SharedFiles = 4800
)

// squashfsShared is an image with a directory files of SharedFiles hard
// links to one file, b0000 to b4799, and dirs directories d000, d001...
// whose inodes point at the listing of files: a walk of the shared-listing
// image meets SharedDirs*SharedFiles entries in an image of 80 KiB. The
// directories' inodes are basic ones, without the index of files, so a
// lookup in them reads the whole listing; with chain, the symlink
// ChainLink looks up the last file of d000 and goes back up 454 times,
// then links to itself.
func squashfsShared(dirs int, chain bool) ([]byte, error) {
	one := sqFile("x")
	var files []tree.Entry
	for i := range SharedFiles {
		files = append(files, tree.Entry{Name: fmt.Sprintf("b%04d", i), Node: one})
	}
	last := files[len(files)-1].Name
	entries := []tree.Entry{{Name: "files", Node: sqDir(files...)}}
	for i := range dirs {
		entries = append(entries, tree.Entry{Name: fmt.Sprintf("d%03d", i), Node: sqDir()})
	}
	if chain {
		hop := last + "/../"
		target := "d000/" + strings.Repeat(hop, (4096-len("d000/../"+ChainLink))/len(hop)) + "../" + ChainLink
		entries = append(entries, tree.Entry{Name: ChainLink, Node: &tree.Node{Mode: fs.ModeSymlink | 0o777, Target: target}})
	}
	s, err := newSqImage(sqRoot(sqFile(Release), entries...))
	if err != nil {
		return nil, err
	}
	f, err := s.inode("files")
	if err != nil {
		return nil, err
	}
	if le.Uint16(s.b[f:]) != sqExtDir || le.Uint32(s.b[f+20:]) > 0xffff {
		return nil, fmt.Errorf("squashfs: files is not an extended directory with a listing of at most 64 KiB")
	}
	start, size, offset := le.Uint32(s.b[f+24:]), le.Uint32(s.b[f+20:]), le.Uint16(s.b[f+34:])
	for i := range dirs {
		d, err := s.inode(fmt.Sprintf("d%03d", i))
		if err != nil {
			return nil, err
		}
		if le.Uint16(s.b[d:]) != sqDirInode {
			return nil, fmt.Errorf("squashfs: d%03d is not a basic directory inode", i)
		}
		le.PutUint32(s.b[d+16:], start)
		le.PutUint16(s.b[d+24:], uint16(size))
		le.PutUint16(s.b[d+26:], offset)
	}
	if err := s.reopen(); err != nil {
		return nil, err
	}
	if _, err := s.r.Lstat(fmt.Sprintf("d%03d/%s", dirs-1, last)); err != nil {
		return nil, fmt.Errorf("squashfs: d%03d does not list files after the patch: %w", dirs-1, err)
	}
	return s.b, nil
}
