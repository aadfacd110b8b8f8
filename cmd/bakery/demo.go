package main

import (
	"bytes"
	"context"
	"crypto"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/sysext-bakery/bakery/bakery"
	"github.com/sysext-bakery/bakery/page"
	"github.com/sysext-bakery/bakery/recipes"
	"github.com/sysext-bakery/bakery/registry"
	"github.com/sysext-bakery/bakery/release"
	"github.com/sysext-bakery/bakery/sign"
	"github.com/sysext-bakery/bakery/sign/pgp"
	"github.com/sysext-bakery/bakery/sources"
	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/formats"
)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "bake, inspect, publish, verify, pull and merge the sample extension",
		Description: `Runs the whole main job on the sample recipe (testdata/hello, relative to the
current directory, or --recipe): bakes both arches, inspects each image, bakes
again in another directory with another umask to check that the bytes are
identical, writes a signed release directory for stock nodes'
systemd-sysupdate (OUT/release) and checks it over loopback as a node would,
signs and pushes them to an embedded registry on loopback,
verifies the signature and every digest, lists the catalog and reads its
web page, pulls this machine's image and, as root, merges it into a scratch
root in a private mount namespace and shows status; last it bakes a
signed DDI (dm-verity, certificate-signed root hash) and inspects it.

Example:
  make demo            # installs what is needed, builds bakery, runs this
  bakery demo --out demo-out`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "recipe", Value: "testdata/hello", Usage: "the recipe to bake"},
			&cli.StringFlag{Name: "out", Value: "demo-out", Usage: "where the images go"},
			&cli.StringFlag{Name: "builder", Usage: "builder for the images (default: " + formats.Default().Builders()[0].Name() + ")"},
		},
		Action: runDemo,
	}
}

