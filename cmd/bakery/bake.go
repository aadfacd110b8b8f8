package main

import (
	"context"
	"crypto"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/sysext-bakery/bakery/bakery"
	"github.com/sysext-bakery/bakery/internal/bytesize"
	"github.com/sysext-bakery/bakery/internal/join"
	"github.com/sysext-bakery/bakery/recipes"
	"github.com/sysext-bakery/bakery/registry"
	"github.com/sysext-bakery/bakery/sign"
	"github.com/sysext-bakery/bakery/sources"
	"github.com/sysext-bakery/bakery/stage"
	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/formats"
)

// buildFlags are the image-writing flags shared by bake and image create;
// the values they take come from the format table.
func buildFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "format", Value: formats.Default().Name(), Usage: "image file system: " + join.Or(formats.Names())},
		&cli.StringFlag{Name: "compression", Usage: compressionUsage()},
		&cli.IntFlag{Name: "level", Usage: "compression level (0: the compressor's default)"},
		&cli.StringFlag{Name: "builder", Usage: builderUsage()},
		&cli.Int64Flag{Name: "epoch", Value: -1, Usage: "timestamp of every file, seconds since 1970 (default: $SOURCE_DATE_EPOCH, else the recipe's last commit time, else 0)"},
		&cli.StringFlag{Name: "key", Usage: "private key (PEM) signing, with --cert, the dm-verity root hash: into the verity-sig partition of a ddi, else into NAME.roothash.p7s beside the image (with NAME.verity, NAME.roothash); bake --push also signs the pushed index with it"},
		&cli.StringFlag{Name: "cert", Usage: "with --key: the key's X.509 certificate (PEM), what nodes trust in /etc/verity.d/"},
	}
}

// compressionUsage lists every builder's compressions and each format's
// default: "zstd, gzip, xz, lz4 or none (default: zstd for squashfs, none
// for erofs)".
func compressionUsage() string {
	var all, defaults []string
	for _, f := range formats.All() {
		for _, b := range f.Builders() {
			for _, c := range b.Compressions() {
				all = appendNew(all, string(c))
			}
		}
		defaults = append(defaults, fmt.Sprintf("%s for %s", f.Builders()[0].Compressions()[0], f.Name()))
	}
	return join.Or(all) + " (default: " + strings.Join(defaults, ", ") + ")"
}

// builderUsage lists every builder and which one each format and
// compression gets by default: "native, mksquashfs or mkfs.erofs
// (default: native; mkfs.erofs for erofs lz4)".
func builderUsage() string {
	var all, defaults []string
	for _, f := range formats.All() {
		for i, b := range f.Builders() {
			all = appendNew(all, b.Name())
			if i == 0 {
				defaults = appendNew(defaults, b.Name())
				continue
			}
			for _, c := range b.Compressions() {
				if d, _ := sysext.SelectBuilder(f, "", c); d.Name() == b.Name() {
					defaults = appendNew(defaults, fmt.Sprintf("%s for %s %s", b.Name(), f.Name(), c))
				}
			}
		}
	}
	return join.Or(all) + " (default: " + strings.Join(defaults, "; ") + ")"
}

// appendNew appends s to list unless it is there already.
func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// buildOptions reads buildFlags into the format, its builder and the
// options; a compression left out is the builder's default.
func buildOptions(cmd *cli.Command, epoch int64) (sysext.Format, sysext.Builder, sysext.BuildOptions, error) {
	opts := sysext.BuildOptions{
		Compression: sysext.Compression(cmd.String("compression")),
		Level:       int(cmd.Int("level")),
		Epoch:       epoch,
		AllRoot:     true,
	}
	format, err := formats.ByName(cmd.String("format"))
	if err != nil {
		return nil, nil, opts, usagef("%v", err)
	}
	b, err := sysext.SelectBuilder(format, cmd.String("builder"), opts.Compression)
	if err != nil {
		return nil, nil, opts, usagef("%v", err)
	}
	if opts.Compression == "" {
		opts.Compression = b.Compressions()[0]
	}
	if opts.Signing, err = signing(cmd); err != nil {
		return nil, nil, opts, err
	}
	return format, b, opts, nil
}

