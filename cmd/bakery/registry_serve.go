package main

import (
	"context"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v3"

	"github.com/sysext-bakery/bakery/page"
	"github.com/sysext-bakery/bakery/registry"
	"github.com/sysext-bakery/bakery/release"
)

func registryCommand() *cli.Command {
	return &cli.Command{
		Name:     "registry",
		Usage:    "run an OCI registry",
		Commands: []*cli.Command{registryServeCommand()},
	}
}

// defaultRegistryRoot is where `registry serve` keeps its data without --root.
func defaultRegistryRoot() string {
	if os.Geteuid() == 0 {
		return "/var/lib/bakery/registry"
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "bakery", "registry")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "share", "bakery", "registry")
}

func registryServeCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "serve an OCI registry (distribution v3, in process) with durable file-system storage",
		Description: `Everything the registry acknowledged is on disk under --root and survives
restarts and kill -9. It listens on loopback unless told otherwise; for real
use give --tls-cert/--tls-key and --htpasswd (bcrypt entries: htpasswd -B).
Runs until interrupted (SIGINT/SIGTERM).

The catalog page is served at / beside the API at /v2/: every namespace
with a catalog, its extensions (filter by name and architecture), and per
extension its versions, digests, provenance and a sync.yaml to copy. It
reads the registry through its own API, checks each catalog's signature
with --key and says whether it verified; --no-page serves the API only
(there is no page with --htpasswd: the page reads anonymously).

Examples:
  bakery registry serve --root /tmp/registry
  bakery registry serve --root /tmp/registry --key bakery.pub   # then open http://127.0.0.1:5000/
  bakery registry serve --addr 0.0.0.0:5443 --root /srv/registry --tls-cert r.crt --tls-key r.key --htpasswd users`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:5000", Usage: "address to listen on"},
			&cli.StringFlag{Name: "root", Value: defaultRegistryRoot(), Usage: "directory holding the registry's data"},
			&cli.StringFlag{Name: "tls-cert", Usage: "serve https with this PEM certificate (needs --tls-key)"},
			&cli.StringFlag{Name: "tls-key", Usage: "PEM private key of --tls-cert"},
			&cli.StringFlag{Name: "htpasswd", Usage: "require basic auth against this htpasswd file (use with TLS)"},
			&cli.StringSliceFlag{Name: "key", Usage: "trusted public key (PEM) the catalog page verifies catalogs with (repeatable)"},
			&cli.BoolFlag{Name: "no-page", Usage: "serve the registry API only, no catalog page at /"},
			&cli.BoolFlag{Name: "verbose", Usage: "log requests and errors to stderr"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.NArg() != 0 {
				return usagef("registry serve takes no arguments (see bakery registry serve --help)")
			}
			cert, key := cmd.String("tls-cert"), cmd.String("tls-key")
			if (cert == "") != (key == "") {
				return usagef("--tls-cert and --tls-key go together")
			}
			addr := cmd.String("addr")
			var opts []registry.ServeOption
			if cert != "" {
				opts = append(opts, registry.WithTLS(cert, key))
			} else if host, _, err := net.SplitHostPort(addr); err == nil && !release.IsLoopback(host) {
				stderrf("warning: serving plain http on %s, beyond loopback: give --tls-cert/--tls-key for real use\n", addr)
			}
			if h := cmd.String("htpasswd"); h != "" {
				opts = append(opts, registry.WithHtpasswd(h))
			}
			if cmd.Bool("verbose") {
				opts = append(opts, registry.WithVerbose())
			}
			switch {
			case cmd.String("htpasswd") != "" && !cmd.Bool("no-page"):
				// The page reads the registry anonymously; with auth it
				// could only show errors, or bypass the auth.
				stderrf("note: no catalog page with --htpasswd (it reads the registry anonymously): export one with bakery catalog --html\n")
			case !cmd.Bool("no-page"):
				keys, err := loadPublicKeys(cmd.StringSlice("key"))
				if err != nil {
					return err
				}
				cfg := page.Config{Keys: keys, Insecure: cert == "", Log: log.New(os.Stderr, "", 0)}
				opts = append(opts, registry.WithPage(func(api http.Handler) http.Handler { return page.ForAPI(api, cfg) }))
			case len(cmd.StringSlice("key")) > 0:
				return usagef("--key is for the catalog page, which --no-page turns off")
			}
			opts = append(opts, registry.WithReady(func(a string) {
				stderrf("registry serving on %s, data in %s\n", a, cmd.String("root"))
			}))
			return registry.Serve(ctx, addr, cmd.String("root"), opts...)
		},
	}
}
