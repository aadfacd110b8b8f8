package hostile

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	goerofs "github.com/erofs/go-erofs"
	"golang.org/x/sys/unix"

	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/erofs"
)

// Erofs images, as Squashfs, less the lookup chain: go-erofs looks names
// up by binary search.
var Erofs = []Image{
	{"loop-self", func() ([]byte, error) { return erofsLoop(false) }},
	{"loop-root", func() ([]byte, error) { return erofsLoop(true) }},
	{"shared-listing", erofsSharedListing},
	{"sparse-release", erofsSparseRelease},
	{"fifo-release", func() ([]byte, error) {
		return erofsImage(func(rel string) error { return unix.Mkfifo(rel, 0o644) })
	}},
}

// Erofs superblock fields and sizes.
const (
	erofsSuperblock = 1024
	erofsRootNid    = erofsSuperblock + 14
	erofsMetaBlock  = erofsSuperblock + 40
	erofsBlockSize  = 4096
	erofsDirent     = 12
	erofsLayoutBit  = 1 // i_format: bit 0 extended, bits 1-3 the layout
)

// erofsImage builds an image of a tree whose extension-release.x makeRelease
// makes at the path it is given, and whose other files mkTree makes in the
// tree's root.
func erofsImage(makeRelease func(string) error, mkTree ...func(root string) error) ([]byte, error) {
	dir, err := os.MkdirTemp("", "hostile-erofs-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "src")
	rel := filepath.Join(src, ReleaseDir, "extension-release.x")
	if err := os.MkdirAll(filepath.Dir(rel), 0o755); err != nil {
		return nil, err
	}
	if err := makeRelease(rel); err != nil {
		return nil, err
	}
	for _, mk := range mkTree {
		if err := mk(src); err != nil {
			return nil, err
		}
	}
	img := filepath.Join(dir, "img")
	if err := (erofs.Builder{}).Build(context.Background(), src, img, sysext.BuildOptions{AllRoot: true}); err != nil {
		return nil, err
	}
	return os.ReadFile(img)
}

// erofsSparseRelease is an image whose extension-release.x is a hole of
// SparseSize bytes.
func erofsSparseRelease() ([]byte, error) {
	b, err := erofsImage(func(rel string) error {
		f, err := os.Create(rel)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Truncate(SparseSize)
	})
	if err == nil && len(b) > 64<<10 {
		err = fmt.Errorf("erofs: the sparse release takes %d bytes: the temporary directory's file system reports no holes", len(b))
	}
	return b, err
}

// writeRelease writes the valid extension-release.
func writeRelease(rel string) error { return os.WriteFile(rel, []byte(Release), 0o644) }

// erofsNid returns the nid of the file at p of the image b.
func erofsNid(b []byte, p string) (uint64, error) {
	im, err := erofs.Open(bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	fi, err := im.Lstat(p)
	if err != nil {
		return 0, err
	}
	return uint64(fi.Sys().(*goerofs.Stat).Ino), nil
}

// erofsInode returns where the inode nid starts in the image b.
func erofsInode(b []byte, nid uint64) int {
	return int(le.Uint32(b[erofsMetaBlock:]))*erofsBlockSize + int(nid)*32
}

// erofsDirents returns where the entries of the one directory whose names
// are names, in order, start in the image b.
func erofsDirents(b []byte, names ...string) (int, error) {
	var all []byte
	for _, n := range names {
		all = append(all, n...)
	}
	q := bytes.Index(b, all)
	if q < 0 || bytes.Count(b, all) != 1 {
		return 0, fmt.Errorf("erofs: the names %q are not once in the image", names)
	}
	s := q - erofsDirent*len(names)
	if s < 0 || int(le.Uint16(b[s+8:])) != erofsDirent*len(names) {
		return 0, fmt.Errorf("erofs: the entries of %q are not where their names say", names)
	}
	return s, nil
}

// erofsLoop is an image with a directory dloop whose entries loopa and
// loopb are dloop itself, or the root directory.
func erofsLoop(toRoot bool) ([]byte, error) {
	b, err := erofsImage(writeRelease, func(root string) error {
		for _, d := range []string{"dloop/loopa", "dloop/loopb"} {
			if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	target, err := erofsNid(b, "dloop")
	if err != nil {
		return nil, err
	}
	if toRoot {
		target = uint64(le.Uint16(b[erofsRootNid:]))
	}
	s, err := erofsDirents(b, ".", "..", "loopa", "loopb")
	if err != nil {
		return nil, err
	}
	le.PutUint64(b[s+2*erofsDirent:], target)
	le.PutUint64(b[s+3*erofsDirent:], target)
	if nid, err := erofsNid(b, "dloop/loopb"); err != nil || nid != target {
		return nil, fmt.Errorf("erofs: dloop/loopb does not loop after the patch (%v)", err)
	}
	return b, nil
}

// erofsSharedListing is an image with a directory files of SharedFiles
// hard links to one file and SharedDirs directories d000... whose inodes
// point at the full blocks of entries of files.
func erofsSharedListing() ([]byte, error) {
	b, err := erofsImage(writeRelease, func(root string) error {
		files := filepath.Join(root, "files")
		if err := os.Mkdir(files, 0o755); err != nil {
			return err
		}
		one := filepath.Join(root, "one")
		if err := os.WriteFile(one, []byte("x"), 0o644); err != nil {
			return err
		}
		for i := range SharedFiles {
			if err := os.Link(one, filepath.Join(files, fmt.Sprintf("b%04d", i))); err != nil {
				return err
			}
		}
		for i := range SharedDirs {
			if err := os.Mkdir(filepath.Join(root, fmt.Sprintf("d%03d", i)), 0o755); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	nid, err := erofsNid(b, "files")
	if err != nil {
		return nil, err
	}
	f := erofsInode(b, nid)
	if le.Uint16(b[f:])&1 != 0 {
		return nil, fmt.Errorf("erofs: files has an extended inode")
	}
	full := le.Uint32(b[f+8:]) / erofsBlockSize * erofsBlockSize
	if full == 0 {
		return nil, fmt.Errorf("erofs: files has no full block of entries")
	}
	for i := range SharedDirs {
		name := fmt.Sprintf("d%03d", i)
		nid, err := erofsNid(b, name)
		if err != nil {
			return nil, err
		}
		d := erofsInode(b, nid)
		if le.Uint16(b[d:])&1 != 0 {
			return nil, fmt.Errorf("erofs: %s has an extended inode", name)
		}
		le.PutUint16(b[d:], 0) // compact, flat plain
		le.PutUint32(b[d+8:], full)
		le.PutUint32(b[d+16:], le.Uint32(b[f+16:]))
	}
	if _, err := erofsNid(b, fmt.Sprintf("d%03d/b0000", SharedDirs-1)); err != nil {
		return nil, fmt.Errorf("erofs: d%03d does not list files after the patch: %w", SharedDirs-1, err)
	}
	return b, nil
}
