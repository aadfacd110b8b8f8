package main

import (
	"context"
	"net"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v3"

	"github.com/sysext-bakery/bakery/registry"
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

Examples:
  bakery registry serve --root /tmp/registry
  bakery registry serve --addr 0.0.0.0:5443 --root /srv/registry --tls-cert r.crt --tls-key r.key --htpasswd users`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:5000", Usage: "address to listen on"},
			&cli.StringFlag{Name: "root", Value: defaultRegistryRoot(), Usage: "directory holding the registry's data"},
			&cli.StringFlag{Name: "tls-cert", Usage: "serve https with this PEM certificate (needs --tls-key)"},
			&cli.StringFlag{Name: "tls-key", Usage: "PEM private key of --tls-cert"},
			&cli.StringFlag{Name: "htpasswd", Usage: "require basic auth against this htpasswd file (use with TLS)"},
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
			} else if host, _, err := net.SplitHostPort(addr); err == nil && !isLoopback(host) {
				stderrf("warning: serving plain http on %s, beyond loopback: give --tls-cert/--tls-key for real use\n", addr)
			}
			if h := cmd.String("htpasswd"); h != "" {
				opts = append(opts, registry.WithHtpasswd(h))
			}
			if cmd.Bool("verbose") {
				opts = append(opts, registry.WithVerbose())
			}
			opts = append(opts, registry.WithReady(func(a string) {
				stderrf("registry serving on %s, data in %s\n", a, cmd.String("root"))
			}))
			return registry.Serve(ctx, addr, cmd.String("root"), opts...)
		},
	}
}

// isLoopback tells loopback host names and addresses.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