func runDemo(ctx context.Context, cmd *cli.Command) error {
	r, err := recipes.Resolve(cmd.String("recipe"))
	if err != nil {
		return fmt.Errorf("%w (run the demo from the repository root, or pass --recipe)", err)
	}
	format := formats.Default()
	builder, err := sysext.SelectBuilder(format, cmd.String("builder"), "")
	if err != nil {
		return usagef("%v", err)
	}
	build := sysext.BuildOptions{Compression: builder.Compressions()[0], AllRoot: true}
	cacheDir, err := os.MkdirTemp("", "bakery-demo-cache-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(cacheDir)
	opts := bakery.Options{
		Arches:   []string{"x86-64", "arm64"},
		OutDir:   cmd.String("out"),
		Format:   format,
		Builder:  builder,
		Build:    build,
		Fetcher:  &sources.Fetcher{Cache: sources.Cache{Dir: cacheDir}},
		Progress: stepPrinter{},
	}
	stderrf("== 1. bake %s (%s) for %v with %s\n", r.Name, r.Path, opts.Arches, builder.Name())
	first, err := bakery.Bake(ctx, r, opts)
	if err != nil {
		return err
	}
	stderrf("\n== 2. inspect\n")
	for _, img := range first.Images {
		if err := printInspect(os.Stderr, img.Path); err != nil {
			return err
		}
	}
	stderrf("\n== 3. reproducibility: bake again elsewhere with umask 077\n")
	again := opts
	if again.OutDir, err = os.MkdirTemp("", "bakery-demo-again-"); err != nil {
		return err
	}
	defer os.RemoveAll(again.OutDir)
	again.Progress = nil
	old := syscall.Umask(0o077)
	second, err := bakery.Bake(ctx, r, again)
	syscall.Umask(old)
	if err != nil {
		return err
	}
	for i, img := range first.Images {
		other := second.Images[i]
		if img.SHA256 != other.SHA256 {
			return fmt.Errorf("not reproducible: %s has sha256 %s, the second bake %s", filepath.Base(img.Path), img.SHA256, other.SHA256)
		}
		stderrf("identical: %s %s\n", img.SHA256, filepath.Base(img.Path))
	}
	var paths []string
	for _, img := range first.Images {
		paths = append(paths, img.Path)
	}
	if err := demoRelease(ctx, filepath.Join(opts.OutDir, "release"), r.Name, paths); err != nil {
		return err
	}
	pulled, err := demoPublish(ctx, r.Name+":"+first.Images[0].Version, paths)
	if err != nil {
		return err
	}
	if err := demoMerge(ctx, pulled); err != nil {
		return err
	}
	if err := demoDDI(ctx, r, opts); err != nil {
		return err
	}
	stderrf("\ndemo: ok — images in %s\n", opts.OutDir)
	return nil
}

// demoDDI bakes this machine's image as a Discoverable Disk Image whose
// dm-verity root hash is signed with a fresh certificate, the image that a
// node with only systemd checks against /etc/verity.d, and inspects it.
func demoDDI(ctx context.Context, r *recipes.Recipe, opts bakery.Options) error {
	stderrf("\n== 10. a signed DDI for nodes that run only systemd (certificate in /etc/verity.d)\n")
	key, err := sign.GenerateKey(sign.ECDSAP256)
	if err != nil {
		return err
	}
	pemCert, err := sign.SelfSignedCert(key, "bakery demo")
	if err != nil {
		return err
	}
	cert, err := sign.ParseCertificate(pemCert)
	if err != nil {
		return err
	}
	format, err := formats.ByName("ddi")
	if err != nil {
		return err
	}
	opts.Format, opts.Builder = format, format.Builders()[0]
	opts.Build.Compression = opts.Builder.Compressions()[0]
	opts.Build.Signing = &sysext.Signing{Key: key, Cert: cert}
	opts.Arches, opts.Progress = []string{sysext.HostArch().Name}, nil
	if opts.OutDir, err = os.MkdirTemp("", "bakery-demo-ddi-"); err != nil {
		return err
	}
	defer os.RemoveAll(opts.OutDir)
	res, err := bakery.Bake(ctx, r, opts)
	if err != nil {
		return err
	}
	return printInspect(os.Stderr, res.Images[0].Path)
}

// demoPublish signs and pushes the images to an embedded registry,
// verifies, lists the catalog and pulls this machine's image back; it
// returns the pulled file.
func demoPublish(ctx context.Context, nameTag string, images []string) (string, error) {
	dir, err := os.MkdirTemp("", "bakery-demo-registry-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	key, err := sign.GenerateKey(sign.ECDSAP256)
	if err != nil {
		return "", err
	}
	addr, stop, err := startRegistry(ctx, filepath.Join(dir, "storage"), page.Config{Keys: []crypto.PublicKey{key.Public()}, Insecure: true})
	if err != nil {
		return "", err
	}
	defer stop()
	ref := addr + "/demo/" + nameTag
	stderrf("\n== 5. publish: embedded registry at %s, push signed index %s\n", addr, ref)
	pushed, err := registry.Push(ctx, ref, images, registry.WithSigner(key), registry.WithInsecure())
	if err != nil {
		return "", err
	}
	stderrf("index %s, signature %s, tags %v\n", pushed.IndexDigest, pushed.Signature, pushed.Tags)
	stderrf("\n== 6. verify signature → index → manifests → layers, offline key\n")
	verified, err := registry.Verify(ctx, ref, registry.WithKeys(key.Public()), registry.WithInsecure())
	if err != nil {
		return "", err
	}
	for _, m := range verified.Manifests {
		stderrf("verified %s: manifest %s, layer %s\n", m.Arch, m.ManifestDigest, m.LayerDigest)
	}
	stderrf("\n== 7. catalog %s/demo\n", addr)
	cat, err := registry.Catalog(ctx, addr+"/demo", registry.WithKeys(key.Public()), registry.WithInsecure())
	if err != nil {
		return "", err
	}
	for _, e := range cat.Catalog.Extensions {
		for _, v := range e.Versions {
			stderrf("%s %s signed=%v arches=%d (catalog %s, verified=%v)\n", e.Name, v.Version, v.Signed, len(v.Arches), cat.Source, cat.Verified)
		}
	}
	if err := demoPage(ctx, addr); err != nil {
		return "", err
	}
	out, err := os.MkdirTemp("", "bakery-demo-pulled-")
	if err != nil {
		return "", err
	}
	stderrf("\n== 8. pull for this machine (%s), verified before it is written\n", sysext.HostArch().Name)
	res, err := registry.Pull(ctx, ref, registry.WithKeys(key.Public()), registry.WithInsecure(), registry.WithOutDir(out))
	if err != nil {
		return "", err
	}
	stderrf("pulled %s (%s, verified=%v)\n", res.Path, res.Digest, res.Verified)
	return res.Path, nil
}

// demoPage reads the catalog page the registry serves and checks that it
// shows the catalog as verified.
func demoPage(ctx context.Context, addr string) error {
	url := "http://" + addr + "/"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("catalog page: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("catalog page: %w", err)
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("Signed catalog verified")) {
		return fmt.Errorf("catalog page %s: HTTP %d, not shown as verified", url, resp.StatusCode)
	}
	stderrf("catalog page: %s (%s), verified\n", url, resp.Request.URL.Path)
	return nil
}

// demoRelease writes a signed release directory for stock nodes'
// systemd-sysupdate, serves it on loopback and checks it as a node would:
// the signature, the newest image for this machine, its sha256.
func demoRelease(ctx context.Context, dir, name string, images []string) error {
	key, err := pgp.Generate("bakery demo", time.Now())
	if err != nil {
		return err
	}
	// The demo's own directory: made anew, so that images of another run
	// (another builder) do not stand in the way of this run's.
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(dir))}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String() + "/"
	stderrf("\n== 4. release: signed directory %s for systemd-sysupdate, served at %s\n", dir, base)
	res, err := release.Write(dir, images, release.Options{BaseURL: base, Key: key})
	if err != nil {
		return err
	}
	stderrf("%d images of %v, %s signed by %s; transfer definitions %v\n", len(res.Images), res.Extensions, release.SumsFile, res.Fingerprint, release.DefinitionFiles(name))
	ix, err := release.Open(ctx, http.DefaultClient, base, key.Public())
	if err != nil {
		return err
	}
	file, version, err := ix.Newest(name, sysext.HostArch().Name)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp("", "bakery-demo-release-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := ix.Download(ctx, file, f); err != nil {
		return err
	}
	stderrf("checked as a node would: signature by %s, newest for %s is %s (%s), sha256 as signed\n", ix.Fingerprint, sysext.HostArch().Name, version, file)
	return nil
}

