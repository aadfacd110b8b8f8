package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/template"

	"gopkg.in/yaml.v3"

	"github.com/sysext-bakery/bakery/internal/fixture"
	"github.com/sysext-bakery/bakery/recipes"
	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/validate"
)

// catalogDir is the shipped catalog in bakery's source.
const catalogDir = "../../recipes/catalog"

// catalogOS is the OS release kernel-bound catalog recipes are baked for.
var catalogOS = recipes.OS{ID: "flatcar", Version: "4081.2.0"}

// catalogFixture is a catalog recipe's fixture.yaml: what its upstreams
// publish, for TestCatalogBakesOffline to serve.
type catalogFixture struct {
	// Sources describe the recipe's url sources, in recipe order.
	Sources []struct {
		// Sums is the layout of the sha256-url document: "hash" (the hex
		// digest alone), "single" ("HEX  NAME") or "list" (a SHA256SUMS
		// list holding every arch's file and others).
		Sums string `yaml:"sums"`
		// ELF and Text are the archive's members, as upstream names them
		// (templates like the recipe's): ELF ones are executables of the
		// arch, the others text. An install source has neither and is one
		// executable unless File is "text".
		ELF  []string `yaml:"elf"`
		Text []string `yaml:"text"`
		File string   `yaml:"file"`
		// Foreign maps a systemd architecture name to members that are
		// ELF executables of that arch whatever the image's (firmware for
		// another processor: the recipe's validate.foreign-elf).
		Foreign map[string][]string `yaml:"foreign"`
	} `yaml:"sources"`
	// Expect lists image paths (templates) that must exist.
	Expect []string `yaml:"expect"`
}

// TestCatalogBakesOffline bakes every shipped recipe for each of its
// arches from a loopback server standing in for its upstreams (one
// --mirror per upstream host). The server holds archives with the members
// each upstream publishes (ELF stubs of the arch for executables) and
// checksum documents in each upstream's layout, so the recipe's templates,
// checksum lookups and extraction are all exercised; the images must hold
// the expected paths, and every unit's ExecStart= binary.
func TestCatalogBakesOffline(t *testing.T) {
	names := recipes.CatalogNames()
	if len(names) == 0 {
		t.Fatal("the catalog is empty")
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			fx, builds, args := serveCatalogRecipe(t, name)
			out := t.TempDir()
			args = append(args, "--out", out)
			if _, stderr, code := run(t, args...); code != 0 {
				t.Fatalf("bakery %s: exit %d\n%s", strings.Join(args, " "), code, stderr)
			}
			for _, b := range builds {
				checkCatalogImage(t, filepath.Join(out, fmt.Sprintf("%s-%s-%s.raw", name, b.ImageVersion, b.Arch)), b, fx)
			}
		})
	}
}

// BenchmarkCatalogBake bakes three catalog recipes (every arch) from the
// fixture mirror TestCatalogBakesOffline serves: cold, with an empty
// download cache each time, and warm, with every source cached. Run with
// `go test -run '^$' -bench CatalogBake ./cmd/bakery`.
func BenchmarkCatalogBake(b *testing.B) {
	for _, name := range []string{"kubernetes", "containerd", "cilium"} {
		_, _, args := serveCatalogRecipe(b, name)
		bake := func(b *testing.B, cache string) {
			a := append(slices.Clone(args), "--out", b.TempDir(), "--cache-dir", cache)
			if _, stderr, code := run(b, a...); code != 0 {
				b.Fatalf("bakery %s: exit %d\n%s", strings.Join(a, " "), code, stderr)
			}
		}
		b.Run(name+"/cold", func(b *testing.B) {
			for b.Loop() {
				bake(b, b.TempDir())
			}
		})
		b.Run(name+"/warm", func(b *testing.B) {
			cache := b.TempDir()
			bake(b, cache)
			for b.Loop() {
				bake(b, cache)
			}
		})
	}
}

// serveCatalogRecipe serves what the upstreams of the catalog recipe name
// publish, as its fixture.yaml says, on a loopback server, and returns the
// fixture, the recipe's builds and the arguments baking it from there
// (without --out).
func serveCatalogRecipe(t testing.TB, name string) (*catalogFixture, []*recipes.Build, []string) {
	t.Helper()
	r, err := recipes.LoadCatalog(name)
	if err != nil {
		t.Fatal(err)
	}
	fx := readCatalogFixture(t, name)
	docs := map[string][]byte{}
	sums := map[string]*bytes.Buffer{} // sha256-url path → list
	hosts := map[string]bool{}
	var builds []*recipes.Build
	for _, arch := range r.Arches {
		b, err := r.ExpandFor(catalogTarget(r, arch))
		if err != nil {
			t.Fatal(err)
		}
		builds = append(builds, b)
		serveSources(t, b, fx, docs, sums, hosts)
	}
	for p, list := range sums {
		docs[p] = list.Bytes()
	}
	srv := fixture.Serve(t, docs)
	args := []string{"bake", name, "--epoch", "0"}
	if r.KernelBound() {
		args = append(args, "--os", catalogOS.ID, "--os-version", catalogOS.Version)
	}
	for _, h := range slices.Sorted(maps.Keys(hosts)) {
		args = append(args, "--mirror", "https://"+h+"/="+srv.URL+"/"+h+"/")
	}
	return fx, builds, args
}

// catalogTarget is what a catalog recipe is baked for on arch.
func catalogTarget(r *recipes.Recipe, arch string) recipes.Target {
	t := recipes.Target{Arch: arch}
	if r.KernelBound() {
		t.OS = catalogOS
	}
	return t
}

