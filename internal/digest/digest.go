// Package digest computes the sha256 digest of a file in the one spelling
// bakery uses everywhere: go-containerregistry's v1.Hash ("sha256:HEX";
// its Hex for SHA256SUMS). Readers are hashed with v1.SHA256 itself.
package digest

import (
	"fmt"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// File returns the sha256 digest and size of the regular file at path.
// It refuses anything else (a FIFO would block the read, a device never
// end it) without reading it.
func File(path string) (v1.Hash, int64, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return v1.Hash{}, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return v1.Hash{}, 0, err
	}
	if !fi.Mode().IsRegular() {
		return v1.Hash{}, 0, fmt.Errorf("hash %s: not a regular file (%s)", path, fi.Mode().Type())
	}
	h, n, err := v1.SHA256(f)
	if err != nil {
		return v1.Hash{}, 0, fmt.Errorf("hash %s: %w", path, err)
	}
	return h, n, nil
}
