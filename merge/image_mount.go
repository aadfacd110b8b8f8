package merge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/ddi"
	"github.com/sysext-bakery/bakery/sysext/formats"
)

// Opening images: a .raw image attached to a loop device and mounted as a
// detached mount, a directory image cloned, either read through an
// os.Root.

// openImage opens img under root for class c: a .raw image is attached
// to a read-only, auto-clearing loop device and mounted (read-only, nodev,
// and nosuid and noexec when c.NoExec) as a detached mount, never visible
// in any mount table; a directory image is cloned as a detached bind
// mount. When the policy requires signatures it also returns the sha256
// of a .raw image, computed from the same open file that is mounted
// (not for a DDI signed by a trusted certificate, which needs no
// digest). A DDI's root partition for the host's architecture is verified
// in userspace first (openDDI).
func openImage(root string, c sysext.Class, img Image, policy Policy) (Tree, string, error) {
	p := filepath.Join(root, img.Path)
	if img.Type == Directory {
		fd, err := unix.OpenTree(unix.AT_FDCWD, p, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_SYMLINK_NOFOLLOW)
		if err != nil {
			return nil, "", fmt.Errorf("clone directory image %s: %w", p, err)
		}
		if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &unix.MountAttr{Attr_set: mountAttrs(c)}); err != nil {
			unix.Close(fd)
			return nil, "", fmt.Errorf("make directory image %s read-only: %w", p, err)
		}
		t, err := newMountTree(fd)
		return t, "", err
	}
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, "", fmt.Errorf("open image: %w", err)
	}
	defer f.Close()
	digest := func() (string, error) {
		h, _, err := v1.SHA256(io.NewSectionReader(f, 0, math.MaxInt64)) // the open file that is mounted
		if err != nil {
			return "", fmt.Errorf("hash image %s: %w", p, err)
		}
		return h.String(), nil
	}
	if ddi.Detect(f) {
		t, sum, err := openDDI(f, c, img.Name, policy, digest)
		if err != nil {
			return nil, "", fmt.Errorf("image %s: %w", p, err)
		}
		return t, sum, nil
	}
	sum := ""
	if policy.RequireSignature {
		if sum, err = digest(); err != nil {
			return nil, "", err
		}
	}
	format, err := formats.Detect(f)
	if err != nil {
		return nil, "", fmt.Errorf("image %s: %w", p, err)
	}
	fd, err := mountImage(f, format.KernelType(), mountAttrs(c), 0, 0)
	if err != nil {
		return nil, "", fmt.Errorf("mount image %s (%s): %w", p, format.KernelType(), err)
	}
	t, err := newMountTree(fd)
	return t, sum, err
}

// openDDI verifies a DDI and mounts its root partition for the host's
// architecture: the hash tree is recomputed in userspace (the kernel may
// lack dm-verity) and the signature checked against the trusted
// certificates, then exactly the verified bytes are attached to a loop
// device by offset and size and mounted as the file system found there.
// The tree says how it was verified. With policy.RequireSignature, a DDI
// not signed by a trusted certificate is hashed (digest, returned) and,
// unless sync verified that digest for the extension called name, refused
// before the kernel reads its file system. The file is root's to write,
// as any image's: one rewritten between the check and the mount is not
// caught.
func openDDI(f *os.File, c sysext.Class, name string, policy Policy, digest func() (string, error)) (*ddiTree, string, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, "", err
	}
	im, err := ddi.Open(f, fi.Size(), sysext.HostArch().Name)
	if err != nil {
		return nil, "", err
	}
	v, err := im.Verify(context.Background(), policy.Certificates)
	if err != nil {
		return nil, "", err
	}
	sum := ""
	if policy.RequireSignature && v.Protection != ddi.Signed {
		if sum, err = digest(); err != nil {
			return nil, "", err
		}
		if !slices.Contains(policy.Verified[name], sum) {
			return nil, "", errors.New(unsignedDDI(v.Unsigned))
		}
	}
	inner, err := formats.Inner(v.Data)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", im.Root.Label, err)
	}
	_, off, size := v.Data.Outer()
	fd, err := mountImage(f, inner.KernelType(), mountAttrs(c), off, size)
	if err != nil {
		return nil, "", fmt.Errorf("mount %s (%s): %w", im.Root.Label, inner.KernelType(), err)
	}
	t, err := newMountTree(fd)
	if err != nil {
		return nil, "", err
	}
	return &ddiTree{mountTree: t, protection: v.Protection, unsigned: v.Unsigned}, sum, nil
}

