package merge

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sysext-bakery/bakery/sysext"
)

// Building a merged hierarchy aside: the layers of the images and of the
// host, the marker, and the read-only overlay of them all as a detached
// mount.

// layer opens hierarchy (e.g. "usr") inside the image for use as an
// overlay layer; ok is false when the image has no such directory or it is
// empty, so that the image is left out of that hierarchy.
func (t *mountTree) layer(hierarchy string) (fd int, ok bool, err error) {
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT}
	fd, err = unix.Openat2(t.fd, hierarchy, &how)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return -1, false, nil
	}
	if err != nil {
		return -1, false, fmt.Errorf("open /%s in image: %w", hierarchy, err)
	}
	if empty, err := dirEmpty(fdPath(fd)); err != nil || empty {
		unix.Close(fd)
		return -1, false, err
	}
	return fd, true, nil
}

// dirEmpty tells whether directory p has no entries.
func dirEmpty(p string) (bool, error) {
	d, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer d.Close()
	_, err = d.Readdirnames(1)
	if err == io.EOF {
		return true, nil
	}
	return false, err
}

// hostLayer opens the host's own hierarchy dir under the root, below any
// merge of class c on it, as a detached clone; ok is false when it is
// missing or empty, since systemd leaves it out then. The merges on top
// are looked through in a private mount namespace, so the host's mounts
// are untouched.
func hostLayer(dir string, c sysext.Class) (fd int, ok bool, err error) {
	merged, err := isMerged(dir, c)
	if err != nil {
		return -1, false, err
	}
	clone := func() (int, error) {
		return unix.OpenTree(unix.AT_FDCWD, dir, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	}
	if merged {
		fd, err = inPrivateNamespace(func() (int, error) {
			if err := unmergeDir(dir, c); err != nil {
				return -1, err
			}
			return clone()
		})
	} else {
		fd, err = clone()
	}
	if errors.Is(err, unix.ENOENT) {
		return -1, false, nil
	}
	if err != nil {
		return -1, false, fmt.Errorf("open host hierarchy %s: %w", dir, err)
	}
	if empty, err := dirEmpty(fdPath(fd)); err != nil || empty {
		unix.Close(fd)
		return -1, false, err
	}
	return fd, true, nil
}

// buildOverlay creates the read-only overlay of one hierarchy of class c
// as a detached mount: the marker layer on top (c.Marker holding
// c.MarkerList, which lists names, and dev), then the extension layers
// (highest first), then the host's hierarchy when it has one.
func buildOverlay(layers []int, host int, names []string, c sysext.Class) (int, error) {
	meta, err := fsmount("tmpfs", map[string]string{"source": "bakery", "mode": "0755"}, unix.MOUNT_ATTR_NODEV)
	if err != nil {
		return -1, err
	}
	defer unix.Close(meta)
	if err := unix.Mkdirat(meta, c.Marker, 0o755); err != nil {
		return -1, fmt.Errorf("create %s: %w", c.Marker, err)
	}
	var list bytes.Buffer
	for _, n := range names {
		list.WriteString(n + "\n")
	}
	if err := writeAt(meta, path.Join(c.Marker, c.MarkerList), list.Bytes()); err != nil {
		return -1, err
	}
	lower := []string{fdPath(meta)}
	for _, l := range layers {
		lower = append(lower, fdPath(l))
	}
	if host >= 0 {
		lower = append(lower, fdPath(host))
	}
	ov, err := fsmount("overlay", map[string]string{"source": "bakery", "lowerdir": strings.Join(lower, ":")}, mountAttrs(c))
	if err != nil {
		return -1, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(ov, &st); err != nil {
		unix.Close(ov)
		return -1, fmt.Errorf("stat overlay: %w", err)
	}
	dev := fmt.Sprintf("%d:%d\n", unix.Major(st.Dev), unix.Minor(st.Dev))
	if err := writeAt(meta, path.Join(c.Marker, "dev"), []byte(dev)); err != nil {
		unix.Close(ov)
		return -1, err
	}
	return ov, nil
}

// writeAt writes a new file below the directory fd dir.
func writeAt(dir int, name string, data []byte) error {
	fd, err := unix.Openat(dir, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o644)
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
