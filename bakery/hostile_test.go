package bakery

import (
	"archive/tar"
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sysext-bakery/bakery/internal/fixture"
	"github.com/sysext-bakery/bakery/recipes"
	"github.com/sysext-bakery/bakery/sources"
	"github.com/sysext-bakery/bakery/sysext/squashfs"
)

// TestErrorsNeverQuoteFetchedContent bakes sources that are someone's
// secrets rather than what the recipe expects: whatever step refuses them,
// the error names the URL and says what was expected, but quotes nothing.
func TestErrorsNeverQuoteFetchedContent(t *testing.T) {
	const secret = "hunter2-s3cret"
	shadow := []byte("[root:$y$j9T$" + secret + ":19000:0:99999:7:::\n")
	environ := []byte("HOME=/root\x00API_TOKEN=" + secret + "\x00")
	unit := []byte("[Service]\nEnvironment " + secret + "\n")
	archive := tarGz(t, tarEntry{hdr: tar.Header{Name: "usr/lib/systemd/system/x.service", Typeflag: tar.TypeReg}, body: string(shadow)})
	srv := fixture.Serve(t, map[string][]byte{"/shadow": shadow, "/environ": environ, "/unit": unit, "/a.tar.gz": archive})
	cases := []struct {
		name, source string
		want         []string
	}{
		{"sha256-url is the environment", "url: %[1]s/a.tar.gz\n    sha256-url: %[1]s/environ\n    extract: {}",
			[]string{"recipe.yaml:6: source 1 sha256-url: " + srv.URL + "/environ", "line 1 is not a checksum line"}},
		{"sha256-url is shadow", "url: %[1]s/a.tar.gz\n    sha256-url: %[1]s/shadow\n    extract: {}",
			[]string{"recipe.yaml:6: source 1 sha256-url: " + srv.URL + "/shadow", "line 1 is not a checksum line"}},
		{"archive is shadow", "url: %[1]s/shadow\n    sha256: " + sha256Hex(shadow) + "\n    extract: {}",
			[]string{"not a tar, tar.gz"}},
		{"unit file is not KEY=VALUE", "url: %[1]s/unit\n    sha256: " + sha256Hex(unit) + "\n    install: {to: /usr/lib/systemd/system/x.service}",
			[]string{"/usr/lib/systemd/system/x.service:2", "KEY=VALUE"}},
		{"unit file from an archive has a bad header", "url: %[1]s/a.tar.gz\n    sha256: " + sha256Hex(archive) + "\n    extract: {}",
			[]string{"/usr/lib/systemd/system/x.service:1", "section header"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := writeRecipe(t, fmt.Sprintf("name: x\nversion: \"1\"\narches: [x86-64]\nsources:\n  - "+c.source+"\n", srv.URL), nil)
			_, err := Bake(bakeCtx, r, bakeOptions(t, t.TempDir(), squashfs.Builder{}, squashfsFormat))
			if err == nil {
				t.Fatal("baked")
			}
			msg := err.Error()
			for _, leak := range []string{secret, "API_TOKEN", "$y$", fmt.Sprintf("% x", "[roo"), fmt.Sprintf("% x", "[Ser")} {
				if strings.Contains(msg, leak) {
					t.Errorf("error quotes the fetched document (%q): %s", leak, msg)
				}
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error does not say %q: %s", w, msg)
				}
			}
		})
	}
}

