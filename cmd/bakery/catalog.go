package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v3"

	"github.com/sysext-bakery/bakery/registry"
)

func catalogCommand() *cli.Command {
	return &cli.Command{
		Name:      "catalog",
		Usage:     "list the extensions published in a registry namespace",
		ArgsUsage: "HOST[:port][/ns]",
		Description: `Reads the catalog artifact NS/catalog:latest that every push updates (its
signature is checked when --key is given); without one, falls back to the
registry's /v2/_catalog and tag lists (GHCR and Docker Hub do not serve it).

Examples:
  bakery catalog 127.0.0.1:5000/sysext --insecure
  bakery catalog ghcr.io/me/sysext --key bakery.pub --json`,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "key", Usage: "trusted public key (PEM): require the catalog to be signed by it"},
			insecureFlag, jsonFlag,
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.NArg() != 1 {
				return usagef("catalog takes one HOST[:port][/ns] (see bakery catalog --help)")
			}
			opts := registryOptions(cmd)
			keys, err := loadPublicKeys(cmd.StringSlice("key"))
			if err != nil {
				return err
			}
			res, err := registry.Catalog(ctx, cmd.Args().First(), append(opts, registry.WithKeys(keys...))...)
			if err != nil {
				return err
			}
			if cmd.Bool("json") {
				return printJSON(os.Stdout, res)
			}
			printCatalog(res)
			return nil
		},
	}
}

// printCatalog shows a catalog as a table on stderr.
func printCatalog(res registry.CatalogResult) {
	src := "catalog artifact"
	if res.Source != "artifact" {
		src = "registry listing (no catalog artifact)"
	} else if res.Verified {
		src += ", signature verified"
	}
	stderrf("%s (%s)\n", res.Catalog.Namespace, src)
	w := tabwriter.NewWriter(os.Stderr, 0, 4, 2, ' ', 0)
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
			if v.Signed {
				signed = "yes"
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
