package page

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/sysext-bakery/bakery/internal/atomicfile"
)

// exportMarker is the file every export holds: Export replaces only a
// directory that holds it (or an empty one).
const exportMarker = "index.html"

// Export writes c as static files into dir, for any web host:
// index.html (the listing, filtered in the browser), ext/NAME.html per
// extension and assets/. The files are written to a new directory beside
// dir, synced, and swapped in whole, so a failure leaves dir as it was;
// an existing dir is replaced only when it is empty or an earlier export.
func Export(dir string, c *Catalog) error {
	dir = filepath.Clean(dir)
	if err := checkReplaceable(dir); err != nil {
		return err
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("page export: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return fmt.Errorf("page export: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := writePages(tmp, c); err != nil {
		return fmt.Errorf("page export to %s: %w", dir, err)
	}
	old := ""
	if _, err := os.Lstat(dir); err == nil {
		old = tmp + ".old"
		if err := os.Rename(dir, old); err != nil {
			return fmt.Errorf("page export: %w", err)
		}
		defer os.RemoveAll(old)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if old != "" {
			err = errors.Join(err, os.Rename(old, dir))
		}
		return fmt.Errorf("page export: %w", err)
	}
	return atomicfile.SyncDir(parent)
}

// checkReplaceable refuses a dir that Export must not replace: a file,
// or a directory with other content than an earlier export.
func checkReplaceable(dir string) error {
	fi, err := os.Lstat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("page export: %w", err)
	case !fi.IsDir():
		return fmt.Errorf("page export: %s exists and is not a directory: give a new or empty directory", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("page export: %w", err)
	}
	if len(entries) == 0 {
		return nil
	}
	if _, err := os.Lstat(filepath.Join(dir, exportMarker)); err != nil {
		return fmt.Errorf("page export: %s holds other files than an earlier export (no %s): give a new or empty directory", dir, exportMarker)
	}
	return nil
}

// writePages writes the listing, every extension's page and the assets
// into dir.
func writePages(dir string, c *Catalog) error {
	view := *c
	view.Static = true
	for _, sub := range []string{"ext", "assets"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			return err
		}
	}
	if err := writeRendered(filepath.Join(dir, "index.html"), view.RenderListing); err != nil {
		return err
	}
	for _, e := range view.Extensions {
		if err := writeRendered(filepath.Join(dir, "ext", e.Name+".html"), func(w io.Writer) error { return view.RenderDetail(w, e) }); err != nil {
			return err
		}
	}
	assets, err := fs.ReadDir(files, "assets")
	if err != nil {
		return err
	}
	for _, a := range assets {
		data, err := fs.ReadFile(files, "assets/"+a.Name())
		if err != nil {
			return err
		}
		if err := atomicfile.WriteFile(filepath.Join(dir, "assets", a.Name()), data, 0o644); err != nil {
			return err
		}
	}
	return atomicfile.SyncDir(dir)
}

// writeRendered writes the page write renders to path.
func writeRendered(path string, write func(io.Writer) error) error {
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, buf.Bytes(), 0o644)
}
