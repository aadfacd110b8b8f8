package main

import (
	"context"
	"os"

	"github.com/urfave/cli/v3"

	"github.com/sysext-bakery/bakery/registry"
)

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "check a published extension's signature, index, manifests and images by digest",
		ArgsUsage: "REF",
		Description: `Checks, with the registry alone (no transparency log): the index is the
extension the repository names (or --name) at the version a version tag
names; a signature by one of the --key public keys names the index digest
and that extension and version; the index, each manifest and each image
blob have the digests their parents name.

Examples:
  bakery verify 127.0.0.1:5000/sysext/hello:1.0.0 --key bakery.pub --insecure
  bakery verify ghcr.io/me/sysext/hello:latest --key a.pub --key b.pub --json`,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "key", Usage: "trusted public key (PEM); repeatable; required"},
			nameFlag, refClassFlag,
			insecureFlag, jsonFlag,
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.NArg() != 1 {
				return usagef("verify takes one REF (see bakery verify --help)")
			}
			if len(cmd.StringSlice("key")) == 0 {
				return usagef("verify needs --key K.pub (the public key the publisher signed with)")
			}
			opts := registryOptions(cmd)
			keys, err := loadPublicKeys(cmd.StringSlice("key"))
			if err != nil {
				return err
			}
			res, err := registry.Verify(ctx, cmd.Args().First(), append(opts, registry.WithKeys(keys...), registry.WithName(cmd.String("name")), registry.WithClass(cmd.String("class")))...)
			if err != nil {
				return err
			}
			if cmd.Bool("json") {
				return printJSON(os.Stdout, res)
			}
			stderrf("verified %s: %s %s\n  index     %s\n  signature %s (key %s)\n", res.Reference, res.Name, res.Version, res.Digest, res.Signature, res.Key)
			for _, m := range res.Manifests {
				stderrf("  %-10s manifest %s  image %s (%d bytes)\n", m.Arch, m.ManifestDigest, m.LayerDigest, m.Size)
			}
			return nil
		},
	}
}
