package main

import (
	"context"
	"os"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/sysext-bakery/bakery/release"
	"github.com/sysext-bakery/bakery/sign/pgp"
)

func releaseCommand() *cli.Command {
	return &cli.Command{
		Name:      "release",
		Usage:     "write a release directory for systemd-sysupdate: images, SHA256SUMS(.gpg), NAME.transfer and NAME.conf",
		ArgsUsage: "DIR [IMAGE.raw|BAKE_DIR]...",
		Description: `Makes DIR a static directory that stock nodes update from with
systemd-sysupdate, in the layout of Flatcar's sysext-bakery: the images
(NAME-VERSION-ARCH.raw), SHA256SUMS, its OpenPGP signature SHA256SUMS.gpg
(with --gpg-key), and per extension the transfer definition NAME.transfer
(systemd 257's name) and NAME.conf (older systemd's and Flatcar's), the same
content: MatchPattern=NAME-@v-%a.raw from --base-url, installed into
/opt/extensions/NAME, CurrentSymlink=/etc/extensions/NAME.raw,
InstancesMax=3, Verify=yes when signed. noop.transfer and noop.conf match
nothing, for systemd-sysupdate.service's own run over /etc/sysupdate.d.

The images given (files, or directories as bake --out writes them) are
copied in; images already in DIR (baked into it, or released before) stay,
so releasing into an existing directory adds versions. A released image is
never replaced: another image under the same file name is refused. Every
image already listed is checked against SHA256SUMS before it is signed
again, and nothing is written until every check has passed.

--base-url is where DIR is served: https (plain http only to loopback). A
node trusts the signature when its /etc/systemd/import-pubring.gpg holds the
key (PREFIX.pubring.gpg of bakery keygen --gpg).

Examples:
  bakery keygen --gpg --out release
  bakery bake kubernetes --out out/
  bakery release public/ out/ --base-url https://example.com/sysexts/ --gpg-key release.key
  bakery bake hello --out public/ && bakery release public/ --base-url https://example.com/sysexts/ --gpg-key release.key --json`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "base-url", Usage: "the `URL` DIR is served at (https)", Required: true},
			&cli.StringFlag{Name: "gpg-key", Usage: "OpenPGP private key `FILE` signing SHA256SUMS (bakery keygen --gpg)"},
			&cli.Int64Flag{Name: "epoch", Value: -1, Usage: "date of a new signature, seconds since 1970 (default: $SOURCE_DATE_EPOCH, else now)"},
			jsonFlag,
		},
		Action: runRelease,
	}
}

func runRelease(ctx context.Context, cmd *cli.Command) error {
	if cmd.NArg() < 1 {
		return usagef("release takes DIR and, optionally, images or bake output directories (see bakery release --help)")
	}
	if _, err := release.CheckURL(cmd.String("base-url")); err != nil {
		return usagef("--base-url: %v", err)
	}
	opts := release.Options{BaseURL: cmd.String("base-url")}
	if p := cmd.String("gpg-key"); p != "" {
		key, err := pgp.LoadPrivateKey(p)
		if err != nil {
			return err
		}
		opts.Key = key
	}
	if cmd.Int64("epoch") >= 0 || os.Getenv("SOURCE_DATE_EPOCH") != "" {
		epoch, err := sourceDateEpoch(cmd.Int64("epoch"), "")
		if err != nil {
			return err
		}
		opts.SignTime = time.Unix(epoch, 0)
	}
	res, err := release.Write(cmd.Args().First(), cmd.Args().Slice()[1:], opts)
	if err != nil {
		return err
	}
	for _, w := range res.Warnings {
		stderrf("Warning: %s\n", w)
	}
	if cmd.Bool("json") {
		return printJSON(os.Stdout, res)
	}
	for _, img := range res.Images {
		mark := "kept "
		if img.Added {
			mark = "added"
		}
		stderrf("%s %s  %s\n", mark, img.SHA256, img.File)
	}
	switch {
	case res.Resigned:
		stderrf("signed %s with key %s\n", release.SumsFile, res.Fingerprint)
	case res.Signed:
		stderrf("%s unchanged, still signed by key %s\n", release.SumsFile, res.Fingerprint)
	default:
		stderrf("unsigned: nodes install with Verify=no (give --gpg-key to sign)\n")
	}
	stderrf("released %d images of %d extensions in %s\n", len(res.Images), len(res.Extensions), res.Dir)
	return nil
}
