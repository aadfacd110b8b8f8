// Package inspect reads an extension image file — file system, digest,
// extension-release, entry count — with bakery's own readers, without
// mounting it or calling external tools.
package inspect

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/erofs"
	"github.com/sysext-bakery/bakery/sysext/squashfs"
)

// Info is what inspect tells about an image.
type Info struct {
	Path   string        `json:"path"`
	Format sysext.Format `json:"fstype"`
	Size   int64         `json:"size"`
	SHA256 string        `json:"sha256"`
	// Name is the NAME of usr/lib/extension-release.d/extension-release.NAME.
	Name    string         `json:"name"`
	Release sysext.Release `json:"extensionRelease"`
	// Entries counts every file, directory, link and special file, the
	// root directory excluded.
	Entries int `json:"entries"`
}

// ReleaseDir is where an extension keeps its extension-release file.
const ReleaseDir = "usr/lib/extension-release.d"

// Limits that stop a walk of a damaged or hostile image whose directories
// contain themselves.
const (
	maxDepth   = 1024
	maxEntries = 50_000_000
)

// Image inspects the image file at p.
func Image(p string) (*Info, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fsys, format, err := Open(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	info := &Info{Path: p, Format: format}
	if info.Name, info.Release, err = Release(fsys); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if info.Entries, err = countEntries(fsys); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	h := sha256.New()
	if info.Size, err = io.Copy(h, io.NewSectionReader(f, 0, 1<<62)); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	info.SHA256 = hex.EncodeToString(h.Sum(nil))
	return info, nil
}

// Open reads an image's file system with the native reader for its format.
func Open(r io.ReaderAt) (fs.FS, sysext.Format, error) {
	format, err := sysext.DetectFormat(r)
	if err != nil {
		return nil, "", err
	}
	var fsys fs.FS
	switch format {
	case sysext.Squashfs:
		fsys, err = squashfs.Open(r)
	case sysext.Erofs:
		fsys, err = erofs.Open(r)
	default:
		err = fmt.Errorf("no reader for %s", format)
	}
	if err != nil {
		return nil, format, fmt.Errorf("%s: %w", format, err)
	}
	return fsys, format, nil
}

// Release reads the one usr/lib/extension-release.d/extension-release.NAME
// of an image's tree, with sysext.ReadReleaseFile, and returns NAME and its
// fields.
func Release(fsys fs.FS) (string, sysext.Release, error) {
	entries, err := fs.ReadDir(fsys, ReleaseDir)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w (not a system extension image)", ReleaseDir, err)
	}
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutPrefix(e.Name(), "extension-release."); ok && !e.IsDir() {
			names = append(names, n)
		}
	}
	if len(names) != 1 {
		return "", nil, fmt.Errorf("want exactly one %s/extension-release.NAME, found %d", ReleaseDir, len(names))
	}
	rel, err := sysext.ReadReleaseFile(fsys, ReleaseDir+"/extension-release."+names[0])
	if err != nil {
		return "", nil, err
	}
	return names[0], rel, nil
}

// errTooDeep stops a walk through a directory loop.
var errTooDeep = errors.New("directories nested too deep or too many entries: the image is damaged (a directory loop?)")

// walker is a reader that walks its tree itself, stopping at directory
// loops.
type walker interface {
	Walk(fn fs.WalkDirFunc) error
}

// countEntries counts the entries below the root of fsys.
func countEntries(fsys fs.FS) (int, error) {
	walk := func(fn fs.WalkDirFunc) error { return fs.WalkDir(fsys, ".", fn) }
	if w, ok := fsys.(walker); ok {
		walk = w.Walk
	}
	n := 0
	err := walk(func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "." {
			return err
		}
		n++
		if n > maxEntries || strings.Count(p, "/") >= maxDepth {
			return errTooDeep
		}
		return nil
	})
	return n, err
}