// unsignedDDI is why a DDI that is not signed by a trusted certificate,
// for the reason unsigned, is refused with --require-signature.
func unsignedDDI(unsigned string) string {
	return "not signed: " + unsigned + "; with --require-signature a DDI must be signed by a certificate in /etc/verity.d (or the sync configuration's certificates), or installed by `bakery sync` from a verified signature"
}

// ddiTree is a mounted DDI, which says how it was verified.
type ddiTree struct {
	*mountTree
	protection ddi.Protection
	unsigned   string
}

// Verity implements VerifiedTree.
func (t *ddiTree) Verity() string { return string(t.protection) }

// Unsigned implements VerifiedTree.
func (t *ddiTree) Unsigned() string { return t.unsigned }

// mountAttrs are the mount attributes of an image of class c and of its
// merges: read-only and nodev, and nosuid and noexec when c.NoExec (as
// systemd's default_mount_flags).
func mountAttrs(c sysext.Class) uint64 {
	attr := uint64(unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NODEV)
	if c.NoExec {
		attr |= unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NOEXEC
	}
	return attr
}

// mountImage attaches size bytes of f from offset (all of it for size 0)
// to a read-only loop device and mounts it with the mount attributes attr
// (MOUNT_ATTR_RDONLY among them) as a detached mount, returning the
// mount's fd. The loop device clears itself when the last mount of it
// goes away.
func mountImage(f *os.File, fstype string, attr uint64, offset, size int64) (int, error) {
	loop, dev, err := attachLoop(f, offset, size)
	if err != nil {
		return -1, err
	}
	defer unix.Close(loop)
	return fsmount(fstype, []fsOption{{"source", dev}}, attr)
}

// attachLoop binds size bytes of f from offset (all of it for size 0) to
// a free loop device (read-only, auto-clear) and returns the open device
// and its path.
func attachLoop(f *os.File, offset, size int64) (int, string, error) {
	ctl, err := unix.Open("/dev/loop-control", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, "", fmt.Errorf("open /dev/loop-control (is the loop module loaded?): %w", err)
	}
	defer unix.Close(ctl)
	cfg := unix.LoopConfig{Fd: uint32(f.Fd())}
	cfg.Info.Flags = unix.LO_FLAGS_READ_ONLY | unix.LO_FLAGS_AUTOCLEAR
	cfg.Info.Offset, cfg.Info.Sizelimit = uint64(offset), uint64(size)
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

// fsOption is one string option of a file system being created.
type fsOption struct{ key, value string }

// fsmount creates a file system with the new mount API and returns it as a
// detached mount with the mount attributes attr (MOUNT_ATTR_*; the file
// system is created read-only when attr has MOUNT_ATTR_RDONLY). The
// options are set in order, and a key may repeat (overlayfs's lowerdir+);
// the kernel takes at most 256 bytes per value.
func fsmount(fstype string, opts []fsOption, attr uint64) (int, error) {
	fsfd, err := unix.Fsopen(fstype, unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("fsopen %s: %w", fstype, err)
	}
	defer unix.Close(fsfd)
	for _, o := range opts {
		if err := unix.FsconfigSetString(fsfd, o.key, o.value); err != nil {
			return -1, fmt.Errorf("%s option %s=%s: %w", fstype, o.key, o.value, err)
		}
	}
	if attr&unix.MOUNT_ATTR_RDONLY != 0 {
		if err := unix.FsconfigSetFlag(fsfd, "ro"); err != nil {
			return -1, fmt.Errorf("%s option ro: %w", fstype, err)
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return -1, fmt.Errorf("create %s file system: %w", fstype, err)
	}
	fd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, int(attr))
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
