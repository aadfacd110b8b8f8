package bakery

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sysext-bakery/bakery/recipes"
	"github.com/sysext-bakery/bakery/sources"
)

// Stage opens every source of b with opts.Fetcher, fetches and verifies
// each, then writes them into stageDir in recipe order, each within
// opts.MaxEntries. Nothing is downloaded unless every source opens (file
// URLs allowed), and nothing is staged unless every source is verified.
// Errors name the recipe file and the line of the source's key at fault.
func Stage(ctx context.Context, b *recipes.Build, stageDir string, opts Options) error {
	all, err := openSources(b, opts)
	if err != nil {
		return err
	}
	for i, s := range all {
		if err := s.Fetch(ctx); err != nil {
			return sourceError(b, b.Sources[i], err)
		}
	}
	root, err := os.OpenRoot(stageDir)
	if err != nil {
		return err
	}
	defer root.Close()
	for i, s := range all {
		if err := s.Stage(ctx, root, opts.MaxEntries); err != nil {
			return sourceError(b, b.Sources[i], err)
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

// sourceError places err at the line of the recipe key it concerns in the
// source src (sources.KeyError), or at the source's start.
func sourceError(b *recipes.Build, src recipes.BuildSource, err error) error {
	key := src.Kind.String()
	var ke *sources.KeyError
	if errors.As(err, &ke) {
		key = ke.Key
	}
	return &recipes.Error{
		Path: b.Recipe.Path,
		Line: b.Recipe.Sources[src.Index].KeyLine(key),
		Err:  fmt.Errorf("source %d %s: %w", src.Index+1, key, err),
	}
}
