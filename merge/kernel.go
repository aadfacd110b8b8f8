package merge

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sysext-bakery/bakery/sysext/formats"
)

// markerDir is the metadata directory systemd-sysext puts at the top of
// every merged hierarchy; its files "extensions" and "dev" say what is
// merged and mark the mount as a merge (not a copy of one).
const markerDir = ".systemd-sysext"

// moveMountBeneath is MOVE_MOUNT_BENEATH (Linux 6.5), not yet in x/sys.
const moveMountBeneath = 0x200

// kernelOpener opens images under a root directory through the kernel:
// .raw images are attached to read-only, auto-clearing loop devices and
// mounted as detached mounts (never visible in any mount table), and
// directory images are cloned as detached bind mounts.
type kernelOpener struct{ root string }

// Open implements Opener.
func (k kernelOpener) Open(img Image, digest bool) (Tree, string, error) {
	p := filepath.Join(k.root, img.Path)
	if img.Type == Directory {
		fd, err := unix.OpenTree(unix.AT_FDCWD, p, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_SYMLINK_NOFOLLOW)
		if err != nil {
			return nil, "", fmt.Errorf("clone directory image %s: %w", p, err)
		}
		t, err := newMountTree(fd)
		return t, "", err
	}
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, "", fmt.Errorf("open image: %w", err)
	}
	defer f.Close()
	sum := ""
	if digest {
		h, _, err := v1.SHA256(f) // the open file that is mounted next
		if err != nil {
			return nil, "", fmt.Errorf("hash image %s: %w", p, err)
		}
		sum = h.String()
	}
	fstype, err := imageFSType(f)
	if err != nil {
		return nil, "", fmt.Errorf("image %s: %w", p, err)
	}
	fd, err := mountImage(f, fstype)
	if err != nil {
		return nil, "", fmt.Errorf("mount image %s (%s): %w", p, fstype, err)
	}
	t, err := newMountTree(fd)
	return t, sum, err
}

// imageFSType tells the kernel file system type of a .raw image.
func imageFSType(f *os.File) (string, error) {
	gpt := make([]byte, 8)
	if _, err := f.ReadAt(gpt, 512); err == nil && string(gpt) == "EFI PART" {
		return "", errors.New("a GPT disk image (DDI): bakery merge mounts squashfs and erofs images only; merge DDIs with systemd-sysext")
	}
	format, err := formats.Detect(f)
	if err != nil {
		return "", err
	}
	return format.KernelType(), nil
}

// mountImage attaches f to a read-only loop device and mounts it read-only
// and nodev as a detached mount, returning the mount's fd. The loop device
// clears itself when the last mount of it goes away.
func mountImage(f *os.File, fstype string) (int, error) {
	loop, dev, err := attachLoop(f)
	if err != nil {
		return -1, err
	}
	defer unix.Close(loop)
	return fsmount(fstype, map[string]string{"source": dev}, true)
}

// attachLoop binds f to a free loop device (read-only, auto-clear) and
// returns the open device and its path.
func attachLoop(f *os.File) (int, string, error) {
	ctl, err := unix.Open("/dev/loop-control", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, "", fmt.Errorf("open /dev/loop-control (is the loop module loaded?): %w", err)
	}
	defer unix.Close(ctl)
	cfg := unix.LoopConfig{Fd: uint32(f.Fd())}
	cfg.Info.Flags = unix.LO_FLAGS_READ_ONLY | unix.LO_FLAGS_AUTOCLEAR
	copy(cfg.Info.File_name[:len(cfg.Info.File_name)-1], f.Name())
	// Another process may take the free device between the two calls.
	for range 16 {
		n, err := unix.IoctlRetInt(ctl, unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return -1, "", fmt.Errorf("find a free loop device: %w", err)
		}
		dev := fmt.Sprintf("/dev/loop%d", n)
		fd, err := unix.Open(dev, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, "", fmt.Errorf("open %s: %w", dev, err)
		}
		err = unix.IoctlLoopConfigure(fd, &cfg)
		if err == nil {
			return fd, dev, nil
		}
		unix.Close(fd)
		if !errors.Is(err, unix.EBUSY) {
			return -1, "", fmt.Errorf("configure %s: %w", dev, err)
		}
	}
	return -1, "", errors.New("no free loop device: every one was taken while we tried")
}

