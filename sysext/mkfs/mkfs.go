// Package mkfs builds extension images with the external mksquashfs and
// mkfs.erofs tools, behind the same sysext.Builder interface as the native
// writers; they are the reference builders in tests and benchmarks.
package mkfs

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	"github.com/sysext-bakery/bakery/sysext"
)

// Mksquashfs builds squashfs images with squashfs-tools' mksquashfs.
type Mksquashfs struct{}

// Name is "mksquashfs".
func (Mksquashfs) Name() string { return "mksquashfs" }

// Build runs mksquashfs with reproducible settings: fixed times, sorted
// entries, no appending, and every owner root when opts.AllRoot is set.
func (Mksquashfs) Build(ctx context.Context, srcDir, dst string, opts sysext.BuildOptions) error {
	if opts.Format != "" && opts.Format != sysext.Squashfs {
		return fmt.Errorf("mksquashfs writes squashfs, not %s: use --builder mkfs.erofs or native", opts.Format)
	}
	args, err := MksquashfsArgs(srcDir, dst, opts)
	if err != nil {
		return err
	}
	return run(ctx, "mksquashfs", args)
}

// MksquashfsArgs returns the mksquashfs command line for opts.
func MksquashfsArgs(srcDir, dst string, opts sysext.BuildOptions) ([]string, error) {
	epoch := strconv.FormatInt(opts.Epoch, 10)
	args := []string{srcDir, dst, "-noappend", "-reproducible", "-quiet", "-no-progress",
		"-mkfs-time", epoch, "-all-time", epoch}
	if opts.AllRoot {
		args = append(args, "-all-root")
	}
	switch c := opts.Compression; c {
	case "", sysext.Zstd:
		args = append(args, "-comp", "zstd")
		if opts.Level != 0 {
			args = append(args, "-Xcompression-level", strconv.Itoa(opts.Level))
		}
	case sysext.Gzip:
		args = append(args, "-comp", "gzip")
		if opts.Level != 0 {
			args = append(args, "-Xcompression-level", strconv.Itoa(opts.Level))
		}
	case sysext.Xz, sysext.Lz4:
		if opts.Level != 0 {
			return nil, fmt.Errorf("mksquashfs: %s takes no --level", c)
		}
		args = append(args, "-comp", string(c))
	case sysext.None:
		args = append(args, "-noI", "-noD", "-noF", "-noX")
	default:
		return nil, fmt.Errorf("mksquashfs: unknown compression %q (use zstd, gzip, xz, lz4 or none)", c)
	}
	return args, nil
}

// MkfsErofs builds erofs images with erofs-utils' mkfs.erofs.
type MkfsErofs struct{}

// Name is "mkfs.erofs".
func (MkfsErofs) Name() string { return "mkfs.erofs" }

// erofsUUID is sysext.ErofsUUID as mkfs.erofs -U spells it.
var erofsUUID = fmt.Sprintf("%x-%x-%x-%x-%x", sysext.ErofsUUID[0:4], sysext.ErofsUUID[4:6], sysext.ErofsUUID[6:8], sysext.ErofsUUID[8:10], sysext.ErofsUUID[10:16])

// Build runs mkfs.erofs with a fixed timestamp and UUID.
func (MkfsErofs) Build(ctx context.Context, srcDir, dst string, opts sysext.BuildOptions) error {
	if opts.Format != "" && opts.Format != sysext.Erofs {
		return fmt.Errorf("mkfs.erofs writes erofs, not %s: use --builder mksquashfs or native", opts.Format)
	}
	args, err := MkfsErofsArgs(srcDir, dst, opts)
	if err != nil {
		return err
	}
	return run(ctx, "mkfs.erofs", args)
}

// MkfsErofsArgs returns the mkfs.erofs command line for opts.
func MkfsErofsArgs(srcDir, dst string, opts sysext.BuildOptions) ([]string, error) {
	args := []string{"--quiet", "-T" + strconv.FormatInt(opts.Epoch, 10), "-U" + erofsUUID}
	if opts.AllRoot {
		args = append(args, "--all-root")
	}
	switch c := opts.Compression; c {
	case "", sysext.None:
	case sysext.Lz4:
		z := "-zlz4hc"
		if opts.Level != 0 {
			z += "," + strconv.Itoa(opts.Level)
		}
		args = append(args, z)
	default:
		return nil, fmt.Errorf("mkfs.erofs: compression %q is not supported (use lz4 or none)", c)
	}
	return append(args, dst, srcDir), nil
}

// run executes a builder and folds its stderr into the error.
func run(ctx context.Context, tool string, args []string) error {
	if _, err := exec.LookPath(tool); err != nil {
		return fmt.Errorf("%s is not installed (apt-get install %s), or use --builder native", tool, packageOf(tool))
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, tool, args...)
	cmd.Stderr = &stderr
	for _, kv := range cmd.Environ() { // times come from the flags only
		if !strings.HasPrefix(kv, "SOURCE_DATE_EPOCH=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", tool, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// packageOf names the Debian package that ships tool.
func packageOf(tool string) string {
	if tool == "mksquashfs" {
		return "squashfs-tools"
	}
	return "erofs-utils"
}
