package bakery

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sysext-bakery/bakery/internal/sha256sums"
	"github.com/sysext-bakery/bakery/recipes"
	"github.com/sysext-bakery/bakery/sources"
	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/erofs"
	"github.com/sysext-bakery/bakery/sysext/mkfs"
	"github.com/sysext-bakery/bakery/sysext/squashfs"
)

// inputsRecipe is a recipe with a url source checked by sha256-url and a
// files source; {{.OSVersion}} in its URL makes it kernel-bound when
// bound is set.
func inputsRecipe(srvURL string, bound bool) string {
	os := ""
	if bound {
		os = "/{{.OSVersion}}"
	}
	return fmt.Sprintf(`name: tool
description: A tool
version: "1.0"
sources:
  - url: %s%s/tool-{{.GoArch}}
    sha256-url: %s/SHA256SUMS
    install: {to: /usr/bin/tool, mode: "0755"}
  - files: files/
`, srvURL, os, srvURL)
}

// TestInputsDigest changes each input of a build in turn: every change
// that can change the image's bytes changes the digest, and nothing else
// does. Resolving fetches the checksum document only.
func TestInputsDigest(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	sums := fmt.Sprintf("%s  tool-amd64\n%s  tool-arm64\n", strings.Repeat("1", 64), strings.Repeat("2", 64))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		fmt.Fprint(w, sums)
	}))
	t.Cleanup(srv.Close)
	unit := map[string]string{"files/usr/lib/systemd/system/tool.service": "[Service]\nExecStart=/usr/bin/tool\n"}
	base := writeRecipe(t, inputsRecipe(srv.URL, false), unit)
	digest := func(t *testing.T, r *recipes.Recipe, target recipes.Target, opts Options) string {
		t.Helper()
		b, err := r.ExpandFor(target)
		if err != nil {
			t.Fatal(err)
		}
		d, err := InputsDigest(context.Background(), b, opts)
		if err != nil {
			t.Fatal(err)
		}
		return d.String()
	}
	opts := func() Options { return bakeOptions(t, t.TempDir(), squashfs.Builder{}, squashfsFormat) }
	x86 := recipes.Target{Arch: "x86-64"}
	first := digest(t, base, x86, opts())

	edited := func(edit func(dir string)) *recipes.Recipe {
		r := writeRecipe(t, inputsRecipe(srv.URL, false), unit)
		edit(r.Dir())
		r, err := recipes.Load(r.Dir())
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	bound := writeRecipe(t, inputsRecipe(srv.URL, true), unit)
	flatcar := recipes.Target{Arch: "x86-64", OS: recipes.OS{ID: "flatcar", Version: "4081.2.0"}}
	tests := []struct {
		name    string
		digest  func(t *testing.T) string
		changes bool
	}{
		{"the same build again", func(t *testing.T) string { return digest(t, base, x86, opts()) }, false},
		{"mirrors, limits, cache and output directory", func(t *testing.T) string {
			o := opts()
			o.Fetcher = &sources.Fetcher{Cache: sources.Cache{Dir: t.TempDir()}, MaxSize: 1 << 20, Backoff: 1,
				Mirrors: []sources.Mirror{{From: "https://nowhere.invalid/", To: srv.URL + "/"}}}
			o.MaxEntries, o.OutDir = 3, t.TempDir()
			return digest(t, base, x86, o)
		}, false},
		{"the recipe file", func(t *testing.T) string {
			r := edited(func(dir string) {
				data, _ := os.ReadFile(filepath.Join(dir, "recipe.yaml"))
				os.WriteFile(filepath.Join(dir, "recipe.yaml"), append(data, "# a comment\n"...), 0o644)
			})
			return digest(t, r, x86, opts())
		}, true},
		{"a file of files/", func(t *testing.T) string {
			r := edited(func(dir string) {
				os.WriteFile(filepath.Join(dir, "files/usr/lib/systemd/system/tool.service"), []byte("[Service]\nExecStart=/usr/bin/tool -v\n"), 0o644)
			})
			return digest(t, r, x86, opts())
		}, true},
		{"the version", func(t *testing.T) string {
			return digest(t, base, recipes.Target{Version: "1.1", Arch: "x86-64"}, opts())
		}, true},
		{"the arch", func(t *testing.T) string { return digest(t, base, recipes.Target{Arch: "arm64"}, opts()) }, true},
		{"the OS version", func(t *testing.T) string {
			other := flatcar
			other.OS.Version = "4152.0.0"
			if digest(t, bound, flatcar, opts()) == digest(t, bound, other, opts()) {
				t.Error("two OS versions give one digest")
			}
			return digest(t, bound, flatcar, opts())
		}, true},
		{"the format and builder", func(t *testing.T) string {
			return digest(t, base, x86, bakeOptions(t, t.TempDir(), erofs.Builder{}, erofsFormat))
		}, true},
		{"the builder alone", func(t *testing.T) string {
			return digest(t, base, x86, bakeOptions(t, t.TempDir(), mkfs.Mksquashfs{}, squashfsFormat))
		}, true},
		{"the compression", func(t *testing.T) string {
			o := opts()
			o.Build.Compression = sysext.Xz
			return digest(t, base, x86, o)
		}, true},
		{"the level", func(t *testing.T) string {
			o := opts()
			o.Build.Level = 19
			return digest(t, base, x86, o)
		}, true},
		{"the epoch", func(t *testing.T) string {
			o := opts()
			o.Build.Epoch++
			return digest(t, base, x86, o)
		}, true},
		{"a source's published sha256", func(t *testing.T) string {
			sums = strings.Replace(sums, strings.Repeat("1", 64), strings.Repeat("3", 64), 1)
			return digest(t, base, x86, opts()) // a new cache reads the new document
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.digest(t); (got != first) != tt.changes {
				t.Errorf("digest %s, first %s: want changed = %v", got, first, tt.changes)
			}
		})
	}
	for _, p := range paths {
		if p != "/SHA256SUMS" {
			t.Errorf("resolving inputs fetched %s; only the checksum document may be", p)
		}
	}
}

// TestBakeWritesInputs: each baked image reports its inputs digest, and
// INPUTS lists them in SHA256SUMS's format.
func TestBakeWritesInputs(t *testing.T) {
	r := helloRecipe(t)
	opts := bakeOptions(t, t.TempDir(), squashfs.Builder{}, squashfsFormat)
	res, err := Bake(bakeCtx, r, opts)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(res.Inputs)
	if err != nil {
		t.Fatal(err)
	}
	listed, err := sha256sums.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range res.Images {
		b, err := r.Expand("", img.Architecture)
		if err != nil {
			t.Fatal(err)
		}
		want, err := InputsDigest(context.Background(), b, opts)
		if err != nil {
			t.Fatal(err)
		}
		if img.InputsDigest != want.String() || listed[filepath.Base(img.Path)] != want.Hex {
			t.Errorf("%s: image says %s, INPUTS %s, want %s", img.Architecture, img.InputsDigest, listed[filepath.Base(img.Path)], want)
		}
	}
	if len(listed) != len(res.Images) {
		t.Errorf("INPUTS lists %d images, the bake made %d", len(listed), len(res.Images))
	}
}
