package sources

import (
	"fmt"
	"os"
	"path/filepath"
)

// Cache is the content-addressed download cache: every verified download
// is kept as blobs/sha256/HEX, so a rebuild with the same inputs downloads
// nothing.
type Cache struct{ Dir string }

// DefaultCacheDir is $XDG_CACHE_HOME/bakery, else ~/.cache/bakery.
func DefaultCacheDir() (string, error) {
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "bakery"), nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory: set XDG_CACHE_HOME: %w", err)
	}
	return filepath.Join(d, "bakery"), nil
}

// blob is where the content with the given sha256 lives in the cache.
func (c Cache) blob(sha256hex string) string {
	return filepath.Join(c.Dir, "blobs", "sha256", sha256hex)
}