// signing loads --key and --cert, which sign an image's verity root hash.
// bake --push signs the pushed index with --key, which then needs no
// --cert.
func signing(cmd *cli.Command) (*sysext.Signing, error) {
	key, cert := cmd.String("key"), cmd.String("cert")
	switch {
	case key == "" && cert == "", cert == "" && cmd.Bool("push"):
		return nil, nil
	case key == "" || cert == "":
		return nil, usagef("--key and --cert go together: the private key and its certificate (bakery keygen --x509 writes both) sign the verity root hash; with bake --registry HOST/ns --push, --key alone signs the pushed index")
	}
	k, c, err := sign.LoadCertificateKey(key, cert)
	if err != nil {
		return nil, usagef("%v", err)
	}
	return &sysext.Signing{Key: k, Cert: c}, nil
}

func bakeCommand() *cli.Command {
	return &cli.Command{
		Name:      "bake",
		Usage:     "build NAME-VERSION-ARCH.raw images and SHA256SUMS from a recipe",
		ArgsUsage: "RECIPE",
		Description: `RECIPE is a recipe.yaml, a folder holding one, or a name from the shipped catalog.
Sources are fetched once into $XDG_CACHE_HOME/bakery and verified by sha256 before use;
the same recipe and inputs give byte-identical images. Each image's inputs digest
(the recipe file, version, arch, OS release, image options and every source's
digest) is printed and listed in DIR/INPUTS, which bakery push publishes as the
org.bakery.sysext.inputs-digest annotation. Sources are staged in a directory
under $TMPDIR (default /tmp), removed afterwards; a tmpfs there stages many small
files much faster than a disk file system.

A kernel-bound recipe (one using {{.OSID}} or {{.OSVersion}}) is baked for one OS
release, given with --os and --os-version. --mirror FROM=TO rewrites source URLs
that start with FROM (repeatable; the longest FROM wins), for air-gapped builds.

With --registry HOST/ns --push, the images are pushed to HOST/ns/NAME (tags: the
version and latest; signed with --key) unless every arch's inputs digest is
already published there (read from the namespace's catalog): then nothing is
baked or pushed, and bake says so. --push publishes one index holding every arch,
so it bakes all the recipe's arches; to bake arches on several machines, bake
each with --arch and push their output directories together with bakery push.

--format ddi bakes Discoverable Disk Images as systemd-repart --make-ddi=sysext
makes them (erofs, its dm-verity hash tree, and with --key and --cert the signed
root hash that systemd checks against /etc/verity.d/); --key and --cert with a
plain image write the dm-verity sidecars NAME.verity, NAME.roothash and
NAME.roothash.p7s beside it.

Examples:
  bakery bake testdata/hello --out out/
  bakery bake testdata/hello --format ddi --key release.key --cert release.crt --out out/
  bakery bake recipe.yaml --version v1.32.2 --arch x86-64 --compression xz --json
  bakery bake nvidia-driver --os flatcar --os-version 4081.2.0 --mirror https://modules.invalid/=https://builds.example.com/
  bakery bake kubernetes --mirror https://dl.k8s.io/=https://mirror.internal/k8s/
  bakery bake kubernetes --registry ghcr.io/me/sysext --push --key bakery.key`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "version", Usage: "version to bake (default: the recipe's version)"},
			&cli.StringSliceFlag{Name: "arch", Usage: "systemd architectures, comma separated (default: the recipe's arches)"},
			&cli.StringFlag{Name: "os", Usage: "the OS release ID a kernel-bound recipe is baked for, such as flatcar"},
			&cli.StringFlag{Name: "os-version", Usage: "the OS release VERSION_ID a kernel-bound recipe is baked for"},
			mirrorFlag,
			&cli.StringFlag{Name: "out", Value: ".", Usage: "output directory"},
			cacheDirFlag,
			&cli.StringFlag{Name: "max-source-size", Value: bytesize.Format(sources.DefaultMaxSourceSize), Usage: "refuse a source larger than this, such as 512MiB"},
			allowFileURLsFlag,
			&cli.IntFlag{Name: "max-entries", Value: stage.DefaultMaxEntries, Usage: "refuse a source with more members (files, directories, links) than this"},
			registryFlag,
			&cli.BoolFlag{Name: "push", Usage: "push the images to --registry, unless their inputs digests are published there already"},
			insecureFlag, jsonFlag,
		}, buildFlags()...),
		Action: runBake,
	}
}

