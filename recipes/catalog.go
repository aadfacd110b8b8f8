package recipes

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/sysext-bakery/bakery/sysext"
)

// catalogFS holds the shipped recipes, one catalog/NAME/recipe.yaml each,
// with the files/ trees their files sources copy. Files embedded in a
// binary keep no permissions: a catalog tree holds units and configs
// (0644), executables come from url sources.
//
//go:embed catalog/*/recipe.yaml catalog/*/files
var catalogFS embed.FS

// CatalogNames lists the names of the shipped recipes, sorted.
func CatalogNames() []string {
	return catalogNames(catalogFS)
}

// LoadCatalog parses the shipped recipe called name. Its Path reads
// recipes/catalog/NAME/recipe.yaml, where it lives in bakery's source.
func LoadCatalog(name string) (*Recipe, error) {
	return loadCatalog(catalogFS, name)
}

// Resolve finds the recipe a user named: a recipe file, a folder holding
// recipe.yaml or, when no such file or folder exists, a catalog name.
func Resolve(arg string) (*Recipe, error) {
	if _, err := os.Stat(arg); err == nil || sysext.CheckName(arg) != nil {
		return Load(arg)
	}
	return LoadCatalog(arg)
}

// catalogNames lists the folders of fsys/catalog that hold a recipe.
func catalogNames(fsys fs.FS) []string {
	entries, _ := fs.ReadDir(fsys, "catalog") // absent means empty
	var names []string
	for _, e := range entries {
		if _, err := fs.Stat(fsys, path.Join("catalog", e.Name(), FileName)); e.IsDir() && err == nil {
			names = append(names, e.Name())
		}
	}
	return names
}

// loadCatalog parses fsys/catalog/NAME/recipe.yaml. A catalog recipe has no
// folder on disk: its files sources read fsys/catalog/NAME (Recipe.FS),
// and unless a bake allows every file URL it may use no file URLs.
func loadCatalog(fsys fs.FS, name string) (*Recipe, error) {
	if err := sysext.CheckName(name); err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	data, err := fs.ReadFile(fsys, path.Join("catalog", name, FileName))
	if errors.Is(err, fs.ErrNotExist) {
		known := "the catalog is empty"
		if names := catalogNames(fsys); len(names) > 0 {
			known = "the catalog has " + strings.Join(names, ", ")
		}
		return nil, fmt.Errorf("recipe %q: no such file or folder, nor a catalog recipe (%s)", name, known)
	}
	if err != nil {
		return nil, fmt.Errorf("catalog recipe %s: %w", name, err)
	}
	r, err := Parse(data, path.Join("recipes", "catalog", name, FileName))
	if err != nil {
		return nil, err
	}
	r.Catalog = true
	if r.FS, err = fs.Sub(fsys, path.Join("catalog", name)); err != nil {
		return nil, fmt.Errorf("catalog recipe %s: %w", name, err)
	}
	return r, nil
}