// fsmount creates a file system with the new mount API and returns it as a
// detached mount, nodev (and read-only when ro).
func fsmount(fstype string, opts map[string]string, ro bool) (int, error) {
	fsfd, err := unix.Fsopen(fstype, unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("fsopen %s: %w", fstype, err)
	}
	defer unix.Close(fsfd)
	for _, k := range []string{"source", "mode", "lowerdir"} {
		if v, ok := opts[k]; ok {
			if err := unix.FsconfigSetString(fsfd, k, v); err != nil {
				return -1, fmt.Errorf("%s option %s=%s: %w", fstype, k, v, err)
			}
		}
	}
	attr := unix.MOUNT_ATTR_NODEV
	if ro {
		if err := unix.FsconfigSetFlag(fsfd, "ro"); err != nil {
			return -1, fmt.Errorf("%s option ro: %w", fstype, err)
		}
		attr |= unix.MOUNT_ATTR_RDONLY
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return -1, fmt.Errorf("create %s file system: %w", fstype, err)
	}
	fd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, attr)
	if err != nil {
		return -1, fmt.Errorf("fsmount %s: %w", fstype, err)
	}
	return fd, nil
}

// fdPath names an open file for path lookups by the kernel.
func fdPath(fd int) string { return fmt.Sprintf("/proc/self/fd/%d", fd) }

// mountTree is an image's detached mount, readable through an os.Root so
// that symlinks inside the image cannot point out of it.
type mountTree struct {
	fd   int
	root *os.Root
	rootFS
}

// rootFS is what an os.Root's file system offers: Stat and ReadLink must
// be its own, or fs.Stat would open a file (a FIFO blocks) to stat it.
type rootFS interface {
	fs.StatFS
	fs.ReadLinkFS
	fs.ReadDirFS
	fs.ReadFileFS
}

func newMountTree(fd int) (*mountTree, error) {
	root, err := os.OpenRoot(fdPath(fd))
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("open mounted image: %w", err)
	}
	rfs, ok := root.FS().(rootFS)
	if !ok {
		root.Close()
		unix.Close(fd)
		return nil, fmt.Errorf("open mounted image: os.Root's file system lacks Stat or ReadLink")
	}
	return &mountTree{fd: fd, root: root, rootFS: rfs}, nil
}

// Close implements Tree.
func (t *mountTree) Close() error {
	err := t.root.Close()
	if cerr := unix.Close(t.fd); err == nil {
		err = cerr
	}
	return err
}

// Xattr implements sysext.XattrFS.
func (t *mountTree) Xattr(name, attr string) ([]byte, error) {
	f, err := t.root.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, 256)
	n, err := unix.Fgetxattr(int(f.Fd()), attr, buf)
	if err != nil {
		return nil, fmt.Errorf("read xattr %s of %s: %w", attr, name, err)
	}
	return buf[:n], nil
}

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

// isMerged tells whether dir is the root of a merge made by bakery or
// systemd-sysext: a mount whose .systemd-sysext/dev names its own device.
func isMerged(dir string) (bool, error) {
	var stx unix.Statx_t
	err := unix.Statx(unix.AT_FDCWD, dir, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BASIC_STATS, &stx)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat %s: %w", dir, err)
	}
	if stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 && stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT == 0 {
		return false, nil
	}
	data, err := os.ReadFile(filepath.Join(dir, markerDir, "dev"))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read merge marker: %w", err)
	}
	return strings.TrimSpace(string(data)) == fmt.Sprintf("%d:%d", stx.Dev_major, stx.Dev_minor), nil
}

