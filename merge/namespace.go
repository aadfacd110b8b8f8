package merge

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// inPrivateNamespace runs fn on an OS thread of its own that has left the
// process's mount namespace for a private copy; the thread ends with fn,
// and its namespace with it. File descriptors fn opens remain valid.
func inPrivateNamespace(fn func() (int, error)) (int, error) {
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with this goroutine
		if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_FS); err != nil {
			ch <- result{-1, fmt.Errorf("unshare mount namespace: %w", err)}
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			ch <- result{-1, fmt.Errorf("make mounts private: %w", err)}
			return
		}
		fd, err := fn()
		ch <- result{fd, err}
	}()
	r := <-ch
	return r.fd, r.err
}
