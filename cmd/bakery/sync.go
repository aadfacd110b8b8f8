package main

import (
	"context"
	"crypto"
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v3"

	"github.com/sysext-bakery/bakery/merge"
	"github.com/sysext-bakery/bakery/registry"
	"github.com/sysext-bakery/bakery/sign"
	"github.com/sysext-bakery/bakery/sysext"
)

func syncCommand() *cli.Command {
	return &cli.Command{
		Name:  "sync",
		Usage: "pull, verify and install the extensions sync.yaml lists, then refresh the merge",
		Description: `Reads the configuration (registry, extensions by tag or digest, trusted
keys, policy), pulls each image for this machine's architecture, verifies
it before it touches /var/lib/extensions, installs it atomically as
NAME.raw keeping the previous one, refuses downgrades unless pinned,
removes extensions no longer listed, then refreshes the merge when
anything changed.

Examples:
  bakery sync
  bakery sync --config /etc/bakery/sync.yaml --root /mnt/node --no-refresh
  bakery sync --rollback kubernetes`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Usage: "the sync configuration `FILE` (default: ROOT/etc/bakery/sync.yaml)"},
			rootFlag,
			&cli.StringFlag{Name: "rollback", Usage: "reinstall the previous image of extension `NAME` instead of syncing"},
			&cli.BoolFlag{Name: "no-refresh", Usage: "install only; do not refresh the merge"},
			jsonFlag,
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.NArg() != 0 {
				return usagef("sync takes no arguments")
			}
			root := cmd.String("root")
			if name := cmd.String("rollback"); name != "" {
				if err := merge.Rollback(root, name); err != nil {
					return err
				}
				return refreshAfter(cmd, root, map[string]string{"rolledBack": name})
			}
			path := cmd.String("config")
			if path == "" {
				path = filepath.Join(root, merge.ConfigPath)
			}
			cfg, err := merge.LoadConfig(path)
			if err != nil {
				return err
			}
			var keys []crypto.PublicKey
			for _, k := range cfg.Keys {
				pub, err := sign.LoadPublicKey(filepath.Join(root, k))
				if err != nil {
					return err
				}
				keys = append(keys, pub)
			}
			res, err := merge.Sync(ctx, root, cfg, sysext.HostArch().Name, registryPuller{keys: keys, insecure: cfg.Insecure})
			if err != nil {
				return err
			}
			for _, r := range res.Refused {
				stderrf("Not installed: %s\n", r)
			}
			for _, n := range res.Installed {
				stderrf("Installed %s.\n", n)
			}
			for _, n := range res.Removed {
				stderrf("Removed %s.\n", n)
			}
			if res.Changed() {
				err = refreshAfter(cmd, root, res)
			} else {
				err = jsonIf(cmd, res)
			}
			if err == nil && len(res.Refused) > 0 {
				err = fmt.Errorf("%d of %d extensions not installed (see above)", len(res.Refused), len(cfg.Extensions))
			}
			return err
		},
	}
}

// jsonIf prints v as JSON when --json was given.
func jsonIf(cmd *cli.Command, v any) error {
	if cmd.Bool("json") {
		return printJSON(os.Stdout, v)
	}
	return nil
}

// refreshAfter refreshes the merge unless --no-refresh, then reports v.
func refreshAfter(cmd *cli.Command, root string, v any) error {
	if !cmd.Bool("no-refresh") {
		res, err := merge.Refresh(merge.Options{Root: root})
		if err != nil {
			return err
		}
		if err := printMergeResult(res, false); err != nil {
			return err
		}
	}
	return jsonIf(cmd, v)
}

// registryPuller pulls with the registry client, verifying against keys.
type registryPuller struct {
	keys     []crypto.PublicKey
	insecure bool
}

// Pull implements merge.Puller.
func (p registryPuller) Pull(ctx context.Context, ref, arch, dest string) (merge.Pulled, error) {
	opts := []registry.Option{registry.WithDest(dest), registry.WithKeys(p.keys...), registry.WithArch(arch)}
	if p.insecure {
		opts = append(opts, registry.WithInsecure())
	}
	res, err := registry.Pull(ctx, ref, opts...)
	if err != nil {
		return merge.Pulled{}, err
	}
	return merge.Pulled{Digest: res.Digest, Version: res.Version, Verified: res.Verified}, nil
}
