package sources

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/sysext-bakery/bakery/bakery/unpack"
	"github.com/sysext-bakery/bakery/internal/digest"
	"github.com/sysext-bakery/bakery/recipes"
)

// filesSource is a tree beside the recipe, copied as it is.
type filesSource struct {
	src recipes.BuildSource
}

// openFiles opens a files source.
func openFiles(_ *Fetcher, _ string, src recipes.BuildSource) (Source, error) {
	return &filesSource{src: src}, nil
}

// Resolve digests the tree: every entry's path, type, permissions and
// content (a file's sha256, a link's target), in walk order, so that any
// change to the tree changes the digest.
func (s *filesSource) Resolve(ctx context.Context) (v1.Hash, error) {
	h := sha256.New()
	err := filepath.WalkDir(s.src.FilesDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(s.src.FilesDir, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		content := ""
		switch {
		case info.Mode().IsRegular():
			fd, _, err := digest.File(p)
			if err != nil {
				return err
			}
			content = fd.String()
		case info.Mode()&fs.ModeSymlink != 0:
			if content, err = os.Readlink(p); err != nil {
				return err
			}
		}
		_, err = fmt.Fprintf(h, "%q %s %q\n", filepath.ToSlash(rel), info.Mode(), content)
		return err
	})
	if err != nil {
		return v1.Hash{}, keyErr("files", err)
	}
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}, nil
}

// Fetch has nothing to fetch: the tree is read when it is staged.
func (s *filesSource) Fetch(context.Context) error { return nil }

// Stage copies the tree into root.
func (s *filesSource) Stage(ctx context.Context, root *os.Root, maxEntries int) error {
	return keyErr("files", unpack.Tree(ctx, root, s.src.FilesDir, unpack.Options{To: "/", MaxEntries: maxEntries}))
}
