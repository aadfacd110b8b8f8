package sources

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/sysext-bakery/bakery/internal/digest"
	"github.com/sysext-bakery/bakery/internal/filetype"
	"github.com/sysext-bakery/bakery/recipes"
	"github.com/sysext-bakery/bakery/stage"
)

// filesSource is a tree beside the recipe, copied as it is. A recipe
// without a folder on disk (from the catalog) has its trees in an fs.FS:
// Fetch first writes such a tree into the cache, keyed by its digest, so
// that staging reads a local tree like any other.
type filesSource struct {
	src   recipes.BuildSource
	fsys  fs.FS  // the tree: FilesFS, or FilesDir on disk
	cache Cache  // where an fs.FS tree is written
	dir   string // the local tree to stage, once fetched
}

// openFiles opens a files source.
func openFiles(f *Fetcher, _ string, src recipes.BuildSource) (Source, error) {
	s := &filesSource{src: src, fsys: src.FilesFS, dir: src.FilesDir}
	if s.fsys == nil {
		s.fsys = os.DirFS(src.FilesDir)
	} else {
		if f == nil {
			return nil, keyErr("files", errors.New("bakery: a files source read from an fs.FS needs a Fetcher with a cache"))
		}
		s.cache, s.dir = f.Cache, ""
	}
	return s, nil
}

// Resolve digests the tree: every entry's path, type, permissions and
// content (a file's sha256, a link's target), in walk order, so that any
// change to the tree changes the digest.
func (s *filesSource) Resolve(ctx context.Context) (v1.Hash, error) {
	h := sha256.New()
	err := fs.WalkDir(s.fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		content := ""
		switch {
		case info.Mode().IsRegular():
			fd, err := s.hashFile(p)
			if err != nil {
				return err
			}
			content = fd.String()
		case info.Mode()&fs.ModeSymlink != 0:
			if content, err = fs.ReadLink(s.fsys, p); err != nil {
				return err
			}
		}
		_, err = fmt.Fprintf(h, "%q %s %q\n", p, info.Mode(), content)
		return err
	})
	if err != nil {
		return v1.Hash{}, keyErr("files", fmt.Errorf("%s: %w", s.src.FilesDir, err))
	}
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}, nil
}

// hashFile is the sha256 of the regular file p of the tree. On disk it
// is digest.File's (a fifo swapped in since the walk is refused, not
// waited on); an fs.FS tree (embedded) holds no such thing.
func (s *filesSource) hashFile(p string) (v1.Hash, error) {
	if s.src.FilesFS == nil {
		h, _, err := digest.File(filepath.Join(s.src.FilesDir, filepath.FromSlash(p)))
		return h, err
	}
	f, err := s.fsys.Open(p)
	if err != nil {
		return v1.Hash{}, err
	}
	defer f.Close()
	h, _, err := v1.SHA256(f)
	return h, err
}

// Fetch has nothing to fetch for a tree on disk, which is read when it is
// staged; a tree in an fs.FS is written to the cache unless it is there.
func (s *filesSource) Fetch(ctx context.Context) error {
	if s.src.FilesFS == nil {
		return nil
	}
	d, err := s.Resolve(ctx)
	if err != nil {
		return err
	}
	s.dir, err = s.cache.writeTree(ctx, s.fsys, d.Hex)
	return keyErr("files", err)
}

// Stage copies the tree into root.
func (s *filesSource) Stage(ctx context.Context, root *os.Root, maxEntries int) error {
	return keyErr("files", stage.Tree(ctx, root, s.dir, stage.Options{To: "/", MaxEntries: maxEntries, Origin: s.src.FilesDir}))
}

// writeTree writes the tree fsys, whose digest is hex, to
// trees/sha256/HEX in the cache unless it is there, and returns that
// folder. Directories get mode 0755 and files 0644 (an fs.FS such as
// embed.FS keeps no permissions); anything else is refused. The tree is
// written under a temporary name and renamed into place, so a folder under
// its final name is always whole.
func (c Cache) writeTree(ctx context.Context, fsys fs.FS, hex string) (string, error) {
	dst := filepath.Join(c.Dir, "trees", "sha256", hex)
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", fmt.Errorf("cache: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dst), ".tmp-"+hex[:12]+"-")
	if err != nil {
		return "", fmt.Errorf("cache: %w", err)
	}
	defer os.RemoveAll(tmp) // gone once renamed
	root, err := os.OpenRoot(tmp)
	if err != nil {
		return "", fmt.Errorf("cache: %w", err)
	}
	defer root.Close()
	err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		switch {
		case p == ".":
			return os.Chmod(tmp, 0o755)
		case d.IsDir():
			if err := root.Mkdir(p, 0o755); err != nil {
				return err
			}
			return root.Chmod(p, 0o755)
		case d.Type().IsRegular():
			data, err := fs.ReadFile(fsys, p)
			if err != nil {
				return err
			}
			if err := root.WriteFile(p, data, 0o644); err != nil {
				return err
			}
			return root.Chmod(p, 0o644) // whatever the umask
		}
		return fmt.Errorf("%s is %s; a tree read from bakery itself holds only directories and regular files", p, filetype.Name(d.Type()))
	})
	if err != nil {
		return "", fmt.Errorf("write tree to the cache: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		if _, serr := os.Stat(dst); serr == nil {
			return dst, nil // another bake wrote it first
		}
		return "", fmt.Errorf("cache: %w", err)
	}
	return dst, nil
}