// readCatalogFixture reads recipes/catalog/NAME/fixture.yaml strictly.
func readCatalogFixture(t testing.TB, name string) *catalogFixture {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(catalogDir, name, "fixture.yaml"))
	if err != nil {
		t.Fatalf("every catalog recipe needs a fixture.yaml listing what its upstreams publish: %v", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	fx := &catalogFixture{}
	if err := dec.Decode(fx); err != nil {
		t.Fatalf("%s/fixture.yaml: %v", name, err)
	}
	return fx
}

// serveSources adds what b's url sources download to docs (keyed by
// /HOST/PATH) and their checksums to docs or, for lists, to sums.
func serveSources(t testing.TB, b *recipes.Build, fx *catalogFixture, docs map[string][]byte, sums map[string]*bytes.Buffer, hosts map[string]bool) {
	t.Helper()
	a, err := sysext.ArchByName(b.Arch)
	if err != nil {
		t.Fatal(err)
	}
	stub := fixture.Executable(a.Class, a.ByteOrder, a.Machine)
	var urlSources []recipes.BuildSource
	for _, s := range b.Sources {
		if s.Kind == recipes.URLSource {
			urlSources = append(urlSources, s)
		}
	}
	if len(urlSources) != len(fx.Sources) {
		t.Fatalf("the recipe has %d url sources, fixture.yaml describes %d", len(urlSources), len(fx.Sources))
	}
	for i, s := range urlSources {
		f := fx.Sources[i]
		var body []byte
		switch {
		case s.Install != nil && (len(f.ELF) > 0 || len(f.Text) > 0 || len(f.Foreign) > 0):
			t.Fatalf("fixture source %d: an install source is one file; give no elf or text members", i+1)
		case s.Install != nil && f.File == "text":
			body = []byte("#!/bin/sh\n")
		case s.Install != nil:
			body = stub
		default:
			var members []fixture.Member
			for _, m := range f.ELF {
				members = append(members, fixture.Member{Name: fill(t, m, b), Mode: 0o755, Body: stub})
			}
			for arch, names := range f.Foreign {
				fa, err := sysext.ArchByName(arch)
				if err != nil {
					t.Fatalf("fixture source %d foreign: %v", i+1, err)
				}
				for _, m := range names {
					members = append(members, fixture.Member{Name: fill(t, m, b), Body: fixture.Executable(fa.Class, fa.ByteOrder, fa.Machine)})
				}
			}
			for _, m := range f.Text {
				body := []byte("text\n")
				if strings.HasSuffix(m, ".service") { // bake parses units
					body = []byte("[Unit]\nDescription=stand-in for the upstream unit\n")
				}
				members = append(members, fixture.Member{Name: fill(t, m, b), Body: body})
			}
			if body, err = fixture.Archive(s.URL, members); err != nil {
				t.Fatal(err)
			}
		}
		docs[mirrorPath(t, s.URL, hosts)] = body
		if s.SHA256URL == "" {
			t.Fatalf("source %d pins a sha256; catalog recipes verify through upstream's checksum file (sha256-url), which this test can serve", i+1)
		}
		sum := sha256.Sum256(body)
		h, file := hex.EncodeToString(sum[:]), path.Base(s.URL)
		p := mirrorPath(t, s.SHA256URL, hosts)
		switch f.Sums {
		case "hash":
			docs[p] = []byte(h + "\n")
		case "single":
			docs[p] = []byte(h + "  " + file + "\n")
		case "list":
			if sums[p] == nil {
				sums[p] = &bytes.Buffer{}
				fmt.Fprintf(sums[p], "%x  unrelated-file.txt\n", sha256.Sum256([]byte(p)))
			}
			fmt.Fprintf(sums[p], "%s  %s\n", h, file)
		default:
			t.Fatalf("fixture source %d: sums %q; use hash, single or list", i+1, f.Sums)
		}
	}
}

// mirrorPath is where the loopback server holds rawURL: /HOST/PATH.
func mirrorPath(t testing.TB, rawURL string, hosts map[string]bool) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "https" {
		t.Fatalf("%s: catalog URLs are https (%v)", rawURL, err)
	}
	hosts[u.Host] = true
	return "/" + u.Host + u.Path
}

// fill expands a fixture template with b's variables.
func fill(t testing.TB, text string, b *recipes.Build) string {
	t.Helper()
	tmpl, err := template.New("fixture").Option("missingkey=error").Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	err = tmpl.Execute(&out, map[string]string{"Version": b.Version, "Arch": b.Arch, "GoArch": b.GoArch,
		"UnameArch": b.UnameArch, "OSID": b.OS.ID, "OSVersion": b.OS.Version})
	if err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// checkCatalogImage checks an image baked from a catalog recipe: its
// release file, the fixture's expected paths, and that every ExecStart= of
// a unit or drop-in names a binary in the image.
func checkCatalogImage(t *testing.T, image string, b *recipes.Build, fx *catalogFixture) {
	t.Helper()
	fsys := imageFS(t, image)
	exists := func(p string) bool {
		_, err := fs.Stat(fsys, strings.TrimPrefix(p, "/"))
		return err == nil
	}
	want := []string{"/usr/lib/extension-release.d/extension-release." + b.Recipe.Name}
	for _, p := range fx.Expect {
		want = append(want, fill(t, p, b))
	}
	for _, p := range want {
		if !exists(p) {
			t.Errorf("%s: no %s", filepath.Base(image), p)
		}
	}
	for _, err := range validate.CheckExecStart(fsys, b.Recipe.ImageClass()) {
		t.Errorf("%s: %v", filepath.Base(image), err)
	}
	units, err := validate.UnitFiles(fsys, b.Recipe.ImageClass())
	if err != nil {
		t.Fatal(err)
	}
	if b.Recipe.Release.ReloadManager && len(units) == 0 {
		t.Errorf("%s: release.reload-manager is set, but the image has no unit", filepath.Base(image))
	}
}
