package sysext

import (
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// Finding an image's extension-release: the one rule for every reader
// (bake, inspect, push, pull, merge).

// StrictXattr, set to a false value on an extension-release file, lets its
// NAME differ from the image's name (systemd's relaxed check).
const StrictXattr = "user.extension-release.strict"

// XattrFS is implemented by trees that can read extended attributes; it is
// needed only for the StrictXattr escape.
type XattrFS interface {
	// Xattr returns the value of attribute attr of file name.
	Xattr(name, attr string) ([]byte, error)
}

// ReadExtensionRelease finds and reads the extension-release of the image
// called name of class c in fsys (the image's root), as systemd does:
// c.ReleasePath(name), or else the one extension-release file in
// c.ReleaseDir marked StrictXattr=0, which needs fsys to implement
// XattrFS. It returns the fields and the path read. The file is read as
// ReadReleaseFile reads (a regular file, at most MaxReleaseSize bytes).
func (c Class) ReadExtensionRelease(fsys fs.FS, name string) (Release, string, error) {
	file := c.ReleasePath(name)
	if _, err := fs.Lstat(fsys, file); err != nil {
		var rerr error
		if file, rerr = c.relaxedReleaseFile(fsys, name); rerr != nil {
			return nil, "", rerr
		}
	}
	rel, err := ReadReleaseFile(fsys, file)
	if err != nil {
		return nil, file, fmt.Errorf("/%s: %w", file, err)
	}
	return rel, file, nil
}

// relaxedReleaseFile finds the one extension-release file whose name does
// not match the image's but which is marked non-strict.
func (c Class) relaxedReleaseFile(fsys fs.FS, name string) (string, error) {
	missing := fmt.Errorf("no /%s: the image's name must match its extension-release file (rename the image, or mark the file with the xattr %s=0)", c.ReleasePath(name), StrictXattr)
	entries, err := fs.ReadDir(fsys, c.ReleaseDir)
	if err != nil {
		return "", missing
	}
	xfs, ok := fsys.(XattrFS)
	if !ok {
		return "", missing
	}
	var found []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ReleasePrefix) || !e.Type().IsRegular() {
			continue
		}
		p := path.Join(c.ReleaseDir, e.Name())
		if v, err := xfs.Xattr(p, StrictXattr); err == nil && isFalse(string(v)) {
			found = append(found, p)
		}
	}
	switch len(found) {
	case 0:
		return "", missing
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%d extension-release files are marked %s=0 (%s); keep only one", len(found), StrictXattr, strings.Join(found, ", "))
}

// isFalse tells whether v is one of the spellings of false systemd's
// parse_boolean() accepts (a trailing NUL or newline allowed).
func isFalse(v string) bool {
	b, err := parseBool(strings.TrimRight(v, "\x00\n"))
	return err == nil && !b
}

// DetectRelease finds the extension-release of an image whose name and
// class are not known yet (an image being inspected or pushed): there must
// be exactly one extension-release.NAME file, in the release directory of
// one class. It returns that class, NAME and the fields.
func DetectRelease(fsys fs.FS) (Class, string, Release, error) {
	type found struct {
		class Class
		name  string
	}
	var all []found
	var dirs []string
	for _, c := range classes {
		dirs = append(dirs, c.ReleaseDir)
		entries, err := fs.ReadDir(fsys, c.ReleaseDir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if n, ok := strings.CutPrefix(e.Name(), ReleasePrefix); ok && !e.IsDir() {
				all = append(all, found{c, n})
			}
		}
	}
	if len(all) != 1 {
		return Class{}, "", nil, fmt.Errorf("want exactly one extension-release.NAME in %s, found %d: not an extension image", strings.Join(dirs, " or "), len(all))
	}
	f := all[0]
	rel, err := ReadReleaseFile(fsys, f.class.ReleasePath(f.name))
	if err != nil {
		return Class{}, "", nil, err
	}
	return f.class, f.name, rel, nil
}
