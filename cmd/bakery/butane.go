package main

import (
	"context"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/sysext-bakery/bakery/internal/atomicfile"
	"github.com/sysext-bakery/bakery/internal/download"
	"github.com/sysext-bakery/bakery/merge"
	"github.com/sysext-bakery/bakery/provision"
	"github.com/sysext-bakery/bakery/release"
	"github.com/sysext-bakery/bakery/selfimage"
	"github.com/sysext-bakery/bakery/sign"
	"github.com/sysext-bakery/bakery/sign/pgp"
	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/inspect"
)

func butaneCommand() *cli.Command {
	return &cli.Command{
		Name:      "butane",
		Usage:     "write a node's first-boot config: Butane (Flatcar) YAML, or Ignition JSON with --ignition",
		ArgsUsage: "EXT...",
		Description: `Two kinds of node, signed end to end:

With --release URL, a stock node that updates with systemd-sysupdate from a
release directory (bakery release): bakery fetches the directory's
SHA256SUMS, checks SHA256SUMS.gpg against --key (an OpenPGP public key,
bakery keygen --gpg), picks the newest image of each EXT for --arch, checks
its sha256 and pins its sha512. The config has Ignition fetch each image
into /opt/extensions/NAME with that hash, link /etc/extensions/NAME.raw to
it, write the transfer definitions (Verify=yes) to /etc/sysupdate.NAME.d,
the key to /etc/systemd/import-pubring.gpg and noop definitions to
/etc/sysupdate.d, enable systemd-sysupdate.timer and add drop-ins that run
systemd-sysupdate -C NAME update and then restart systemd-sysext.

With --registry HOST/NS, a node that runs bakery: Ignition fetches bakery's
own extension (--bakery-image URL, made by bakery image self) pinned by its
sha512, and the config writes /etc/bakery/sync.yaml listing each EXT
(NAME, NAME:TAG or NAME@sha256:DIGEST) with the trusted --key files (PEM,
bakery keygen) under /etc/bakery/keys, and enables bakery-sync.timer. sync
verifies every image against the keys before it installs it.

URLs must be https (plain http only to loopback addresses, for tests);
--insecure (plain HTTP to the registry) likewise only for a loopback
registry. The same inputs give the same bytes. Ignition spec 3.3.0 (Butane
flatcar 1.0.0): what Flatcar and Ignition 2.14 read.

Examples:
  bakery butane kubernetes --release https://example.com/sysexts/ --key release.pub > node.bu
  bakery butane kubernetes --release https://example.com/sysexts/ --key release.pub --ignition --out node.ign
  bakery butane kubernetes:v1.32.2 --registry ghcr.io/example/sysexts --key release.pub \
      --bakery-image https://example.com/sysexts/bakery-1.4.0-x86-64.raw --ignition`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "release", Usage: "`URL` of a release directory (stock nodes: systemd-sysupdate)"},
			&cli.StringFlag{Name: "registry", Usage: "`HOST/NS` of the registry (nodes that run bakery sync)"},
			&cli.StringSliceFlag{Name: "key", Usage: "trusted public key `FILE`: OpenPGP with --release, PEM with --registry (repeatable)"},
			&cli.StringFlag{Name: "bakery-image", Usage: "`URL` of bakery's own extension (bakery image self), with --registry"},
			&cli.BoolFlag{Name: "insecure", Usage: "with --registry on a loopback address: plain HTTP"},
			&cli.StringFlag{Name: "arch", Usage: "the node's systemd architecture (default: this machine's)"},
			&cli.BoolFlag{Name: "ignition", Usage: "write Ignition JSON instead of Butane YAML"},
			&cli.StringFlag{Name: "out", Usage: "write to `FILE` instead of stdout"},
		},
		Action: runButane,
	}
}

func runButane(ctx context.Context, cmd *cli.Command) error {
	if cmd.NArg() == 0 {
		return usagef("butane takes the extensions to install (see bakery butane --help)")
	}
	if (cmd.String("release") == "") == (cmd.String("registry") == "") {
		return usagef("give --release URL or --registry HOST/NS (one of them)")
	}
	if len(cmd.StringSlice("key")) == 0 {
		return usagef("--key: a node trusts only what its keys signed; give the public key")
	}
	arch := sysext.HostArch()
	if a := cmd.String("arch"); a != "" {
		var err error
		if arch, err = sysext.ArchByName(a); err != nil {
			return usagef("--arch: %v", err)
		}
	}
	var (
		cfg provision.Config
		err error
	)
	if cmd.String("release") != "" {
		cfg, err = butaneRelease(ctx, cmd, arch)
	} else {
		cfg, err = butaneRegistry(ctx, cmd, arch)
	}
	if err != nil {
		return err
	}
	var out []byte
	if cmd.Bool("ignition") {
		out, err = cfg.Ignition()
	} else {
		out, err = cfg.Butane()
	}
	if err != nil {
		return err
	}
	if p := cmd.String("out"); p != "" {
		return atomicfile.WriteFile(p, out, 0o644)
	}
	_, err = os.Stdout.Write(out)
	return err
}

