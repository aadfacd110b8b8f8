package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v3"

	"github.com/sysext-bakery/bakery/registry"
	"github.com/sysext-bakery/bakery/sign"
)

// catalogValidityFlag says how long a catalog written now stays valid.
var catalogValidityFlag = &cli.DurationFlag{Name: "catalog-validity", Value: registry.DefaultCatalogValidity,
	Usage: "how long the signed catalog written stays valid; re-sign it before (bakery catalog --sign)"}

func catalogCommand() *cli.Command {
	return &cli.Command{
		Name:      "catalog",
		Usage:     "list the extensions published in a registry namespace, or re-sign its catalog",
		ArgsUsage: "HOST[:port][/ns]",
		Description: `Reads the catalog artifact NS/catalog:latest that every push updates. With
--key only a catalog signed by one of the keys, for this namespace, and not
expired is accepted; without a catalog artifact that is an error. Without
--key, a namespace without a catalog artifact is listed from the registry's
/v2/_catalog and tag lists (GHCR and Docker Hub do not serve it); such a
listing checks no signature ("signed" is false, "signatureAttached" says
whether one exists).

With --sign K.key the catalog is rebuilt from the extensions' entries, given
the next sequence number and a new expiry (--catalog-validity) and signed:
run it regularly (e.g. daily, with a validity of a few days) so that nodes
with policy.require-catalog notice a registry serving a stale catalog.

Examples:
  bakery catalog 127.0.0.1:5000/sysext --insecure
  bakery catalog ghcr.io/me/sysext --key bakery.pub --json
  bakery catalog ghcr.io/me/sysext --sign bakery.key --catalog-validity 72h`,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "key", Usage: "trusted public key (PEM): require the catalog to be signed by it"},
			&cli.StringFlag{Name: "sign", Usage: "re-sign the catalog with this private key (PEM) instead of reading it"},
			catalogValidityFlag,
			insecureFlag, jsonFlag,
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.NArg() != 1 {
				return usagef("catalog takes one HOST[:port][/ns] (see bakery catalog --help)")
			}
			opts := registryOptions(cmd)
			var res registry.CatalogResult
			if k := cmd.String("sign"); k != "" {
				key, err := sign.LoadPrivateKey(k)
				if err != nil {
					return err
				}
				opts = append(opts, registry.WithSigner(key), registry.WithCatalogValidity(cmd.Duration("catalog-validity")))
				if res, err = registry.RefreshCatalog(ctx, cmd.Args().First(), opts...); err != nil {
					return err
				}
			} else {
				keys, err := loadPublicKeys(cmd.StringSlice("key"))
				if err != nil {
					return err
				}
				if res, err = registry.Catalog(ctx, cmd.Args().First(), append(opts, registry.WithKeys(keys...))...); err != nil {
					return err
				}
			}
			if cmd.Bool("json") {
				return printJSON(os.Stdout, res)
			}
			printCatalog(os.Stdout, res)
			return nil
		},
	}
}

// printCatalog shows a catalog as a table.
func printCatalog(out io.Writer, res registry.CatalogResult) {
	src := "catalog artifact, signature not checked (give --key)"
	switch {
	case res.Source != "artifact":
		src = "registry listing (no catalog artifact), no signature checked"
	case res.Verified:
		src = fmt.Sprintf("catalog artifact, sequence %d, signed by key %s, valid until %s", res.Catalog.Sequence, res.Key, res.Catalog.Expires)
	}
	fmt.Fprintf(out, "%s (%s)\n", res.Catalog.Namespace, src)
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tVERSION\tARCHES\tSIZE\tSIGNED\tDIGEST\tDESCRIPTION")
	for _, e := range res.Catalog.Extensions {
		for _, v := range e.Versions {
			var arches []string
			var size int64
			for _, a := range v.Arches {
				arches = append(arches, a.Arch)
				size += a.Size
			}
			signed := "no"
			switch {
			case v.Signed && res.Verified:
				signed = "yes"
			case v.Signed:
				signed = "claimed" // by a catalog whose signature was not checked
			case v.SignatureAttached:
				signed = "unchecked"
			}
			digest := v.Digest
			if len(digest) > 19 {
				digest = digest[:19]
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Name, v.Version, strings.Join(arches, ","), humanSize(size), signed, digest, e.Description)
		}
	}
	w.Flush()
}

// humanSize prints a byte count in binary units.
func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
