package merge

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
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

// maxLayers is the most lower layers overlayfs stacks (OVL_MAX_STACK in
// the kernel's fs/overlayfs/params.h).
const maxLayers = 500

// checkLayers tells whether overlayfs stacks a merge of exts extension
// layers, the marker layer above them and, with host, the host's
// hierarchy below: it names the limit and the count when not.
func checkLayers(exts int, host bool) error {
	n := exts + 1
	if host {
		n++
	}
	if n <= maxLayers {
		return nil
	}
	return fmt.Errorf("%d extensions have content here, and with the marker layer (and the host's own files) that makes %d overlay layers; overlayfs stacks at most %d: merge at most %d extensions", exts, n, maxLayers, maxLayers-(n-exts))
}

// buildOverlay creates the read-only overlay of one hierarchy of class c
// as a detached mount: the marker layer on top (c.Marker holding
// c.MarkerList, which lists names, and dev), then the extension layers
// (highest first), then the host's hierarchy when it has one. at is a
// directory that the kernels without lowerdir+ may mount the overlay on
// in a private mount namespace (see overlayMounts).
func buildOverlay(layers []int, host int, names []string, c sysext.Class, at string) (int, error) {
	if err := checkLayers(len(layers), host >= 0); err != nil {
		return -1, err
	}
	meta, err := fsmount("tmpfs", []fsOption{{"source", "bakery"}, {"mode", "0755"}}, unix.MOUNT_ATTR_NODEV)
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
	lower := append([]int{meta}, layers...)
	if host >= 0 {
		lower = append(lower, host)
	}
	ov, err := mountOverlay(lower, mountAttrs(c), at)
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

// overlayMount is one way of mounting a read-only overlay of the open
// directories lower (top first) as a detached mount with the mount
// attributes attr; at is a directory it may mount on in a private mount
// namespace.
type overlayMount struct {
	name  string
	mount func(lower []int, attr uint64, at string) (int, error)
}

// overlayMounts are the ways tried in order. fsconfig takes at most 256
// bytes per value, about 15 layers in one lowerdir, so each layer gets its
// own lowerdir+ option (Linux 6.8+). A kernel that knows no lowerdir+
// refuses it with EINVAL (6.5 to 6.7 when it is set, older ones when the
// file system is created); then the layers go in one lowerdir option
// through mount(2), whose options may fill a page (4096 bytes), named
// relative to /proc/thread-self/fd so that 500 layers fit. Tests replace
// the list to run the fallback on a new kernel.
var overlayMounts = []overlayMount{
	{"lowerdir+", overlayLayerByLayer},
	{"mount(2) with lowerdir", overlayByMountData},
}

// mountOverlay mounts the overlay of lower (top first) the first way
// overlayMounts lists that the kernel knows.
func mountOverlay(lower []int, attr uint64, at string) (int, error) {
	var errs []string
	for _, m := range overlayMounts {
		fd, err := m.mount(lower, attr, at)
		if err == nil {
			return fd, nil
		}
		errs = append(errs, m.name+": "+err.Error())
		if !errors.Is(err, unix.EINVAL) {
			break
		}
	}
	return -1, fmt.Errorf("mount an overlay of %d layers: %s", len(lower), strings.Join(errs, "; "))
}

// overlayLayerByLayer mounts the overlay with the new mount API, a
// lowerdir+ option per layer.
func overlayLayerByLayer(lower []int, attr uint64, _ string) (int, error) {
	opts := []fsOption{{"source", "bakery"}}
	for _, fd := range lower {
		opts = append(opts, fsOption{"lowerdir+", fdPath(fd)})
	}
	return fsmount("overlay", opts, attr)
}

// pageSize bounds the options mount(2) reads.
const pageSize = 4096

// overlayByMountData mounts the overlay with mount(2) on at, in a private
// mount namespace whose working directory is /proc/thread-self/fd, so
// that a layer is named by its fd number alone, and returns a detached
// clone of it.
func overlayByMountData(lower []int, attr uint64, at string) (int, error) {
	names := make([]string, len(lower))
	for i, fd := range lower {
		names[i] = strconv.Itoa(fd)
	}
	data := "lowerdir=" + strings.Join(names, ":")
	if len(data) >= pageSize {
		return -1, fmt.Errorf("%d layers take %d bytes of options, more than mount(2) reads (%d)", len(lower), len(data), pageSize-1)
	}
	at, err := filepath.Abs(at)
	if err != nil {
		return -1, err
	}
	// The hierarchy may not exist yet (a host without /opt): swapIn
	// makes it for the merge, this makes it for the moment it mounts.
	if err := os.Mkdir(at, 0o755); err == nil {
		defer os.Remove(at)
	} else if !errors.Is(err, fs.ErrExist) {
		return -1, fmt.Errorf("make a mount point: %w", err)
	}
	var flags uintptr
	for a, f := range map[uint64]uintptr{unix.MOUNT_ATTR_RDONLY: unix.MS_RDONLY, unix.MOUNT_ATTR_NODEV: unix.MS_NODEV,
		unix.MOUNT_ATTR_NOSUID: unix.MS_NOSUID, unix.MOUNT_ATTR_NOEXEC: unix.MS_NOEXEC} {
		if attr&a != 0 {
			flags |= f
		}
	}
	return inPrivateNamespace(func() (int, error) {
		if err := unix.Chdir("/proc/thread-self/fd"); err != nil {
			return -1, fmt.Errorf("enter /proc/thread-self/fd: %w", err)
		}
		if err := unix.Mount("bakery", at, "overlay", flags, data); err != nil {
			return -1, err
		}
		// The clone is all that remains: the namespace may outlive this
		// call (a thread that cannot exit is parked with it), and its
		// overlay would keep the images' loop devices.
		fd, err := unix.OpenTree(unix.AT_FDCWD, at, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
		if uerr := unix.Unmount(at, unix.MNT_DETACH); uerr != nil && err == nil {
			unix.Close(fd)
			err = uerr
		}
		if err != nil {
			return -1, fmt.Errorf("clone the overlay: %w", err)
		}
		return fd, nil
	})
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