// hostLayer opens the host's own hierarchy under the root, below any merge
// on it, as a detached clone; ok is false when it is missing or empty,
// since systemd leaves it out then. The merges on top are looked through
// in a private mount namespace, so the host's mounts are untouched.
func hostLayer(dir string) (fd int, ok bool, err error) {
	merged, err := isMerged(dir)
	if err != nil {
		return -1, false, err
	}
	clone := func() (int, error) {
		return unix.OpenTree(unix.AT_FDCWD, dir, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	}
	if merged {
		fd, err = inPrivateNamespace(func() (int, error) {
			if err := unmergeDir(dir); err != nil {
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

// unmergeDir unmounts every merge stacked on dir (and nothing else).
func unmergeDir(dir string) error {
	for {
		merged, err := isMerged(dir)
		if err != nil || !merged {
			return err
		}
		if err := unix.Unmount(dir, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil {
			return fmt.Errorf("unmount %s: %w", dir, err)
		}
	}
}

// buildOverlay creates the read-only overlay of one hierarchy as a detached
// mount: the marker layer on top, then the extension layers (highest
// first), then the host's hierarchy when it has one.
func buildOverlay(layers []int, host int, names []string) (int, error) {
	meta, err := fsmount("tmpfs", map[string]string{"source": "bakery", "mode": "0755"}, false)
	if err != nil {
		return -1, err
	}
	defer unix.Close(meta)
	if err := unix.Mkdirat(meta, markerDir, 0o755); err != nil {
		return -1, fmt.Errorf("create %s: %w", markerDir, err)
	}
	var list bytes.Buffer
	for _, n := range names {
		list.WriteString(n + "\n")
	}
	if err := writeAt(meta, markerDir+"/extensions", list.Bytes()); err != nil {
		return -1, err
	}
	lower := []string{fdPath(meta)}
	for _, l := range layers {
		lower = append(lower, fdPath(l))
	}
	if host >= 0 {
		lower = append(lower, fdPath(host))
	}
	ov, err := fsmount("overlay", map[string]string{"source": "bakery", "lowerdir": strings.Join(lower, ":")}, true)
	if err != nil {
		return -1, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(ov, &st); err != nil {
		unix.Close(ov)
		return -1, fmt.Errorf("stat overlay: %w", err)
	}
	dev := fmt.Sprintf("%d:%d\n", unix.Major(st.Dev), unix.Minor(st.Dev))
	if err := writeAt(meta, markerDir+"/dev", []byte(dev)); err != nil {
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

// swapIn puts the detached overlay ov on dir. When dir is already merged,
// the new overlay is mounted beneath the old one and the old one is then
// detached, so that dir always shows one whole merge; kernels before 6.5
// (no MOVE_MOUNT_BENEATH) stack it on top instead, keeping the old merge
// hidden below until unmerge.
func swapIn(ov int, dir string) error {
	merged, err := isMerged(dir)
	if err != nil {
		return err
	}
	if !merged {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create hierarchy %s: %w", dir, err)
		}
		if err := unix.MoveMount(ov, "", unix.AT_FDCWD, dir, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
			return fmt.Errorf("mount merged %s: %w", dir, err)
		}
		return nil
	}
	err = unix.MoveMount(ov, "", unix.AT_FDCWD, dir, unix.MOVE_MOUNT_F_EMPTY_PATH|moveMountBeneath)
	if errors.Is(err, unix.EINVAL) {
		if err := unix.MoveMount(ov, "", unix.AT_FDCWD, dir, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
			return fmt.Errorf("mount merged %s over the previous merge: %w", dir, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("mount merged %s beneath the previous merge: %w", dir, err)
	}
	if err := unix.Unmount(dir, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil {
		return fmt.Errorf("detach the previous merge of %s: %w", dir, err)
	}
	return nil
}

// mergeTime is when dir was merged: when its marker was written.
func mergeTime(dir string) time.Time {
	info, err := os.Stat(filepath.Join(dir, markerDir))
	if err != nil {
		return time.Time{}
	}
	return info.ModTime()
}
