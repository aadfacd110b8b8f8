package merge

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sysext-bakery/bakery/sysext"
)

// Putting merges in place and taking them away: telling a merge of a
// class from anything else mounted on a hierarchy, swapping a new merge in
// and unmerging.

// moveMountBeneath is MOVE_MOUNT_BENEATH (Linux 6.5), not yet in x/sys.
const moveMountBeneath = 0x200

// isMerged tells whether dir is the root of a merge of class c made by
// bakery or systemd: a mount whose c.Marker/dev names its own device.
func isMerged(dir string, c sysext.Class) (bool, error) {
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
	data, err := os.ReadFile(filepath.Join(dir, c.Marker, "dev"))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read merge marker: %w", err)
	}
	return strings.TrimSpace(string(data)) == fmt.Sprintf("%d:%d", stx.Dev_major, stx.Dev_minor), nil
}

// unmergeDir unmounts every merge of class c stacked on dir (and nothing
// else).
func unmergeDir(dir string, c sysext.Class) error {
	for {
		merged, err := isMerged(dir, c)
		if err != nil || !merged {
			return err
		}
		if err := unix.Unmount(dir, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil {
			return fmt.Errorf("unmount %s: %w", dir, err)
		}
	}
}

// swapIn puts the detached overlay ov on dir. When dir is already merged
// (a merge of class c), the new overlay is mounted beneath the old one and
// the old one is then detached, so that dir always shows one whole merge;
// kernels before 6.5 (no MOVE_MOUNT_BENEATH) stack it on top instead,
// keeping the old merge hidden below until unmerge.
func swapIn(ov int, dir string, c sysext.Class) error {
	merged, err := isMerged(dir, c)
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

// mergeTime is when dir was merged: when its marker (of class c) was
// written.
func mergeTime(dir string, c sysext.Class) time.Time {
	info, err := os.Stat(filepath.Join(dir, c.Marker))
	if err != nil {
		return time.Time{}
	}
	return info.ModTime()
}
