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

// Compressions are zstd (the default), gzip, xz, lz4 and none.
func (Mksquashfs) Compressions() []sysext.Compression {
	return []sysext.Compression{sysext.Zstd, sysext.Gzip, sysext.Xz, sysext.Lz4, sysext.None}
}

// Check refuses what mksquashfs's command line cannot say (see
// MksquashfsArgs).
func (Mksquashfs) Check(opts sysext.BuildOptions) error {
	_, err := MksquashfsArgs("", "", opts)
	return err
}

// Build runs mksquashfs with reproducible settings: fixed times, sorted
// entries, no appending, and every owner root when opts.AllRoot is set.
func (Mksquashfs) Build(ctx context.Context, srcDir, dst string, opts sysext.BuildOptions) error {
	args, err := MksquashfsArgs(srcDir, dst, opts)
	if err != nil {
		return err
	}
	return run(ctx, "mksquashfs", args)
}

// MksquashfsArgs returns the mksquashfs command line for opts, refusing a
// level mksquashfs refuses: zstd takes 1..22, gzip 1..9, the others none.
func MksquashfsArgs(srcDir, dst string, opts sysext.BuildOptions) ([]string, error) {
	epoch := strconv.FormatInt(opts.Epoch, 10)
	args := []string{srcDir, dst, "-noappend", "-reproducible", "-quiet", "-no-progress",
		"-mkfs-time", epoch, "-all-time", epoch}
	if opts.AllRoot {
		args = append(args, "-all-root")
	}
	level := func(c sysext.Compression, highest int) error {
		if opts.Level < 0 || opts.Level > highest {
			return fmt.Errorf("mksquashfs: %s level %d: use 1..%d", c, opts.Level, highest)
		}
		if opts.Level != 0 {
			args = append(args, "-Xcompression-level", strconv.Itoa(opts.Level))
		}
		return nil
	}
	switch c := opts.Compression; c {
	case "", sysext.Zstd:
		args = append(args, "-comp", "zstd")
		if err := level(sysext.Zstd, 22); err != nil {
			return nil, err
		}
	case sysext.Gzip:
		args = append(args, "-comp", "gzip")
		if err := level(sysext.Gzip, 9); err != nil {
			return nil, err
		}
	case sysext.Xz, sysext.Lz4, sysext.None:
		if opts.Level != 0 {
			return nil, fmt.Errorf("mksquashfs: %s takes no --level", c)
		}
		if c == sysext.None {
			args = append(args, "-noI", "-noD", "-noF", "-noX")
		} else {
			args = append(args, "-comp", string(c))
		}
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

// Compressions are none (the default) and lz4 (lz4hc).
func (MkfsErofs) Compressions() []sysext.Compression {
	return []sysext.Compression{sysext.None, sysext.Lz4}
}

// Check refuses what mkfs.erofs's command line cannot say (see
// MkfsErofsArgs).
func (MkfsErofs) Check(opts sysext.BuildOptions) error {
	_, err := MkfsErofsArgs("", "", opts)
	return err
}

// Build runs mkfs.erofs with a fixed timestamp and UUID.
func (MkfsErofs) Build(ctx context.Context, srcDir, dst string, opts sysext.BuildOptions) error {
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
		if opts.Level != 0 {
			return nil, fmt.Errorf("mkfs.erofs: uncompressed erofs takes no --level")
		}
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
