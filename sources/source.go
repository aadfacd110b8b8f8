package sources

import (
	"context"
	"fmt"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/sysext-bakery/bakery/recipes"
)

// Source is one source of a build, of some kind.
type Source interface {
	// Resolve returns the digest that names the source's content,
	// fetching at most a small document (a sha256-url), never the
	// content itself: what an inputs digest is made of.
	Resolve(ctx context.Context) (v1.Hash, error)
	// Fetch makes the content available locally, verified against the
	// digest Resolve gives (cached: a second build downloads nothing).
	Fetch(ctx context.Context) error
	// Stage writes the fetched content into root, at most maxEntries
	// entries, through package stage's escape-proof stager.
	Stage(ctx context.Context, root *os.Root, maxEntries int) error
}

// KeyError is a source's failure and the recipe key it concerns ("url",
// "sha256-url", "install", "extract", "files", "oci"), so that the caller
// can point at that key's line.
type KeyError struct {
	Key string
	Err error
}

// Error is the failure, without the key.
func (e *KeyError) Error() string { return e.Err.Error() }

// Unwrap returns the failure.
func (e *KeyError) Unwrap() error { return e.Err }

// keyErr wraps err, when not nil, as about key.
func keyErr(key string, err error) error {
	if err == nil {
		return nil
	}
	return &KeyError{Key: key, Err: err}
}

// kinds maps each kind of source to the function that opens one: a new
// kind is one file and one line here.
var kinds = map[recipes.SourceKind]func(f *Fetcher, recipeDir string, src recipes.BuildSource) (Source, error){
	recipes.URLSource:   openURL,
	recipes.FilesSource: openFiles,
	recipes.OCISource:   openOCI,
}

// Open opens source src of a recipe whose folder is recipeDir ("" for a
// catalog recipe, which has none), checking what can be checked without
// the network (file URLs stay in the recipe's folder).
func Open(f *Fetcher, recipeDir string, src recipes.BuildSource) (Source, error) {
	open, ok := kinds[src.Kind]
	if !ok {
		return nil, keyErr(src.Kind.String(), fmt.Errorf("%s sources are not supported yet; use a url: source instead", src.Kind))
	}
	return open(f, recipeDir, src)
}
