package bakery

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/sysext-bakery/bakery/internal/atomicfile"
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

// Fetcher downloads sources (http, https, file URLs) into a Cache,
// verifying each against its pinned sha256 before it can be used.
type Fetcher struct {
	Cache  Cache
	Client *http.Client
	// Attempts is how often a download is tried on 429, 5xx and broken
	// connections; 0 means 4.
	Attempts int
	// Backoff is the wait before the second attempt, doubled after each;
	// 0 means 500ms.
	Backoff time.Duration
}

// ErrDigestMismatch is returned when a download's sha256 differs from the
// pinned one.
var ErrDigestMismatch = errors.New("sha256 mismatch")

// Fetch returns the path of a cached, verified copy of rawURL whose content
// must have the given sha256 (lowercase hex).
func (f *Fetcher) Fetch(ctx context.Context, rawURL, sha256hex string) (string, error) {
	if !isSHA256Hex(sha256hex) {
		return "", fmt.Errorf("%s: pinned sha256 %q is not 64 lowercase hex digits", rawURL, sha256hex)
	}
	path := f.Cache.blob(sha256hex)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("cache: %w", err)
	}
	tmp, err := atomicfile.Create(path)
	if err != nil {
		return "", fmt.Errorf("cache: %w", err)
	}
	defer tmp.Abort()
	sink := &fileSink{f: tmp, h: sha256.New()}
	if err := f.download(ctx, rawURL, sink); err != nil {
		return "", err
	}
	if got := hex.EncodeToString(sink.h.Sum(nil)); got != sha256hex {
		return "", fmt.Errorf("%s: %w: downloaded %s, recipe pins %s; if upstream changed the file on purpose, update the recipe's sha256", rawURL, ErrDigestMismatch, got, sha256hex)
	}
	if err := tmp.Commit(0o644); err != nil {
		return "", fmt.Errorf("cache: %w", err)
	}
	return path, nil
}

// FetchSmall downloads a small document (a sha256-url), which has no digest
// to check it against, keeping a copy keyed by URL for offline rebuilds.
func (f *Fetcher) FetchSmall(ctx context.Context, rawURL string) ([]byte, error) {
	key := sha256.Sum256([]byte(rawURL))
	path := filepath.Join(f.Cache.Dir, "urls", hex.EncodeToString(key[:]))
	if data, err := os.ReadFile(path); err == nil {
		return data, nil
	}
	buf := &limitedBuffer{max: 1 << 20}
	if err := f.download(ctx, rawURL, buf); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
		_ = atomicfile.WriteFile(path, buf.data, 0o644) // failing to cache only costs a download later
	}
	return buf.data, nil
}

// sink receives a download and can start over when a server cannot resume.
type sink interface {
	io.Writer
	Reset() error
}

// download writes rawURL's body to s, retrying transient failures (429,
// 5xx, broken connections, truncated bodies) with exponential backoff and
// resuming with a Range request where the server allows.
func (f *Fetcher) download(ctx context.Context, rawURL string, s sink) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("source URL %q: %w", rawURL, err)
	}
	switch u.Scheme {
	case "file":
		src, err := os.Open(u.Path)
		if err != nil {
			return fmt.Errorf("source %s: %w", rawURL, err)
		}
		defer src.Close()
		if _, err := io.Copy(s, src); err != nil {
			return fmt.Errorf("source %s: %w", rawURL, err)
		}
		return nil
	case "http", "https":
	default:
		return fmt.Errorf("source URL %q: scheme %q not supported (use http, https or file)", rawURL, u.Scheme)
	}
	attempts, backoff := f.Attempts, f.Backoff
	if attempts <= 0 {
		attempts = 4
	}
	if backoff <= 0 {
		backoff = 500 * time.Millisecond
	}
	var written int64
	var lastErr error
	for attempt := 1; attempt <= attempts; attempt++ {
		if attempt > 1 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backoff):
			}
			backoff *= 2
		}
		n, retry, err := f.get(ctx, rawURL, s, written)
		written += n
		if err == nil {
			return nil
		}
		lastErr = err
		if !retry {
			break
		}
	}
	return fmt.Errorf("download %s: %w", rawURL, lastErr)
}

// get makes one attempt, continuing after the first offset bytes; it
// returns how many bytes it wrote (after a restart: in all) and whether a
// failure is worth retrying.
func (f *Fetcher) get(ctx context.Context, rawURL string, s sink, offset int64) (n int64, retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return 0, false, err
	}
	if offset > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
	}
	client := f.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, ctx.Err() == nil, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent && offset > 0:
	case resp.StatusCode == http.StatusOK:
		if offset > 0 { // the server ignored Range: start over
			if err := s.Reset(); err != nil {
				return 0, false, err
			}
			n = -offset
		}
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return n, true, statusError(resp.StatusCode)
	default:
		return n, false, statusError(resp.StatusCode)
	}
	copied, err := io.Copy(s, resp.Body)
	n += copied
	var tooLarge errTooLarge
	if errors.As(err, &tooLarge) {
		return n, false, err
	}
	if err != nil {
		return n, ctx.Err() == nil, err
	}
	if resp.ContentLength >= 0 && copied != resp.ContentLength {
		return n, true, fmt.Errorf("body truncated: got %d of %d bytes", copied, resp.ContentLength)
	}
	return n, false, nil
}

// statusError reports an HTTP status by its code and standard text; the
// reason phrase the server sent is its own words, not quoted.
func statusError(code int) error {
	return fmt.Errorf("server answered %d %s", code, http.StatusText(code))
}

// fileSink writes a download to a file while hashing it.
type fileSink struct {
	f *atomicfile.File
	h hash.Hash
}

func (s *fileSink) Write(p []byte) (int, error) {
	n, err := s.f.Write(p)
	s.h.Write(p[:n])
	return n, err
}

func (s *fileSink) Reset() error {
	s.h.Reset()
	if err := s.f.Truncate(0); err != nil {
		return err
	}
	_, err := s.f.Seek(0, io.SeekStart)
	return err
}

// limitedBuffer collects a small download, refusing more than max bytes.
type limitedBuffer struct {
	data []byte
	max  int
}

// errTooLarge is a document over the size limit: no retry helps.
type errTooLarge struct{ max int }

func (e errTooLarge) Error() string {
	return fmt.Sprintf("document larger than %d bytes: is this really a sha256 file?", e.max)
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if len(b.data)+len(p) > b.max {
		return 0, errTooLarge{b.max}
	}
	b.data = append(b.data, p...)
	return len(p), nil
}

func (b *limitedBuffer) Reset() error {
	b.data = b.data[:0]
	return nil
}

// isSHA256Hex tells whether s is a sha256 digest in lowercase hex.
func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