// startRegistry runs the embedded registry, with the catalog page, on a
// free loopback port until stop is called.
func startRegistry(ctx context.Context, root string, pageConfig page.Config) (addr string, stop func(), err error) {
	ctx, cancel := context.WithCancel(ctx)
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- registry.Serve(ctx, "127.0.0.1:0", root, registry.WithReady(func(a string) { ready <- a }),
			registry.WithPage(func(api http.Handler) http.Handler { return page.ForAPI(api, pageConfig) }))
	}()
	select {
	case addr = <-ready:
		return addr, func() { cancel(); <-done }, nil
	case err = <-done:
		cancel()
		return "", nil, fmt.Errorf("embedded registry: %w", err)
	}
}

// demoMerge merges the pulled image into a scratch root in a private
// mount namespace and shows status, when this runs as root.
func demoMerge(ctx context.Context, image string) error {
	defer os.RemoveAll(filepath.Dir(image))
	stderrf("\n== 9. merge into a scratch root\n")
	if os.Geteuid() != 0 {
		stderrf("skipped: merging needs root (loop devices, overlayfs)\n")
		return nil
	}
	root, err := os.MkdirTemp("", "bakery-demo-root-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	for _, d := range []string{"etc", "usr/bin", "usr/lib", "var/lib/extensions"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(root, "etc/os-release"), []byte("ID=flatcar\nVERSION_ID=4081.2.0\nSYSEXT_LEVEL=1.0\n"), 0o644); err != nil {
		return err
	}
	if err := os.Rename(image, filepath.Join(root, "var/lib/extensions/hello.raw")); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	// One private mount namespace for merge, status and a look at the
	// merged /usr: nothing leaks onto this machine, and the namespace's end
	// takes the mounts and loop devices with it.
	script := `set -e; "$0" merge --root "$1"; "$0" status --root "$1"; echo; cat "$1/usr/share/hello/greeting.txt"; "$0" unmerge --root "$1"`
	cmd := exec.CommandContext(ctx, "unshare", "-m", "--propagation", "private", "sh", "-c", script, self, root)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("merge in a private mount namespace: %w", err)
	}
	return nil
}
