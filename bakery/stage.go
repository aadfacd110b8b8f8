package bakery

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path"

	"github.com/sysext-bakery/bakery/bakery/unpack"
	"github.com/sysext-bakery/bakery/recipes"
)

// fetched is a source whose content is verified and on local disk.
type fetched struct {
	src  recipes.BuildSource
	path string // the verified file of a url source
}

// Stage fetches and verifies every source of b, then writes them into
// stageDir in recipe order. Nothing is staged unless every source is
// verified.
func Stage(ctx context.Context, b *recipes.Build, stageDir string, f *Fetcher) error {
	var all []fetched
	for _, src := range b.Sources {
		fs, err := fetch(ctx, src, f)
		if err != nil {
			return fmt.Errorf("%s: source %d (line %d): %w", b.Recipe.Path, src.Index+1, src.Line, err)
		}
		all = append(all, fs)
	}
	root, err := os.OpenRoot(stageDir)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, fs := range all {
		if err := stageOne(root, fs); err != nil {
			return fmt.Errorf("%s: source %d (line %d): %w", b.Recipe.Path, fs.src.Index+1, fs.src.Line, err)
		}
	}
	return nil
}

// fetch resolves a source's digest and downloads it into the cache.
func fetch(ctx context.Context, src recipes.BuildSource, f *Fetcher) (fetched, error) {
	switch src.Kind {
	case recipes.FilesSource:
		return fetched{src: src}, nil
	case recipes.OCISource:
		return fetched{}, fmt.Errorf("oci sources are not supported yet; download the files with a url: source instead")
	}
	digest := src.SHA256
	if digest == "" {
		body, err := f.FetchSmall(ctx, src.SHA256URL)
		if err != nil {
			return fetched{}, fmt.Errorf("sha256-url: %w", err)
		}
		u, err := url.Parse(src.URL)
		if err != nil {
			return fetched{}, err
		}
		if digest, err = recipes.ParseSHA256File(body, path.Base(u.Path)); err != nil {
			return fetched{}, fmt.Errorf("sha256-url %s: %w", src.SHA256URL, err)
		}
	}
	p, err := f.Fetch(ctx, src.URL, digest)
	if err != nil {
		return fetched{}, err
	}
	return fetched{src: src, path: p}, nil
}

// stageOne writes one verified source into the staging root.
func stageOne(root *os.Root, fs fetched) error {
	src := fs.src
	if src.Kind == recipes.FilesSource {
		return unpack.Tree(root, src.FilesDir, "/")
	}
	file, err := os.Open(fs.path)
	if err != nil {
		return err
	}
	defer file.Close()
	if src.Install != nil {
		return unpack.File(root, file, src.Install.To, src.Install.Mode)
	}
	_, err = unpack.Archive(root, file, unpack.Options{
		StripComponents: src.Extract.StripComponents,
		Include:         src.Extract.Include,
		To:              src.Extract.To,
		Mode:            src.Extract.Mode,
	})
	return err
}