// butaneRelease reads the release directory, verified, and pins the
// newest image of each extension.
func butaneRelease(ctx context.Context, cmd *cli.Command, arch sysext.Arch) (provision.Config, error) {
	if cmd.String("bakery-image") != "" || cmd.Bool("insecure") {
		return provision.Config{}, usagef("--bakery-image and --insecure go with --registry")
	}
	if _, err := release.CheckURL(cmd.String("release")); err != nil {
		return provision.Config{}, usagef("--release: %v", err)
	}
	var keys []byte
	for _, p := range cmd.StringSlice("key") {
		kr, err := pgp.LoadKeyring(p)
		if err != nil {
			return provision.Config{}, err
		}
		bin, err := kr.Binary()
		if err != nil {
			return provision.Config{}, err
		}
		keys = append(keys, bin...)
	}
	keyring, err := pgp.ParseKeyring(keys)
	if err != nil {
		return provision.Config{}, err
	}
	ix, err := release.Open(ctx, http.DefaultClient, cmd.String("release"), keyring)
	if err != nil {
		return provision.Config{}, err
	}
	var images []provision.Image
	for _, name := range cmd.Args().Slice() {
		if err := sysext.CheckName(name); err != nil {
			return provision.Config{}, usagef("extension %v", err)
		}
		file, _, err := ix.Newest(name, arch.Name)
		if err != nil {
			return provision.Config{}, err
		}
		img, err := pinImage(file, func(f *os.File, h hash.Hash) error {
			return ix.Download(ctx, file, f, h)
		})
		if err != nil {
			return provision.Config{}, err
		}
		if img.Name != name || img.arch != arch.Name {
			return provision.Config{}, fmt.Errorf("%s holds extension %q for %s, not %q for %s", ix.URL(file), img.Name, img.arch, name, arch.Name)
		}
		img.URL = ix.URL(file)
		images = append(images, img.Image)
	}
	return provision.ReleaseNode(ix.BaseURL, keys, images)
}

// butaneRegistry pins bakery's own image and writes sync's configuration.
func butaneRegistry(ctx context.Context, cmd *cli.Command, arch sysext.Arch) (provision.Config, error) {
	reg := cmd.String("registry")
	host, _, _ := strings.Cut(reg, "/")
	if !strings.Contains(reg, "/") || host == "" {
		return provision.Config{}, usagef("--registry %q: give HOST[:PORT]/NAMESPACE", reg)
	}
	if err := checkRegistry(reg); err != nil {
		return provision.Config{}, err
	}
	if cmd.Bool("insecure") && !release.IsLoopback(hostname(host)) {
		return provision.Config{}, usagef("--insecure: plain HTTP only to a loopback registry, not %s", host)
	}
	u := cmd.String("bakery-image")
	if u == "" {
		return provision.Config{}, usagef("--bakery-image URL: the node gets bakery as an extension (bakery image self, published where Ignition can fetch it)")
	}
	if _, err := release.CheckURL(u); err != nil {
		return provision.Config{}, usagef("--bakery-image: %v", err)
	}
	keys := map[string][]byte{}
	for _, p := range cmd.StringSlice("key") {
		data, _, err := sign.ReadPublicKey(p)
		if err != nil {
			return provision.Config{}, err
		}
		if _, dup := keys[filepath.Base(p)]; dup {
			return provision.Config{}, usagef("--key: two keys named %s", filepath.Base(p))
		}
		keys[filepath.Base(p)] = data
	}
	sync := merge.Config{Registry: reg, Insecure: cmd.Bool("insecure")}
	for _, spec := range cmd.Args().Slice() {
		e := merge.ConfigExtension{Name: spec}
		if name, digest, ok := strings.Cut(spec, "@"); ok {
			e = merge.ConfigExtension{Name: name, Digest: digest}
		} else if name, tag, ok := strings.Cut(spec, ":"); ok {
			e = merge.ConfigExtension{Name: name, Tag: tag}
		}
		sync.Extensions = append(sync.Extensions, e)
	}
	file := path.Base(u)
	bakery, err := pinImage(file, func(f *os.File, h hash.Hash) error {
		_, err := download.Get(ctx, http.DefaultClient, u, download.File(f, h), download.Options{Size: -1, MaxSize: release.MaxImageSize})
		return err
	})
	if err != nil {
		return provision.Config{}, fmt.Errorf("--bakery-image %s: %w", u, err)
	}
	if want := sysext.ImageFile(selfimage.Name, bakery.version, arch.Name); bakery.arch != arch.Name || file != want {
		return provision.Config{}, fmt.Errorf("--bakery-image %s holds bakery %s for %s: want %s, the image for a %s node", u, bakery.version, bakery.arch, want, arch.Name)
	}
	bakery.URL = u
	return provision.RegistryNode(bakery.Image, sync, keys)
}

// hostname is host without its port.
func hostname(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return strings.Trim(host, "[]")
}

// pinned is an image fetched and inspected, with its sha512.
type pinned struct {
	provision.Image
	version, arch string
}

// pinImage downloads an image with fetch into a temporary file, feeding
// the sha512 it is pinned by as it arrives, and inspects it.
func pinImage(file string, fetch func(*os.File, hash.Hash) error) (pinned, error) {
	f, err := os.CreateTemp("", "bakery-butane-")
	if err != nil {
		return pinned{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	h := sha512.New()
	if err := fetch(f, h); err != nil {
		return pinned{}, err
	}
	info, err := inspect.Image(f.Name())
	if err != nil {
		return pinned{}, fmt.Errorf("%s: %w", file, err)
	}
	c, err := sysext.ClassByName(info.Class)
	if err != nil {
		return pinned{}, err
	}
	return pinned{
		Image:   provision.Image{Name: info.Name, Class: c, File: file, SHA512: hex.EncodeToString(h.Sum(nil))},
		version: info.Release[c.VersionField],
		arch:    info.Release["ARCHITECTURE"],
	}, nil
}
