package main

import (
	"context"
	"os"

	"github.com/urfave/cli/v3"

	"github.com/sysext-bakery/bakery/registry"
)

func pullCommand() *cli.Command {
	return &cli.Command{
		Name:      "pull",
		Usage:     "download one arch's image of a published extension, verified before it is written",
		ArgsUsage: "REF",
		Description: `REF is host[:port]/ns/name:tag or host[:port]/ns/name@sha256:…. The image for
this machine's architecture (or --arch) is written to DIR/NAME-VERSION-ARCH.raw
through a temp file that is renamed only after every digest (and, with --key,
the signature) checked out. The repository's last path element is the
extension asked for (or --name): an index of another extension, or of another
version than a version tag names, is refused, signed or not.

Examples:
  bakery pull 127.0.0.1:5000/sysext/hello:latest --insecure --key bakery.pub --out /tmp
  bakery pull ghcr.io/me/sysext/hello@sha256:… --arch arm64 --json`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "arch", Usage: "systemd architecture to pull (x86-64, arm64, …); default: this machine's"},
			&cli.StringSliceFlag{Name: "key", Usage: "trusted public key (PEM); repeatable; when given, a valid signature is required"},
			&cli.StringFlag{Name: "out", Value: ".", Usage: "directory to write the image into (created when missing)"},
			nameFlag, refClassFlag,
			insecureFlag, jsonFlag,
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.NArg() != 1 {
				return usagef("pull takes one REF (see bakery pull --help)")
			}
			opts := registryOptions(cmd)
			keys, err := loadPublicKeys(cmd.StringSlice("key"))
			if err != nil {
				return err
			}
			opts = append(opts, registry.WithKeys(keys...), registry.WithOutDir(cmd.String("out")), registry.WithName(cmd.String("name")), registry.WithClass(cmd.String("class")))
			if a := cmd.String("arch"); a != "" {
				opts = append(opts, registry.WithArch(a))
			}
			res, err := registry.Pull(ctx, cmd.Args().First(), opts...)
			if err != nil {
				return err
			}
			if cmd.Bool("json") {
				return printJSON(os.Stdout, res)
			}
			verified := "unsigned check skipped (no --key)"
			if res.Verified {
				verified = "signature verified: " + res.Signature
			}
			stderrf("pulled %s (%s, %d bytes, %s)\n  %s\n", res.Path, res.Arch, res.Size, res.Digest, verified)
			return nil
		},
	}
}
