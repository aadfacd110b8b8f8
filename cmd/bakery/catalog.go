package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v3"

	"github.com/sysext-bakery/bakery/internal/bytesize"
	"github.com/sysext-bakery/bakery/page"
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

With --html DIR the catalog is written as a web page of static files
(DIR/index.html, DIR/ext/NAME.html, DIR/assets/) for any web host, the same
page bakery registry serve shows; with --key it says whether the catalog's
signature verified, and shows a catalog that fails with a warning (the
command then exits 1). DIR is replaced whole, and only when it is empty or
an earlier export.

Examples:
  bakery catalog 127.0.0.1:5000/sysext --insecure
  bakery catalog ghcr.io/me/sysext --key bakery.pub --html public/
  bakery catalog ghcr.io/me/sysext --key bakery.pub --json
  bakery catalog ghcr.io/me/sysext --sign bakery.key --catalog-validity 72h`,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "key", Usage: "trusted public key (PEM): require the catalog to be signed by it"},
			&cli.StringFlag{Name: "sign", Usage: "re-sign the catalog with this private key (PEM) instead of reading it"},
			catalogValidityFlag,
			&cli.StringFlag{Name: "html", Usage: "write the catalog as a static web page into this directory"},
			insecureFlag, jsonFlag,
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.NArg() != 1 {
				return usagef("catalog takes one HOST[:port][/ns] (see bakery catalog --help)")
			}
			opts := registryOptions(cmd)
			if dir := cmd.String("html"); dir != "" {
				if cmd.String("sign") != "" {
					return usagef("--html writes the page of a catalog and --sign re-signs it: run them one after the other")
				}
				return exportPage(ctx, cmd, dir, opts)
			}
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
			signed := v.SignatureState(res.Verified)
			digest := v.Digest
			if len(digest) > 19 {
				digest = digest[:19]
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Name, v.Version, strings.Join(arches, ","), bytesize.Human(size), signed, digest, e.Description)
		}
	}
	w.Flush()
}

// exportPage writes the catalog page of the namespace cmd names into dir.
func exportPage(ctx context.Context, cmd *cli.Command, dir string, opts []registry.Option) error {
	keys, err := loadPublicKeys(cmd.StringSlice("key"))
	if err != nil {
		return err
	}
	c, err := page.Load(ctx, page.Source{Namespace: cmd.Args().First(), Keys: keys, Options: opts})
	if err != nil {
		return err
	}
	c.Insecure = cmd.Bool("insecure")
	if err := page.Export(dir, c); err != nil {
		return err
	}
	if cmd.Bool("json") {
		if err := printJSON(os.Stdout, pageExport{Dir: dir, Verified: c.Verified, Key: c.Key, Warning: c.Warning, Extensions: len(c.Extensions)}); err != nil {
			return err
		}
	} else {
		fmt.Printf("wrote %s/index.html: %d extensions\n", dir, len(c.Extensions))
	}
	if len(keys) > 0 && !c.Verified {
		return fmt.Errorf("the page is written, with a warning: %s", c.Warning)
	}
	return nil
}

// pageExport is catalog --html --json's report.
type pageExport struct {
	Dir        string `json:"dir"`
	Verified   bool   `json:"verified"`
	Key        string `json:"key,omitempty"`
	Warning    string `json:"warning,omitempty"`
	Extensions int    `json:"extensions"`
}
