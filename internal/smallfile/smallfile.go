// Package smallfile reads the small files bakery is configured with (keys,
// certificates, sync.yaml, cached documents) whole, bounded: a path that
// names a fifo, a device or a huge file gets an error naming it, never a
// read that blocks or fills memory.
package smallfile

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/sysext-bakery/bakery/internal/filetype"
)

// Read reads the regular file at path, of at most limit bytes. It opens
// the file without blocking (a fifo is refused, not waited on), follows
// symbolic links, and names path and the limit in its errors.
func Read(path string, limit int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is %s, not a regular file", path, filetype.Name(fi.Mode()))
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > limit { // grew while read
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return data, nil
}
