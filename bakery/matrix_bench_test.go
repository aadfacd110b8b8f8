package bakery

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sysext-bakery/bakery/internal/fixture"
	"github.com/sysext-bakery/bakery/recipes"
	"github.com/sysext-bakery/bakery/sysext/squashfs"
)

// benchCatalogSize is the catalog the plan benchmark plans: as large as
// the shipped catalog is meant to be.
const benchCatalogSize = 35

// syntheticCatalog writes n recipes shaped like the catalog's (two url
// sources checked by sha256-url, one a SHA256SUMS list and one a
// per-file .sha256, and a files tree with a unit and a config), serves
// their checksum documents, and returns the recipe files and the server.
func syntheticCatalog(b *testing.B, n int) ([]string, *fixture.Server) {
	b.Helper()
	docs := map[string][]byte{}
	srv := fixture.Serve(b, docs)
	dir := b.TempDir()
	var paths []string
	for i := range n {
		name := fmt.Sprintf("tool%02d", i)
		var list strings.Builder
		for _, goarch := range []string{"amd64", "arm64"} {
			fmt.Fprintf(&list, "%064x  %s-1.%d.0-linux-%s.tar.gz\n", i*4+len(goarch), name, i, goarch)
			docs[fmt.Sprintf("/%s/%s-%s.sha256", name, name, goarch)] = fmt.Appendf(nil, "%064x\n", i*4+2+len(goarch))
		}
		docs["/"+name+"/SHA256SUMS"] = []byte(list.String())
		rdir := filepath.Join(dir, name)
		for p, body := range map[string]string{
			"files/usr/lib/systemd/system/" + name + ".service": "[Service]\nExecStart=/usr/bin/" + name + "\n",
			"files/usr/share/" + name + "/config.toml":          "listen = \"127.0.0.1\"\n",
		} {
			os.MkdirAll(filepath.Join(rdir, filepath.Dir(p)), 0o755)
			if err := os.WriteFile(filepath.Join(rdir, p), []byte(body), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		recipe := fmt.Sprintf(`name: %[1]s
description: Synthetic tool %[1]s
license: Apache-2.0
version: "1.%[2]d.0"
arches: [x86-64, arm64]
release: {sysext-level: "1.0", reload-manager: true}
sources:
  - url: %[3]s/%[1]s/%[1]s-{{.Version}}-linux-{{.GoArch}}.tar.gz
    sha256-url: %[3]s/%[1]s/SHA256SUMS
    extract: {strip-components: 1, include: [bin], to: /usr}
  - url: %[3]s/%[1]s/%[1]s-{{.GoArch}}
    sha256-url: %[3]s/%[1]s/%[1]s-{{.GoArch}}.sha256
    install: {to: /usr/bin/%[1]s-helper, mode: "0755"}
  - files: files/
`, name, i, srv.URL)
		p := filepath.Join(rdir, "recipe.yaml")
		if err := os.WriteFile(p, []byte(recipe), 0o644); err != nil {
			b.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths, srv
}

// planCatalog is what bakery plan does for a catalog: parse every recipe,
// expand the matrix and compute every job's inputs digest.
func planCatalog(b *testing.B, paths []string, opts Options) []Job {
	var rs []*recipes.Recipe
	for _, p := range paths {
		r, err := recipes.Load(p)
		if err != nil {
			b.Fatal(err)
		}
		rs = append(rs, r)
	}
	builds, err := Matrix(rs, nil)
	if err != nil {
		b.Fatal(err)
	}
	jobs, err := Jobs(context.Background(), builds, func(*recipes.Recipe) Options { return opts })
	if err != nil {
		b.Fatal(err)
	}
	return jobs
}

// BenchmarkPlan plans a synthetic catalog of 35 recipes (70 jobs) with
// every checksum document cached: the first plan fetches each document
// once, the measured ones fetch nothing. bakery plan of the whole catalog
// must take under a second.
func BenchmarkPlan(b *testing.B) {
	paths, srv := syntheticCatalog(b, benchCatalogSize)
	opts := bakeOptions(b, b.TempDir(), squashfs.Builder{}, squashfsFormat)
	if jobs := planCatalog(b, paths, opts); len(jobs) != 2*benchCatalogSize {
		b.Fatalf("%d jobs, want %d", len(jobs), 2*benchCatalogSize)
	}
	fetched := srv.Requests.Load()
	if fetched != 3*benchCatalogSize {
		b.Fatalf("the first plan made %d requests, want %d (each checksum document once)", fetched, 3*benchCatalogSize)
	}
	for b.Loop() {
		planCatalog(b, paths, opts)
	}
	if n := srv.Requests.Load() - fetched; n != 0 {
		b.Fatalf("plans with every document cached made %d requests", n)
	}
}