// TestFileURLsStayInTheRecipeFolder: file URLs (url and sha256-url) may
// only read files inside the recipe's folder, symbolic links resolved,
// unless the bake allows every file; a catalog recipe has no folder.
func TestFileURLsStayInTheRecipeFolder(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	tool := []byte("#!/bin/sh\necho tool\n")
	secret := filepath.Join(outside, "secret")
	for p, data := range map[string][]byte{
		filepath.Join(dir, "tool"):     tool,
		filepath.Join(dir, "sums"):     []byte(sha256Hex(tool) + "  tool\n"),
		secret:                         tool,
		filepath.Join(outside, "sums"): []byte(sha256Hex(tool) + "  secret\n"),
	} {
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink("tool", filepath.Join(dir, "link-in"))
	os.Symlink(secret, filepath.Join(dir, "link-out"))
	linkedDir := filepath.Join(t.TempDir(), "recipes")
	os.Symlink(dir, linkedDir)
	srv := fixture.Serve(t, map[string][]byte{"/tool": tool})
	pinned := func(u string) string {
		return "  - url: " + u + "\n    sha256: " + sha256Hex(tool) + "\n    install: {to: /usr/bin/tool}\n"
	}
	summed := func(u, sums string) string {
		return "  - url: " + u + "\n    sha256-url: " + sums + "\n    install: {to: /usr/bin/tool}\n"
	}
	cases := []struct {
		name      string
		sources   string
		via       string // the folder the recipe is loaded from; dir when empty
		allow     bool
		catalog   bool
		wantError string // "" when staging succeeds
	}{
		{name: "file inside", sources: pinned("file://" + dir + "/tool")},
		{name: "sha256-url inside", sources: summed("file://"+dir+"/tool", "file://"+dir+"/sums")},
		{name: "link inside to inside", sources: pinned("file://" + dir + "/link-in")},
		{name: "recipe loaded through a linked folder", via: linkedDir, sources: pinned("file://" + linkedDir + "/tool")},
		{name: "file outside", sources: pinned("file://" + secret), wantError: "recipe.yaml:5: source 1 url: file://" + secret + ": file URL outside the recipe's folder"},
		{name: "sha256-url outside", sources: summed("file://"+dir+"/tool", "file:///proc/self/environ"), wantError: "recipe.yaml:6: source 1 sha256-url: file:///proc/self/environ: file URL outside"},
		{name: "link inside to outside", sources: pinned("file://" + dir + "/link-out"), wantError: "(the file is " + secret + ", the recipe's folder " + dir + ")"},
		{name: "dot-dot out of the folder", sources: pinned("file://" + dir + "/../" + filepath.Base(outside) + "/secret"), wantError: "file URL outside"},
		{name: "refused before any download", sources: pinned(srv.URL+"/tool") + summed("file://"+dir+"/tool", "file://"+outside+"/sums"), wantError: "recipe.yaml:9: source 2 sha256-url"},
		{name: "outside, allowed", sources: summed("file://"+secret, "file://"+outside+"/sums"), allow: true},
		{name: "catalog recipe", sources: pinned("file://" + dir + "/tool"), catalog: true, wantError: "a catalog recipe has no folder"},
		{name: "catalog recipe, allowed", sources: pinned("file://" + dir + "/tool"), catalog: true, allow: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			via := cmp.Or(c.via, dir)
			recipe := filepath.Join(dir, "recipe.yaml")
			os.WriteFile(recipe, []byte("name: x\nversion: \"1\"\narches: [x86-64]\nsources:\n"+c.sources), 0o644)
			r, err := recipes.Load(filepath.Join(via, "recipe.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			r.Catalog = c.catalog
			b, err := r.Expand("", "x86-64")
			if err != nil {
				t.Fatal(err)
			}
			f := &sources.Fetcher{Cache: sources.Cache{Dir: t.TempDir()}, AllowFileURLs: c.allow}
			before := srv.Requests.Load()
			err = Stage(bakeCtx, b, t.TempDir(), Options{Fetcher: f})
			switch {
			case c.wantError == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.wantError == "":
				return
			case err == nil:
				t.Fatalf("staged, want an error saying %q", c.wantError)
			case !errors.Is(err, sources.ErrFileURL) || !strings.Contains(err.Error(), c.wantError) || !strings.Contains(err.Error(), "--allow-file-urls"):
				t.Fatalf("error %q, want ErrFileURL saying %q and the --allow-file-urls fix", err, c.wantError)
			}
			if n := srv.Requests.Load() - before; n != 0 {
				t.Errorf("%d downloads before the refusal", n)
			}
		})
	}
}
