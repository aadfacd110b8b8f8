package tree

import (
	"io"
	"io/fs"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// openHost opens the host file at pathz, a NUL-terminated path, for
// reading, not following a symlink there, and without blocking: a fifo
// put in a file's place opens at once and reads as empty, so the writer
// refuses it as a file that shrank instead of waiting for a writer (a
// device reads past its size and is refused as one that grew). Regular
// files ignore O_NONBLOCK. The file is read with plain
// system calls: an image writer opens every file of a tree once, and an
// os.File costs allocations, a finalizer and more system calls each time.
func openHost(pathz []byte) (io.ReadCloser, error) {
	cwd := unix.AT_FDCWD // a variable: the constant is negative
	for {
		r, _, errno := unix.Syscall6(unix.SYS_OPENAT, uintptr(cwd), uintptr(unsafe.Pointer(&pathz[0])),
			uintptr(unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC), 0, 0, 0)
		switch errno {
		case 0:
			return &hostFile{fd: int(r), pathz: pathz}, nil
		case unix.EINTR:
			continue
		}
		return nil, &fs.PathError{Op: "open", Path: string(pathz[:len(pathz)-1]), Err: errno}
	}
}

// hostFile reads an open host file.
type hostFile struct {
	fd    int
	pathz []byte // NUL-terminated
}

// path is the file's path, for messages.
func (f *hostFile) path() string { return string(f.pathz[:len(f.pathz)-1]) }

func (f *hostFile) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, err := unix.Read(f.fd, p)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return 0, &fs.PathError{Op: "read", Path: f.path(), Err: err}
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

func (f *hostFile) Close() error {
	if f.fd < 0 {
		return fs.ErrClosed
	}
	err := unix.Close(f.fd)
	f.fd = -1
	if err != nil {
		return &fs.PathError{Op: "close", Path: f.path(), Err: err}
	}
	return nil
}

// ReadAt reads len(p) bytes at off (io.ReaderAt).
func (f *hostFile) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		k, err := unix.Pread(f.fd, p[n:], off+int64(n))
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return n, &fs.PathError{Op: "read", Path: f.path(), Err: err}
		case k == 0:
			return n, io.EOF
		}
		n += k
	}
	return n, nil
}

// Seek sets the offset for the next Read (io.Seeker).
func (f *hostFile) Seek(offset int64, whence int) (int64, error) {
	off, err := unix.Seek(f.fd, offset, whence)
	if err != nil {
		return 0, &fs.PathError{Op: "seek", Path: f.path(), Err: err}
	}
	return off, nil
}

// copyBuffers hold the buffers of CopyTo's copies between file systems.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 128<<10); return &b }}

// CopyTo copies the next n bytes of f to dst at its offset, inside the
// kernel where the file systems allow it (copy_file_range), and returns
// how many it copied: fewer than n only with an error, io.EOF when f
// ends first.
func (f *hostFile) CopyTo(dst *os.File, n int64) (int64, error) {
	var done int64
	for done < n {
		k, err := unix.CopyFileRange(f.fd, nil, int(dst.Fd()), nil, int(min(n-done, 1<<30)), 0)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EXDEV || err == unix.EINVAL || err == unix.ENOSYS || err == unix.EOPNOTSUPP:
			// Through a buffer of our own: dst's ReadFrom, given a reader
			// that is not an *os.File, allocates one for every call.
			buf := copyBuffers.Get().(*[]byte)
			defer copyBuffers.Put(buf)
			m, err := io.CopyBuffer(struct{ io.Writer }{dst}, io.LimitReader(f, n-done), *buf)
			if err == nil && m < n-done {
				err = io.EOF
			}
			return done + m, err
		case err != nil:
			return done, &fs.PathError{Op: "copy_file_range", Path: f.path(), Err: err}
		case k == 0:
			return done, io.EOF
		}
		done += int64(k)
	}
	return done, nil
}