func runBake(ctx context.Context, cmd *cli.Command) error {
	if cmd.NArg() != 1 {
		return usagef("bake takes one RECIPE argument (see bakery bake --help)")
	}
	push, target := cmd.Bool("push"), cmd.String("registry")
	switch {
	case push && target == "":
		return usagef("--push needs --registry HOST/ns, the namespace to push to")
	case !push && target != "":
		return usagef("--registry names where --push publishes; add --push")
	}
	if err := checkRegistry(target); err != nil {
		return err
	}
	r, err := recipes.Resolve(cmd.Args().First())
	if err != nil {
		return err
	}
	epoch, err := sourceDateEpoch(cmd.Int64("epoch"), r.Path)
	if err != nil {
		return err
	}
	format, builder, buildOpts, err := buildOptions(cmd, epoch)
	if err != nil {
		return err
	}
	fetcher, err := newFetcher(cmd)
	if err != nil {
		return err
	}
	if fetcher.MaxSize, err = bytesize.Parse(cmd.String("max-source-size")); err != nil {
		return usagef("--max-source-size: %v", err)
	}
	maxEntries := int(cmd.Int("max-entries"))
	if maxEntries < 1 {
		return usagef("--max-entries %d: must be 1 or more", maxEntries)
	}
	opts := bakery.Options{
		Version:    cmd.String("version"),
		Arches:     splitList(cmd.StringSlice("arch")),
		OS:         recipes.OS{ID: cmd.String("os"), Version: cmd.String("os-version")},
		OutDir:     cmd.String("out"),
		Format:     format,
		Builder:    builder,
		Build:      buildOpts,
		Fetcher:    fetcher,
		MaxEntries: maxEntries,
	}
	// Whatever Plan refuses (an arch, version or image option the recipe or
	// bake cannot use) is a mistake in the command line, found before
	// anything is fetched.
	builds, err := bakery.Plan(r, opts)
	if err != nil {
		return usagef("%v", err)
	}
	if push && len(builds) != len(r.Arches) {
		return usagef("--push publishes one index holding every arch of the recipe (%s); drop --arch, or bake each arch with --arch and push the output directories together with bakery push", strings.Join(r.Arches, ", "))
	}
	var key crypto.Signer
	if k := cmd.String("key"); k != "" {
		if key, err = sign.LoadPrivateKey(k); err != nil {
			return err
		}
	}
	if !cmd.Bool("json") {
		opts.Progress = stepPrinter{}
	}
	if !push {
		res, err := bakery.Bake(ctx, r, opts)
		if err != nil {
			return err
		}
		if cmd.Bool("json") {
			return printJSON(os.Stdout, res)
		}
		printBaked(res)
		return nil
	}
	return bakeAndPush(ctx, cmd, r, builds, opts, target, key)
}

// bakeResult is what bake --push did, for --json: the bake's result
// (empty when skipped), each arch's job with its inputs digest and
// whether it was published already, and the push.
type bakeResult struct {
	*bakery.Result
	Jobs    []bakery.Job         `json:"jobs"`
	Skipped bool                 `json:"skipped"`
	Push    *registry.PushResult `json:"push,omitempty"`
}

// bakeAndPush bakes r's builds and pushes them to target/NAME, or does
// neither when every build's inputs digest is published there.
func bakeAndPush(ctx context.Context, cmd *cli.Command, r *recipes.Recipe, builds []*recipes.Build, opts bakery.Options, target string, key crypto.Signer) error {
	jobs, err := bakery.Jobs(ctx, builds, func(*recipes.Recipe) bakery.Options { return opts })
	if err != nil {
		return err
	}
	ropts := registryOptions(cmd)
	cat, err := registry.Catalog(ctx, target, append(ropts, registry.WithoutListing())...)
	if err != nil {
		return fmt.Errorf("read what %s has published: %w", target, err)
	}
	bakery.SkipPublished(jobs, func(j bakery.Job) bool {
		_, ok := cat.Catalog.Published(j.Name, j.Arch, j.InputsDigest)
		return ok
	})
	out := bakeResult{Result: &bakery.Result{Images: []bakery.Image{}}, Jobs: jobs, Skipped: jobs[0].Skip}
	if out.Skipped {
		v, _ := cat.Catalog.Published(jobs[0].Name, jobs[0].Arch, jobs[0].InputsDigest)
		stderrf("%s %s: every arch's inputs digest is published in %s/%s:%s (%s): nothing to bake or push\n", r.Name, jobs[0].Version, target, r.Name, v.Tag, v.Digest)
		if cmd.Bool("json") {
			return printJSON(os.Stdout, out)
		}
		return nil
	}
	if out.Result, err = bakery.Bake(ctx, r, opts); err != nil {
		return err
	}
	var images []string
	inputs := map[string]string{}
	for _, img := range out.Result.Images {
		images = append(images, img.Path)
		inputs[img.Architecture] = img.InputsDigest
	}
	ropts = append(ropts, registry.WithInputsDigests(inputs))
	if key != nil {
		ropts = append(ropts, registry.WithSigner(key))
	}
	pushed, err := registry.Push(ctx, target+"/"+r.Name, images, ropts...)
	if err != nil {
		return err
	}
	out.Push = &pushed
	if cmd.Bool("json") {
		return printJSON(os.Stdout, out)
	}
	printBaked(out.Result)
	stderrf("pushed %s %s to %s@%s (tags: %s)\n", pushed.Name, pushed.Version, pushed.Repository, pushed.IndexDigest, strings.Join(pushed.Tags, ", "))
	return nil
}

