package sources

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/sysext-bakery/bakery/recipes"
	"github.com/sysext-bakery/bakery/stage"
)

// urlSource is a file fetched by URL, pinned by sha256 or by the
// upstream's checksum document (sha256-url), installed as one file or
// unpacked as an archive.
type urlSource struct {
	f      *Fetcher
	dir    string // the recipe's folder, for file URLs
	src    recipes.BuildSource
	digest v1.Hash // once resolved
	path   string  // the cached, verified file once fetched
}

// openURL opens a url source, refusing file URLs the Fetcher does not
// allow before anything is downloaded.
func openURL(f *Fetcher, dir string, src recipes.BuildSource) (Source, error) {
	for _, u := range []struct{ key, url string }{{"url", src.URL}, {"sha256-url", src.SHA256URL}} {
		if u.url != "" {
			if err := f.checkURL(u.url, dir); err != nil {
				return nil, keyErr(u.key, err)
			}
		}
	}
	return &urlSource{f: f, dir: dir, src: src}, nil
}

// Resolve is the pinned sha256, or the one the sha256-url document gives
// for the URL's file name.
func (s *urlSource) Resolve(ctx context.Context) (v1.Hash, error) {
	if s.digest.Hex != "" {
		return s.digest, nil
	}
	hex := s.src.SHA256
	if hex == "" {
		u, err := url.Parse(s.src.URL)
		if err != nil {
			return v1.Hash{}, keyErr("url", err)
		}
		var parsed string
		_, err = s.f.FetchSmall(ctx, s.src.SHA256URL, s.dir, func(body []byte) error {
			var err error
			parsed, err = recipes.ParseSHA256File(body, path.Base(u.Path))
			return err
		})
		if err != nil {
			return v1.Hash{}, keyErr("sha256-url", fmt.Errorf("%s: %w", s.src.SHA256URL, err))
		}
		hex = parsed
	}
	s.digest = v1.Hash{Algorithm: "sha256", Hex: hex}
	return s.digest, nil
}

// Fetch downloads the file into the cache unless it is there.
func (s *urlSource) Fetch(ctx context.Context) error {
	d, err := s.Resolve(ctx)
	if err != nil {
		return err
	}
	p, err := s.f.Fetch(ctx, s.src.URL, d.Hex, s.dir)
	if err != nil {
		return keyErr("url", err)
	}
	s.path = p
	return nil
}

// Stage installs the file or unpacks the archive, errors naming the URL.
func (s *urlSource) Stage(ctx context.Context, root *os.Root, maxEntries int) error {
	file, err := os.Open(s.path)
	if err != nil {
		return keyErr("url", err)
	}
	defer file.Close()
	if in := s.src.Install; in != nil {
		return keyErr("install", stage.File(ctx, root, file, s.src.URL, in.To, in.Mode))
	}
	x := s.src.Extract
	_, err = stage.Archive(ctx, root, file, stage.Options{
		Origin:          s.src.URL,
		MaxEntries:      maxEntries,
		StripComponents: x.StripComponents,
		Include:         x.Include,
		To:              x.To,
		Mode:            x.Mode,
	})
	return keyErr("extract", err)
}
