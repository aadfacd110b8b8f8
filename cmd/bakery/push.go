package main

import (
	"context"
	"crypto"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/urfave/cli/v3"
	"golang.org/x/sys/unix"

	"github.com/sysext-bakery/bakery/registry"
	"github.com/sysext-bakery/bakery/sign"
	"github.com/sysext-bakery/bakery/sysext"
)

// nameFlag names the extension a reference must hold.
var nameFlag = &cli.StringFlag{Name: "name", Usage: "the extension `NAME` the reference must hold (default: the repository's last path element)"}

// refClassFlag names the image class a reference must hold.
var refClassFlag = &cli.StringFlag{Name: "class", Usage: "the image class the reference must hold: sysext or confext (default: either)",
	Validator: func(v string) error {
		if _, err := sysext.ClassByName(v); err != nil {
			return err
		}
		return nil
	}}

// insecureFlag allows plain-http registries.
var insecureFlag = &cli.BoolFlag{Name: "insecure", Usage: "talk plain http (and accept any TLS certificate): for loopback and test registries"}

func pushCommand() *cli.Command {
	return &cli.Command{
		Name:      "push",
		Usage:     "publish one version's images (all arches) as one signed OCI index",
		ArgsUsage: "DIR|IMAGE.raw… REF",
		Description: `REF is host[:port]/ns/NAME[:tag]: NAME must be the extension's name. The
images (a bake output directory, or NAME-VERSION-ARCH.raw files) become one
index tagged with the version (tag-safe: + becomes _), latest, and REF's tag.
A tag that spells a version must be this version; moving tags (latest, or a
channel such as :stable) only move forward: latest stays on a newer version,
a channel on a newer version is an error (--force moves both back). Every tag
is checked before anything is written. With --key the index is signed (a
Sigstore bundle, claiming this extension and version, pushed as its
referrer). NAMESPACE/catalog is updated: this extension's entry, then the
signed catalog:latest, valid for --catalog-validity. A directory's INPUTS,
written by bake, gives each image's inputs digest: published on its index
entry as org.bakery.sysext.inputs-digest (the index gets the version's), it
lets bakery plan and bake --push skip what is published. Arches baked on
several machines are pushed together: bakery push dir-x86-64/ dir-arm64/ REF.

Examples:
  bakery push out/ 127.0.0.1:5000/sysext/hello --insecure
  bakery push out/ ghcr.io/me/sysext/hello:stable --key bakery.key --json`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "key", Usage: "sign with this private key (PEM, from bakery keygen)"},
			&cli.StringSliceFlag{Name: "annotation", Usage: "KEY=VALUE added to the index and each entry (e.g. org.opencontainers.image.description=…)"},
			&cli.BoolFlag{Name: "no-catalog", Usage: "do not update NAMESPACE/catalog:latest"},
			&cli.BoolFlag{Name: "force", Usage: "move latest and REF's tag even to an older version"},
			catalogValidityFlag,
			insecureFlag, jsonFlag,
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.NArg() < 2 {
				return usagef("push takes DIR|IMAGE.raw… and REF (see bakery push --help)")
			}
			args := cmd.Args().Slice()
			opts := registryOptions(cmd)
			if k := cmd.String("key"); k != "" {
				key, err := sign.LoadPrivateKey(k)
				if err != nil {
					return err
				}
				opts = append(opts, registry.WithSigner(key))
			}
			ann := map[string]string{}
			for _, a := range cmd.StringSlice("annotation") {
				k, v, ok := strings.Cut(a, "=")
				if !ok || k == "" {
					return usagef("--annotation %q: want KEY=VALUE", a)
				}
				ann[k] = v
			}
			opts = append(opts, registry.WithAnnotations(ann))
			if cmd.Bool("no-catalog") {
				opts = append(opts, registry.WithoutCatalog())
			}
			if cmd.Bool("force") {
				opts = append(opts, registry.WithForce())
			}
			opts = append(opts, registry.WithCatalogValidity(cmd.Duration("catalog-validity")))
			res, err := registry.Push(ctx, args[len(args)-1], args[:len(args)-1], opts...)
			if err != nil {
				return err
			}
			if cmd.Bool("json") {
				return printJSON(os.Stdout, res)
			}
			stderrf("pushed %s %s to %s@%s\n  tags: %s\n", res.Name, res.Version, res.Repository, res.IndexDigest, strings.Join(res.Tags, ", "))
			for _, k := range res.Kept {
				stderrf("  %s stays at %s, newer than %s (--force moves it)\n", k.Tag, k.Version, res.Version)
			}
			for _, img := range res.Images {
				stderrf("  %-10s %s  %s (%d bytes)\n", img.Arch, img.ManifestDigest, img.File, img.Size)
			}
			if res.Signature != "" {
				stderrf("  signed: %s\n", res.Signature)
			}
			return nil
		},
	}
}

// registryOptions are the options every registry command shares:
// --insecure, and progress bars when stderr is a terminal and --json is
// not given.
func registryOptions(cmd *cli.Command) []registry.Option {
	var opts []registry.Option
	if cmd.Bool("insecure") {
		opts = append(opts, registry.WithInsecure())
	}
	if !cmd.Bool("json") && stderrIsTerminal() {
		opts = append(opts, registry.WithProgress(newProgressBar().update))
	}
	return opts
}

// loadPublicKeys reads every --key file as a trusted public key.
func loadPublicKeys(paths []string) ([]crypto.PublicKey, error) {
	var keys []crypto.PublicKey
	for _, p := range paths {
		k, err := sign.LoadPublicKey(p)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// stderrIsTerminal tells whether progress bars make sense: stderr is a
// terminal (a character device such as /dev/null is not enough).
func stderrIsTerminal() bool {
	_, err := unix.IoctlGetTermios(int(os.Stderr.Fd()), unix.TCGETS)
	return err == nil
}

// progressBar draws one line per file on a terminal, redrawn in place.
type progressBar struct {
	mu   sync.Mutex
	last map[string]int // last percentage drawn per file
}

func newProgressBar() *progressBar { return &progressBar{last: map[string]int{}} }

func (p *progressBar) update(file string, done, total int64) {
	if total <= 0 {
		return
	}
	pct := int(done * 100 / total)
	p.mu.Lock()
	defer p.mu.Unlock()
	if prev, ok := p.last[file]; ok && prev == pct {
		return
	}
	p.last[file] = pct
	const width = 30
	bar := strings.Repeat("=", pct*width/100) + strings.Repeat(" ", width-pct*width/100)
	fmt.Fprintf(os.Stderr, "\r%-40s [%s] %3d%%", file, bar, pct)
	if done >= total {
		fmt.Fprintln(os.Stderr)
	}
}