// printBaked shows a bake's result on stderr.
func printBaked(res *bakery.Result) {
	for _, img := range res.Images {
		stderrf("%s  %s  %d bytes (inputs %s)\n", img.SHA256, img.Path, img.Size, img.InputsDigest)
	}
	stderrf("checksums: %s\ninputs: %s\n", res.Checksums, res.Inputs)
}

// stepPrinter shows the pipeline's steps on stderr.
type stepPrinter struct{}

func (stepPrinter) Step(arch, step, detail string) {
	if arch != "" {
		arch = "[" + arch + "] "
	}
	stderrf("%s%s: %s\n", arch, step, detail)
}

// sourceDateEpoch picks the image timestamp: --epoch, else
// $SOURCE_DATE_EPOCH, else the last commit time of the recipe file, else 0.
func sourceDateEpoch(flag int64, recipePath string) (int64, error) {
	if flag >= 0 {
		return flag, nil
	}
	if env := os.Getenv("SOURCE_DATE_EPOCH"); env != "" {
		n, err := strconv.ParseInt(env, 10, 64)
		if err != nil || n < 0 {
			return 0, usagef("SOURCE_DATE_EPOCH=%q is not a number of seconds since 1970", env)
		}
		return n, nil
	}
	if recipePath == "" {
		return 0, nil
	}
	out, err := exec.Command("git", "-C", filepath.Dir(recipePath), "log", "-1", "--format=%ct", "--", filepath.Base(recipePath)).Output()
	if n, perr := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && perr == nil {
		return n, nil
	}
	return 0, nil
}

// splitList flattens comma-separated flag values.
func splitList(values []string) []string {
	var out []string
	for _, v := range values {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// Flags bake and plan share.
var (
	// mirrorFlag rewrites source URL and image reference prefixes.
	mirrorFlag        = &cli.StringSliceFlag{Name: "mirror", Usage: "FROM=TO: fetch sources whose URL (or oci reference) starts with FROM from TO instead (repeatable)"}
	cacheDirFlag      = &cli.StringFlag{Name: "cache-dir", Usage: "download cache (default: $XDG_CACHE_HOME/bakery)"}
	allowFileURLsFlag = &cli.BoolFlag{Name: "allow-file-urls", Usage: "let file:// sources read any file you can, not only files in the recipe's folder"}
	registryFlag      = &cli.StringFlag{Name: "registry", Usage: "the registry namespace (`HOST/ns`) whose catalog says what is published"}
)

// newFetcher is the Fetcher of --cache-dir, --allow-file-urls and --mirror.
func newFetcher(cmd *cli.Command) (*sources.Fetcher, error) {
	cacheDir := cmd.String("cache-dir")
	if cacheDir == "" {
		var err error
		if cacheDir, err = sources.DefaultCacheDir(); err != nil {
			return nil, err
		}
	}
	mirrors, err := mirrors(cmd)
	if err != nil {
		return nil, err
	}
	return &sources.Fetcher{Cache: sources.Cache{Dir: cacheDir}, AllowFileURLs: cmd.Bool("allow-file-urls"), Mirrors: mirrors}, nil
}

// checkRegistry refuses a --registry that is not HOST[:port][/ns] (a
// usage error); "" passes.
func checkRegistry(target string) error {
	if target == "" {
		return nil
	}
	if err := registry.CheckNamespace(target); err != nil {
		return usagef("--registry: %v", err)
	}
	return nil
}

// mirrors reads the --mirror flags.
func mirrors(cmd *cli.Command) ([]sources.Mirror, error) {
	var out []sources.Mirror
	for _, s := range cmd.StringSlice("mirror") {
		m, err := sources.ParseMirror(s)
		if err != nil {
			return nil, usagef("--mirror: %v", err)
		}
		out = append(out, m)
	}
	return out, nil
}
