package bakery

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"

	"github.com/sysext-bakery/bakery/bakery/unpack"
	"github.com/sysext-bakery/bakery/recipes"
)

// fetched is a source whose content is verified and on local disk.
type fetched struct {
	src  recipes.BuildSource
	path string // the verified file of a url source
}

// Stage fetches and verifies every source of b with opts.Fetcher, then
// writes them into stageDir in recipe order, each within opts.MaxEntries.
// Nothing is staged unless every source is verified, and nothing is
// downloaded unless every file URL is allowed. Errors name the recipe file
// and the line of the source's key at fault.
func Stage(ctx context.Context, b *recipes.Build, stageDir string, opts Options) error {
	f := opts.Fetcher
	dir, err := recipeDir(b.Recipe)
	if err != nil {
		return err
	}
	for _, src := range b.Sources {
		for _, u := range []struct{ key, url string }{{"url", src.URL}, {"sha256-url", src.SHA256URL}} {
			if u.url == "" {
				continue
			}
			if err := f.checkURL(u.url, dir); err != nil {
				return sourceError(b, src, u.key, err)
			}
		}
	}
	var all []fetched
	for _, src := range b.Sources {
		fs, err := fetch(ctx, b, src, f, dir)
		if err != nil {
			return err
		}
		all = append(all, fs)
	}
	root, err := os.OpenRoot(stageDir)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, fs := range all {
		if err := stageOne(ctx, root, fs, opts.MaxEntries); err != nil {
			key := "files"
			if fs.src.Install != nil {
				key = "install"
			} else if fs.src.Extract != nil {
				key = "extract"
			}
			return sourceError(b, fs.src, key, err)
		}
	}
	return nil
}

// recipeDir is the folder whose files the recipe's file URLs may read: ""
// for a catalog recipe, which has none.
func recipeDir(r *recipes.Recipe) (string, error) {
	if r.Catalog {
		return "", nil
	}
	dir, err := filepath.Abs(r.Dir())
	if err != nil {
		return "", fmt.Errorf("recipe %s: %w", r.Path, err)
	}
	return dir, nil
}

// sourceError places err at the line of key in the source src.
func sourceError(b *recipes.Build, src recipes.BuildSource, key string, err error) error {
	return &recipes.Error{
		Path: b.Recipe.Path,
		Line: b.Recipe.Sources[src.Index].KeyLine(key),
		Err:  fmt.Errorf("source %d %s: %w", src.Index+1, key, err),
	}
}

// fetch resolves a source's digest and downloads it into the cache; dir
// is the recipe's folder (see recipeDir).
func fetch(ctx context.Context, b *recipes.Build, src recipes.BuildSource, f *Fetcher, dir string) (fetched, error) {
	switch src.Kind {
	case recipes.FilesSource:
		return fetched{src: src}, nil
	case recipes.OCISource:
		return fetched{}, sourceError(b, src, "oci", fmt.Errorf("oci sources are not supported yet; download the files with a url: source instead"))
	}
	digest := src.SHA256
	if digest == "" {
		body, err := f.FetchSmall(ctx, src.SHA256URL, dir)
		if err != nil {
			return fetched{}, sourceError(b, src, "sha256-url", err)
		}
		u, err := url.Parse(src.URL)
		if err != nil {
			return fetched{}, sourceError(b, src, "url", err)
		}
		if digest, err = recipes.ParseSHA256File(body, path.Base(u.Path)); err != nil {
			return fetched{}, sourceError(b, src, "sha256-url", fmt.Errorf("%s: %w", src.SHA256URL, err))
		}
	}
	p, err := f.Fetch(ctx, src.URL, digest, dir)
	if err != nil {
		return fetched{}, sourceError(b, src, "url", err)
	}
	return fetched{src: src, path: p}, nil
}

// stageOne writes one verified source into the staging root.
func stageOne(ctx context.Context, root *os.Root, fs fetched, maxEntries int) error {
	src := fs.src
	if src.Kind == recipes.FilesSource {
		return unpack.Tree(ctx, root, src.FilesDir, unpack.Options{To: "/", MaxEntries: maxEntries})
	}
	file, err := os.Open(fs.path)
	if err != nil {
		return err
	}
	defer file.Close()
	if src.Install != nil {
		return unpack.File(ctx, root, file, src.URL, src.Install.To, src.Install.Mode)
	}
	_, err = unpack.Archive(ctx, root, file, unpack.Options{
		Origin:          src.URL,
		MaxEntries:      maxEntries,
		StripComponents: src.Extract.StripComponents,
		Include:         src.Extract.Include,
		To:              src.Extract.To,
		Mode:            src.Extract.Mode,
	})
	return err
}
