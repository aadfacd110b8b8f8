// Package hostxattr reads the extended attributes of host files, for the
// image writers that copy them.
package hostxattr

import (
	"errors"
	"io/fs"
	"strings"

	"golang.org/x/sys/unix"
)

// Read returns every xattr of path (not following a symlink) by full name,
// or nil when it has none or its file system has no xattrs. An xattr
// removed between listing and reading is left out.
func Read(path string) (map[string][]byte, error) {
	names, err := sized(func(buf []byte) (int, error) { return unix.Llistxattr(path, buf) })
	if errors.Is(err, unix.ENOTSUP) {
		return nil, nil
	}
	if err != nil {
		return nil, &fs.PathError{Op: "listxattr", Path: path, Err: err}
	}
	if len(names) == 0 {
		return nil, nil
	}
	var xattrs map[string][]byte
	for _, name := range strings.Split(string(names), "\x00") {
		if name == "" {
			continue
		}
		value, err := sized(func(buf []byte) (int, error) { return unix.Lgetxattr(path, name, buf) })
		if errors.Is(err, unix.ENODATA) {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "getxattr " + name, Path: path, Err: err}
		}
		if xattrs == nil {
			xattrs = map[string][]byte{}
		}
		xattrs[name] = value
	}
	return xattrs, nil
}

// sized runs a size-probing xattr call: first for the size, then with a
// buffer of that size, again if the data grew in between.
func sized(call func([]byte) (int, error)) ([]byte, error) {
	for {
		n, err := call(nil)
		if err != nil || n == 0 {
			return nil, err
		}
		buf := make([]byte, n)
		n, err = call(buf)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}
