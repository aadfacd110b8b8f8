package main

import (
	"context"
	"crypto"
	"fmt"
	"os"
	"path/filepath"
	"time"

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
it before it touches /var/lib/extensions (/var/lib/confexts for an entry
with class: confext), installs it atomically as NAME.raw keeping the
previous one, refuses downgrades unless pinned, removes extensions no
longer listed, then refreshes the merge of each class that changed, with
the policy of the configuration given (reloading the service manager
when an extension asks for it, as merge does).

The configuration's keys (and certificates, X.509 certificates trusted to
sign DDIs beside /etc/verity.d) are absolute paths on the node; with
--root they are read under the root. An image already installed is not downloaded
again. policy.require-catalog checks every extension against the
namespace's signed catalog (see README, "Threat model").

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
			path := cmd.String("config")
			if path == "" {
				path = filepath.Join(root, merge.ConfigPath)
			}
			if name := cmd.String("rollback"); name != "" {
				var cfg *merge.Config // the root's sync.yaml, when there is one
				if cmd.String("config") != "" {
					c, err := merge.LoadConfig(path)
					if err != nil {
						return err
					}
					cfg = c
				}
				c, err := merge.Rollback(root, name)
				if err != nil {
					return err
				}
				return refreshAfter(cmd, root, cfg, []string{c.Name}, map[string]string{"rolledBack": name})
			}
			cfg, err := merge.LoadConfig(path)
			if err != nil {
				return err
			}
			keys, err := loadNodeKeys(root, path, cfg.Keys)
			if err != nil {
				return err
			}
			res, err := merge.Sync(ctx, root, cfg, sysext.HostArch().Name, registryClient{keys: keys, insecure: cfg.Insecure})
			if err != nil {
				return err
			}
			for _, w := range res.Warnings {
				stderrf("Warning: %s\n", w)
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
				err = refreshAfter(cmd, root, cfg, res.Classes, res)
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

// loadNodeKeys reads the trusted keys a sync configuration names: absolute
// paths on the node, read under root. Errors show the path as written in
// the configuration and where it was read.
func loadNodeKeys(root, config string, paths []string) ([]crypto.PublicKey, error) {
	var keys []crypto.PublicKey
	for i, k := range paths {
		p := filepath.Join(root, k)
		pub, err := sign.LoadPublicKey(p)
		if err != nil {
			where := ""
			if p != k {
				where = fmt.Sprintf(" (read as %s under --root)", p)
			}
			return nil, fmt.Errorf("%s: keys[%d] %s%s: %w", config, i, k, where, err)
		}
		keys = append(keys, pub)
	}
	return keys, nil
}

// jsonIf prints v as JSON when --json was given.
func jsonIf(cmd *cli.Command, v any) error {
	if cmd.Bool("json") {
		return printJSON(os.Stdout, v)
	}
	return nil
}

// refreshAfter refreshes the merges of the classes named unless
// --no-refresh, with the policy of cfg (nil: the root's sync.yaml), then
// reports v.
func refreshAfter(cmd *cli.Command, root string, cfg *merge.Config, classes []string, v any) error {
	if !cmd.Bool("no-refresh") {
		for _, name := range classes {
			c, err := sysext.ClassByName(name)
			if err != nil {
				return err
			}
			res, err := merge.Refresh(merge.Options{Root: root, Class: c, Config: cfg, Reloader: merge.SystemdReloader{}})
			if res != nil {
				printMergeResult(res, false)
			}
			if err != nil {
				return err
			}
		}
	}
	return jsonIf(cmd, v)
}

// registryClient is sync's registry: it pulls and reads catalogs with the
// registry client, verifying against keys.
type registryClient struct {
	keys     []crypto.PublicKey
	insecure bool
}

// options are the registry options of every call.
func (c registryClient) options() []registry.Option {
	opts := []registry.Option{registry.WithKeys(c.keys...)}
	if c.insecure {
		opts = append(opts, registry.WithInsecure())
	}
	return opts
}

// Pull implements merge.Registry.
func (c registryClient) Pull(ctx context.Context, req merge.PullRequest) (merge.Pulled, error) {
	opts := append(c.options(), registry.WithDest(req.Dest), registry.WithArch(req.Arch), registry.WithName(req.Name), registry.WithClass(req.Class), registry.WithHave(req.Have))
	res, err := registry.Pull(ctx, req.Ref, opts...)
	if err != nil {
		return merge.Pulled{}, err
	}
	got := merge.Pulled{Digest: res.Digest, IndexDigest: res.IndexDigest, Version: res.Version, Unchanged: res.Unchanged}
	if res.IndexDigest == "" {
		got.IndexDigest = res.ManifestDigest
	}
	if res.Verified {
		got.Verification = &merge.Verification{At: time.Now().UTC(), Signature: res.Signature, Key: res.Key}
	}
	return got, nil
}

// Catalog implements merge.Registry: the namespace's catalog, its
// signature and expiry checked.
func (c registryClient) Catalog(ctx context.Context, namespace string) (*merge.SignedCatalog, error) {
	res, err := registry.Catalog(ctx, namespace, c.options()...)
	if err != nil {
		return nil, err
	}
	if !res.Verified {
		return nil, fmt.Errorf("catalog of %s: not verified", namespace)
	}
	cat := &merge.SignedCatalog{Sequence: res.Catalog.Sequence, Extensions: map[string]merge.CatalogListing{}}
	for _, e := range res.Catalog.Extensions {
		l := merge.CatalogListing{Versions: map[string]string{}, Tags: e.Tags}
		for _, v := range e.Versions {
			if v.Signed {
				l.Versions[v.Version] = v.Digest
			}
		}
		cat.Extensions[e.Name] = l
	}
	return cat, nil
}
