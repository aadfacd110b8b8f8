package recipes

import (
	"errors"
	"io/fs"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

// TestShippedCatalog loads every recipe of the embedded catalog.
func TestShippedCatalog(t *testing.T) {
	dirs, err := filepath.Glob("catalog/*/recipe.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, d := range dirs {
		want = append(want, filepath.Base(filepath.Dir(d)))
	}
	if got := CatalogNames(); !reflect.DeepEqual(got, want) {
		t.Fatalf("CatalogNames() = %q, want %q (the folders of catalog/)", got, want)
	}
	for _, name := range want {
		r, err := LoadCatalog(name)
		if err != nil {
			t.Errorf("catalog recipe %s: %v", name, err)
			continue
		}
		if r.Name != name {
			t.Errorf("catalog/%s/recipe.yaml is named %q; name the folder after the recipe", name, r.Name)
		}
		checkCatalogPolicy(t, r)
	}
}

// checkCatalogPolicy holds a shipped recipe to the catalog's rules (see
// catalog/README.md): described, licensed, with a home page and a version;
// every download over https and verified through the upstream's checksum
// file; files/ holding only directories and non-executable regular files
// under usr/ and opt/, since an embedded file keeps no mode or link.
func checkCatalogPolicy(t *testing.T, r *Recipe) {
	t.Helper()
	if r.Description == "" || r.License == "" || r.Homepage == "" || r.Version == "" {
		t.Errorf("%s: a catalog recipe needs description, license, homepage and version", r.Path)
	}
	for i, s := range r.Sources {
		switch s.Kind() {
		case URLSource:
			if !strings.HasPrefix(s.URL, "https://") || !strings.HasPrefix(s.SHA256URL, "https://") || s.SHA256 != nil {
				t.Errorf("%s:%d: source %d: catalog downloads are https and verified by the upstream's checksum file (https sha256-url, no pinned sha256)", r.Path, s.Line, i+1)
			}
		case FilesSource:
		default:
			t.Errorf("%s:%d: source %d: the catalog has url and files sources only", r.Path, s.Line, i+1)
		}
	}
	dir := filepath.Join("catalog", r.Name, "files")
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == dir {
			return fs.SkipAll
		}
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		top, _, _ := strings.Cut(filepath.ToSlash(rel), "/")
		info, err := d.Info()
		switch {
		case err != nil:
			return err
		case top != "usr" && top != "opt":
			t.Errorf("%s: only usr/ and opt/ go into an image", p)
		case strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "_"):
			t.Errorf("%s: go:embed leaves out names starting with . or _, so it would be missing from the image", p)
		case !info.IsDir() && !info.Mode().IsRegular():
			t.Errorf("%s is %v: a catalog tree holds directories and regular files only (embedding keeps no links)", p, info.Mode().Type())
		case info.Mode().IsRegular() && info.Mode()&0o111 != 0:
			t.Errorf("%s is executable: embedding keeps no modes, so it would land as 0644; ship executables through url sources", p)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

func TestCatalog(t *testing.T) {
	recipe := func(body string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(body)} }
	fsys := fstest.MapFS{
		"catalog/README.md": recipe("about"),
		"catalog/tool/recipe.yaml": recipe("name: tool\nversion: \"1\"\nsources:\n  - url: https://x/tool\n    sha256: " + hashA +
			"\n    install: {to: /usr/bin/tool, mode: \"0755\"}\n"),
		"catalog/units/recipe.yaml":                                recipe("name: units\nversion: \"1\"\nsources:\n  - files: files/\n"),
		"catalog/units/files/usr/lib/systemd/system/units.service": recipe("[Service]\n"),
		"catalog/broken/recipe.yaml":                               recipe("name: broken\nsources:\n  - url: https://x/tool\n"),
		"catalog/notes/README.md":                                  recipe("a folder without a recipe"),
	}
	if got, want := catalogNames(fsys), []string{"broken", "tool", "units"}; !reflect.DeepEqual(got, want) {
		t.Errorf("catalogNames = %q, want %q", got, want)
	}
	if got := catalogNames(fstest.MapFS{}); len(got) != 0 {
		t.Errorf("catalogNames of an empty catalog = %q", got)
	}
	tests := []struct {
		fsys          fstest.MapFS
		name, wantErr string
	}{
		{fsys, "tool", ""},
		{fsys, "units", ""},
		{fsys, "broken", "recipes/catalog/broken/recipe.yaml:3: source 1 (url) needs install or extract"},
		{fsys, "nope", `recipe "nope": no such file or folder, nor a catalog recipe (the catalog has broken, tool, units)`},
		{fstest.MapFS{"catalog/README.md": recipe("empty")}, "nope", "the catalog is empty"},
		{fsys, "../tool", "is not an extension name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := loadCatalog(tt.fsys, tt.name)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Name != tt.name || r.Path != "recipes/catalog/"+tt.name+"/recipe.yaml" || !r.Catalog {
				t.Errorf("loaded %q from %q, Catalog %v", r.Name, r.Path, r.Catalog)
			}
			if r.Sources[0].Files == "" {
				return
			}
			// A files source reads the recipe's folder in the catalog.
			b, err := r.Expand("", "x86-64")
			if err != nil {
				t.Fatal(err)
			}
			src := b.Sources[0]
			if got, err := fs.ReadFile(src.FilesFS, "usr/lib/systemd/system/units.service"); err != nil || string(got) != "[Service]\n" {
				t.Errorf("FilesFS holds %q, %v", got, err)
			}
			if src.FilesDir != "recipes/catalog/units/files" {
				t.Errorf("FilesDir %q, want where the tree lives in bakery's source", src.FilesDir)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	tests := []struct{ arg, wantName, wantErr string }{
		{arg: "../testdata/hello", wantName: "hello"},
		{arg: "../testdata/hello/recipe.yaml", wantName: "hello"},
		{arg: "testdata/kubernetes", wantName: "kubernetes"},
		{arg: "testdata/missing", wantErr: "no such file or directory"},
		{arg: "missing.yaml", wantErr: `recipe "missing.yaml": no such file or folder, nor a catalog recipe`},
		{arg: "no-such-recipe", wantErr: `recipe "no-such-recipe": no such file or folder, nor a catalog recipe`},
	}
	for _, tt := range tests {
		t.Run(tt.arg, func(t *testing.T) {
			r, err := Resolve(tt.arg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Name != tt.wantName || r.Catalog {
				t.Errorf("resolved to %q (Catalog %v), want %q from disk", r.Name, r.Catalog, tt.wantName)
			}
		})
	}
}
