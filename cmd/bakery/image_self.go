package main

import (
	"context"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v3"

	"github.com/sysext-bakery/bakery/bakery"
	"github.com/sysext-bakery/bakery/internal/sha256sums"
	"github.com/sysext-bakery/bakery/release"
	"github.com/sysext-bakery/bakery/selfimage"
	"github.com/sysext-bakery/bakery/sysext"
)

func imageSelfCommand() *cli.Command {
	return &cli.Command{
		Name:  "self",
		Usage: "write bakery itself as a system extension, bakery-VERSION-ARCH.raw, for Ignition to install",
		Description: `The image holds a statically linked bakery for --arch in /usr/bin, the units
bakery-sync.service and bakery-sync.timer, and an extension-release for any OS
with EXTENSION_RELOAD_MANAGER=1, so that systemd sees the units once
systemd-sysext has merged it. bakery-merge.service stays out: it replaces
systemd-sysext.service, which merges this very image.

The binary is this bakery when it is static and for --arch; otherwise bakery
is built with CGO_ENABLED=0 for --arch from the checkout at --source (default:
the one holding the current directory), or --binary names one. The same
binary and epoch give the same bytes. SHA256SUMS in --out lists the image, so
bakery release can take the directory.

Examples:
  bakery image self --out self/
  bakery image self --out self/ --arch arm64 --json
  CGO_ENABLED=0 go build -o bakery-static ./cmd/bakery && bakery image self --out self/ --binary bakery-static`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "out", Usage: "output `DIR`", Required: true},
			&cli.StringFlag{Name: "arch", Usage: "systemd architecture of the image (default: this machine's)"},
			&cli.StringFlag{Name: "binary", Usage: "a static bakery executable `FILE` for --arch to put in the image"},
			&cli.StringFlag{Name: "source", Usage: "bakery's source `DIR` to build from (default: the checkout holding the current directory)"},
			&cli.StringFlag{Name: "version", Usage: "the image's version (default: the module version stamped into the binary, else devel)"},
			jsonFlag,
		}, buildFlags()...),
		Action: runImageSelf,
	}
}

func runImageSelf(ctx context.Context, cmd *cli.Command) error {
	if cmd.NArg() != 0 {
		return usagef("image self takes no arguments, only --out DIR (see bakery image self --help)")
	}
	arch := sysext.HostArch()
	if a := cmd.String("arch"); a != "" {
		var err error
		if arch, err = sysext.ArchByName(a); err != nil {
			return usagef("--arch: %v", err)
		}
	}
	bin, cleanup, err := selfBinary(ctx, cmd, arch)
	if err != nil {
		return err
	}
	defer cleanup()
	if v := cmd.String("version"); v != "" {
		bin.Version = v
	}
	// The file name must be one systemd-sysupdate can match, for a release
	// directory to carry the image.
	if err := release.CheckVersion(bin.Version, arch.Name); err != nil {
		return usagef("--version: %v", err)
	}
	epoch := cmd.Int64("epoch")
	if epoch < 0 && os.Getenv("SOURCE_DATE_EPOCH") == "" && !bin.Time.IsZero() {
		epoch = bin.Time.Unix()
	}
	if epoch, err = sourceDateEpoch(epoch, ""); err != nil {
		return err
	}
	_, builder, opts, err := buildOptions(cmd, epoch)
	if err != nil {
		return err
	}
	tree, err := os.MkdirTemp("", "bakery-self-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tree)
	if err := bin.Stage(tree); err != nil {
		return err
	}
	dst := filepath.Join(cmd.String("out"), bin.FileName())
	// With --key and --cert: a signed DDI, or a plain image's signed
	// dm-verity sidecars, as image create writes them.
	out, err := bakery.WriteImage(ctx, builder, tree, dst, opts)
	if err != nil {
		return err
	}
	defer out.Abort()
	if err := out.Digest(); err != nil {
		return err
	}
	if err := out.Commit(); err != nil {
		return err
	}
	if err := sha256sums.Update(filepath.Join(cmd.String("out"), "SHA256SUMS"), map[string]string{bin.FileName(): out.SHA256}); err != nil {
		return err
	}
	res := struct {
		Path         string `json:"path"`
		SHA256       string `json:"sha256"`
		Size         int64  `json:"size"`
		Version      string `json:"version"`
		Architecture string `json:"architecture"`
		Epoch        int64  `json:"epoch"`
	}{dst, out.SHA256, out.Size, bin.Version, arch.Name, epoch}
	if cmd.Bool("json") {
		return printJSON(os.Stdout, res)
	}
	stderrf("%s  %s  %d bytes (bakery %s for %s)\n", res.SHA256, res.Path, res.Size, res.Version, res.Architecture)
	return nil
}

// selfBinary picks the bakery executable for the image: --binary, this
// one when it is static and for arch, else a build from source into a
// temporary directory, which cleanup removes.
func selfBinary(ctx context.Context, cmd *cli.Command, arch sysext.Arch) (b *selfimage.Binary, cleanup func(), err error) {
	cleanup = func() {}
	if p := cmd.String("binary"); p != "" {
		b, err = selfimage.Check(p, arch)
		return b, cleanup, err
	}
	if exe, err := os.Executable(); err == nil {
		b, err := selfimage.Check(exe, arch)
		if err == nil {
			return b, cleanup, nil
		}
		stderrf("building bakery for %s with CGO_ENABLED=0: %v\n", arch.Name, err)
	}
	source := cmd.String("source")
	if source == "" {
		source = "."
	}
	if source, err = selfimage.FindSource(source); err != nil {
		return nil, cleanup, usagef("%v: run this in bakery's checkout, or give --source DIR or --binary FILE", err)
	}
	dir, err := os.MkdirTemp("", "bakery-self-bin-")
	if err != nil {
		return nil, cleanup, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	if b, err = selfimage.Build(ctx, source, arch, filepath.Join(dir, "bakery")); err != nil {
		cleanup()
		return nil, func() {}, err
	}
	return b, cleanup, nil
}
