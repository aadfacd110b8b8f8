package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"

	"github.com/urfave/cli/v3"

	"github.com/sysext-bakery/bakery/bakery"
	"github.com/sysext-bakery/bakery/sysext/inspect"
)

func imageCommand() *cli.Command {
	return &cli.Command{
		Name:  "image",
		Usage: "create and inspect extension images",
		Commands: []*cli.Command{
			imageCreateCommand(),
			imageInspectCommand(),
			imageSelfCommand(),
		},
	}
}

func imageCreateCommand() *cli.Command {
	return &cli.Command{
		Name:      "create",
		Usage:     "write an image of a staged tree (holding usr/…), nothing else",
		ArgsUsage: "SRC_DIR OUT.raw",
		Description: `The mksquashfs of this project: SRC_DIR becomes OUT.raw as is. No recipe,
no extension-release is added, no validation beyond what the builder needs.

--format ddi writes a Discoverable Disk Image as systemd-repart --make-ddi=sysext does
(erofs, its dm-verity hash tree and, with --key and --cert, the root hash's signature);
--key and --cert with a plain image write the dm-verity sidecars OUT.verity,
OUT.roothash and OUT.roothash.p7s beside it instead.

Examples:
  bakery image create staged/ out.raw
  bakery image create staged/ out.raw --compression gzip --level 9 --epoch 0
  bakery keygen --x509 --out release
  bakery image create staged/ hello.raw --format ddi --key release.key --cert release.crt`,
		Flags: append(buildFlags(),
			&cli.BoolFlag{Name: "all-root", Value: true, Usage: "make every file owned by root:root"},
		),
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.NArg() != 2 {
				return usagef("image create takes SRC_DIR and OUT.raw (see bakery image create --help)")
			}
			src, dst := cmd.Args().Get(0), cmd.Args().Get(1)
			if fi, err := os.Stat(src); err != nil || !fi.IsDir() {
				return usagef("SRC_DIR %q is not a directory", src)
			}
			epoch := cmd.Int64("epoch")
			if epoch < 0 {
				var err error
				if epoch, err = sourceDateEpoch(-1, ""); err != nil {
					return err
				}
			}
			_, builder, opts, err := buildOptions(cmd, epoch)
			if err != nil {
				return err
			}
			opts.AllRoot = cmd.Bool("all-root")
			out, err := bakery.WriteImage(ctx, builder, src, dst, opts)
			if err != nil {
				return err
			}
			defer out.Abort()
			return out.Commit()
		},
	}
}

func imageInspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "show an image's file system, size, sha256, extension-release and entry count",
		ArgsUsage: "IMAGE.raw",
		Description: `Reads the image directly (squashfs, erofs, or a DDI's root partition): no root,
no mount, no external tool. For a DDI it also checks the dm-verity hash tree and
says whether it is signed and by which certificate (a node decides whom it trusts).
The report goes to stdout (JSON with --json).

Examples:
  bakery image inspect out/hello-1.0.0-x86-64.raw
  bakery image inspect out/hello-1.0.0-x86-64.raw --json | jq -r .extensionRelease.ARCHITECTURE`,
		Flags: []cli.Flag{jsonFlag},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.NArg() != 1 {
				return usagef("image inspect takes one IMAGE.raw (see bakery image inspect --help)")
			}
			if cmd.Bool("json") {
				info, err := inspect.Image(cmd.Args().First())
				if err != nil {
					return err
				}
				return printJSON(os.Stdout, info)
			}
			return printInspect(os.Stdout, cmd.Args().First())
		},
	}
}

// printInspect writes an image's description to out.
func printInspect(out io.Writer, p string) error {
	info, err := inspect.Image(p)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s\n  class    %s\n  fstype   %s\n  size     %d bytes\n  sha256   %s\n  name     %s\n  entries  %d\n", info.Path, info.Class, info.Format, info.Size, info.SHA256, info.Name, info.Entries)
	if d := info.DDI; d != nil {
		fmt.Fprintf(out, "  ddi      %s, %s inside, %s", d.Architecture, d.FSType, d.Verity)
		if d.Signed {
			fmt.Fprintf(out, ", signed by certificate %s", d.CertificateFingerprint)
		}
		fmt.Fprintf(out, "\n  roothash %s\n", d.RootHash)
	}
	for _, k := range slices.Sorted(maps.Keys(info.Release)) {
		fmt.Fprintf(out, "  %s=%s\n", k, info.Release[k])
	}
	return nil
}
