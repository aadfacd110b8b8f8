// Package inspect reads an extension image file — file system, digest,
// extension-release, entry count — with bakery's own readers, without
// mounting it or calling external tools.
package inspect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/sysext-bakery/bakery/internal/digest"
	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/formats"
	"golang.org/x/sys/unix"
)

// Info is what inspect tells about an image.
type Info struct {
	Path   string `json:"path"`
	Format string `json:"fstype"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// Class is the image class: sysext or confext.
	Class string `json:"class"`
	// Name is the NAME of the image's extension-release.NAME.
	Name    string         `json:"name"`
	Release sysext.Release `json:"extensionRelease"`
	// Entries counts every file, directory, link and special file, the
	// root directory excluded.
	Entries int `json:"entries"`
	// DDI describes a DDI's root partition and its protection.
	DDI *DDIInfo `json:"ddi,omitempty"`
}

// DDIInfo is what inspect tells about a DDI beyond its file system.
type DDIInfo struct {
	// Architecture is the systemd architecture of the root partition
	// read (the host's, else the only one).
	Architecture string `json:"architecture"`
	// FSType is the file system in the root partition.
	FSType string `json:"fstype"`
	// Verity is "verity" when the hash tree checks the data against the
	// root hash the DDI names (no certificate is consulted: a node
	// decides whom it trusts), "unprotected" without a hash tree.
	Verity string `json:"verity"`
	// RootHash is the verified root hash.
	RootHash string `json:"rootHash,omitempty"`
	// Signed tells whether the DDI has a signature partition, and
	// CertificateFingerprint names the certificate it says signed it.
	Signed                 bool   `json:"signed"`
	CertificateFingerprint string `json:"certificateFingerprint,omitempty"`
}

// Limits that stop a walk of a damaged or hostile image whose directories
// contain themselves.
const (
	maxDepth   = 1024
	maxEntries = 50_000_000
)

// Image inspects the image file at p, which must be a regular file (a
// FIFO is refused without blocking).
func Image(p string) (*Info, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file: give an image file", p)
	}
	fsys, format, err := Open(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	info := &Info{Path: p, Format: format.Name()}
	var class sysext.Class
	if class, info.Name, info.Release, err = sysext.DetectRelease(fsys); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	info.Class = class.Name
	if info.Entries, err = countEntries(fsys); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if format.Name() == "ddi" {
		if info.DDI, err = describeDDI(f); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}
	h, size, err := digest.File(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	info.Size, info.SHA256 = size, h.Hex
	return info, nil
}

// Open reads an image's file system with the native reader of its
// format.
func Open(r io.ReaderAt) (fs.FS, sysext.Format, error) {
	format, err := formats.Detect(r)
	if err != nil {
		return nil, nil, err
	}
	fsys, err := format.Open(r)
	if err != nil {
		return nil, format, fmt.Errorf("%s: %w", format.Name(), err)
	}
	return fsys, format, nil
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

// describeDDI verifies a DDI's hash tree and reads its signature
// partition.
func describeDDI(r io.ReaderAt) (*DDIInfo, error) {
	im, _, err := formats.OpenDDI(r)
	if err != nil {
		return nil, err
	}
	v, err := im.Verify(context.Background(), nil)
	if err != nil {
		return nil, err
	}
	inner, err := formats.Inner(v.Data)
	if err != nil {
		return nil, err
	}
	info := &DDIInfo{Architecture: im.Arch, FSType: inner.Name(), Verity: string(v.Protection), RootHash: v.RootHash, Signed: im.Signature != nil}
	if doc, err := im.SignatureDoc(); err == nil && doc != nil {
		info.CertificateFingerprint = doc.CertificateFingerprint
	}
	return info, nil
}
