// Package atomicfile writes files so that readers see either the old
// content or the whole new content, never a partial file.
package atomicfile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// File is a temporary file beside its destination that becomes the
// destination only on Commit. While it is open, it is synced in the
// background whenever another 16 MiB have been written to it, through this
// File or by a program that opened it by name (an image builder), so that
// Commit's sync has little left to do however large the file.
type File struct {
	*os.File
	dst   string
	done  bool
	flush *flusher
}

// tempInfix is what every temporary file's name holds after the
// destination's base name: ".NAME.tmp-RANDOM".
const tempInfix = ".tmp-"

// Create opens a temporary file in dst's directory, creating the directory
// (mode 0755) when it is missing. Commit or Abort must follow: they also
// stop the background syncing. The temporary file is locked (flock) while
// it is open, so that RemoveStale can tell one left by a killed process
// from one being written.
func Create(dst string) (*File, error) {
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(dst)+tempInfix+"*")
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	af := &File{File: f, dst: dst}
	size := func() (int64, error) {
		fi, err := f.Stat()
		if err != nil {
			return 0, err
		}
		return fi.Size(), nil
	}
	af.flush = startFlusher(size, f.Sync, flushChunk, flushPoll)
	return af, nil
}

// haltFlush stops background flushing and returns its error, if any.
func (f *File) haltFlush() error {
	if f.flush == nil {
		return nil
	}
	err := f.flush.halt()
	f.flush = nil
	if err != nil {
		return fmt.Errorf("sync %s in the background: %w", f.Name(), err)
	}
	return nil
}

// Commit syncs the file, sets its mode and renames it over the destination,
// then syncs the directory so the rename survives a crash.
func (f *File) Commit(mode os.FileMode) error {
	if f.done {
		return fmt.Errorf("atomicfile: %s already committed or aborted", f.dst)
	}
	f.done = true
	err := f.haltFlush()
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), f.dst)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", f.dst, err)
	}
	return SyncDir(filepath.Dir(f.dst))
}

// Abort removes the temporary file; it is a no-op after Commit, so it can
// be deferred.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.haltFlush()
	f.Close()
	os.Remove(f.Name())
}

// WriteFile atomically replaces dst with data.
func WriteFile(dst string, data []byte, mode os.FileMode) error {
	f, err := Create(dst)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	return f.Commit(mode)
}

// Copy atomically replaces dst with everything read from r.
func Copy(dst string, r io.Reader, mode os.FileMode) error {
	f, err := Create(dst)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := io.Copy(f, r); err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	return f.Commit(mode)
}

// SyncDir flushes a directory's entries to disk.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// RemoveStale removes the temporary files that writers of dst killed
// before Commit or Abort left behind: those of Create's naming that no
// open File holds locked. It returns the paths it removed.
func RemoveStale(dst string) []string {
	return removeStale(filepath.Dir(dst), "."+filepath.Base(dst)+tempInfix)
}

// RemoveStaleIn does what RemoveStale does for every destination in dir.
func RemoveStaleIn(dir string) []string {
	return removeStale(dir, ".")
}

// removeStale removes the unlocked temporary files in dir whose names
// start with prefix and hold tempInfix.
func removeStale(dir, prefix string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range entries {
		n := e.Name()
		if !e.Type().IsRegular() || !strings.HasPrefix(n, prefix) || !strings.Contains(n, tempInfix) {
			continue
		}
		p := filepath.Join(dir, n)
		if removeIfUnlocked(p) {
			removed = append(removed, p)
		}
	}
	return removed
}

// removeIfUnlocked removes the regular file p when no one holds its lock.
func removeIfUnlocked(p string) bool {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return false
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return false // a live writer holds it, or locks do not work here
	}
	return os.Remove(p) == nil
}
