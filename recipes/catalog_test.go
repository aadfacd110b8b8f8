package recipes

import (
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
