package sources

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/sysext-bakery/bakery/internal/atomicfile"
	"github.com/sysext-bakery/bakery/internal/download"
	"github.com/sysext-bakery/bakery/internal/filetype"
	"github.com/sysext-bakery/bakery/internal/httpbound"
	"github.com/sysext-bakery/bakery/internal/teecopy"
)

// DefaultMaxSourceSize is the limit on one source's size when
// [Fetcher.MaxSize] is 0: 8 GiB, several times the largest toolchain or
// Kubernetes release archive, and small enough that a runaway download
// cannot fill a build machine's disk.
const DefaultMaxSourceSize int64 = 8 << 30

// maxSHA256File is the limit on a sha256-url's document.
const maxSHA256File = 1 << 20

// ErrFileURL is wrapped by the refusal of a file URL that names a file
// outside the recipe's folder while [Fetcher.AllowFileURLs] is off.
var ErrFileURL = errors.New("file URL outside the recipe's folder")

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
	// MaxSize is the most bytes one source may have, checked against the
	// declared size before a download and while it streams; 0 means
	// DefaultMaxSourceSize.
	MaxSize int64
	// Mirrors rewrite URL prefixes before anything is fetched (bake
	// --mirror FROM=TO): for air-gapped builds and tests. The file-URL
	// rule applies to URLs as the recipe wrote them; where a mirror points
	// is the user's choice.
	Mirrors []Mirror
	// AllowFileURLs lets file URLs name any file. Without it a file URL
	// must name a file inside the recipe's folder once symbolic links are
	// resolved, and a recipe without a folder (from the catalog) may use
	// none.
	AllowFileURLs bool
}

// ErrDigestMismatch is returned when a download's sha256 differs from the
// pinned one.
var ErrDigestMismatch = errors.New("sha256 mismatch")

// Fetch returns the path of a cached, verified copy of rawURL whose content
// must have the given sha256 (lowercase hex). dir is the recipe's folder,
// which file URLs must stay inside (see AllowFileURLs); "" when the recipe
// has none.
func (f *Fetcher) Fetch(ctx context.Context, rawURL, sha256hex, dir string) (string, error) {
	if !isSHA256Hex(sha256hex) {
		return "", fmt.Errorf("%s: pinned sha256 %q is not 64 lowercase hex digits", rawURL, sha256hex)
	}
	if err := f.checkURL(rawURL, dir); err != nil {
		return "", err
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
	h := sha256.New()
	limit := sizeLimit{max: f.maxSize(), advice: "if the source really is that large, raise bake --max-source-size"}
	if err := f.download(ctx, rawURL, dir, download.File(tmp.File, h), limit); err != nil {
		return "", err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sha256hex {
		return "", fmt.Errorf("%s: %w: downloaded %s, recipe pins %s; if upstream changed the file on purpose, update the recipe's sha256", rawURL, ErrDigestMismatch, got, sha256hex)
	}
	if err := tmp.Commit(0o644); err != nil {
		return "", fmt.Errorf("cache: %w", err)
	}
	return path, nil
}

// FetchSmall downloads a small document (a sha256-url), which has no digest
// to check it against, and hands it to check. A copy of an http or https
// document that check accepts is kept, keyed by URL, for offline rebuilds
// (a document that does not parse is fetched again next time); a file
// URL's document is read each time and never copied. dir is as for Fetch.
func (f *Fetcher) FetchSmall(ctx context.Context, rawURL, dir string, check func([]byte) error) ([]byte, error) {
	if err := f.checkURL(rawURL, dir); err != nil {
		return nil, err
	}
	key := sha256.Sum256([]byte(rawURL))
	path := filepath.Join(f.Cache.Dir, "urls", hex.EncodeToString(key[:]))
	u, err := url.Parse(rawURL)
	local := err == nil && u.Scheme == "file"
	if !local {
		if data, err := os.ReadFile(path); err == nil && check(data) == nil {
			return data, nil
		}
	}
	buf := &buffer{}
	if err := f.download(ctx, rawURL, dir, buf.target(), sizeLimit{max: maxSHA256File, advice: "is sha256-url really a sha256 file?"}); err != nil {
		return nil, err
	}
	if err := check(buf.data); err != nil {
		return nil, err
	}
	if !local {
		_ = atomicfile.WriteFile(path, buf.data, 0o644) // failing to cache only costs a download later
	}
	return buf.data, nil
}

// checkURL refuses a file URL that AllowFileURLs does not let the recipe
// in folder dir use ("" for a recipe without a folder); other URLs pass.
// Fetch and FetchSmall check again as they open the file.
func (f *Fetcher) checkURL(rawURL, dir string) error {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "file" {
		return nil // download reports it
	}
	if _, _, err := f.localFile(u.Path, dir); err != nil {
		return fmt.Errorf("%s: %w", rawURL, err)
	}
	return nil
}

// localFile decides where the file at path p may be opened from: the
// folder to open it in (the recipe's, symbolic links resolved) and the path
// relative to it, or no folder and p itself when AllowFileURLs is set.
func (f *Fetcher) localFile(p, dir string) (base, rel string, err error) {
	if f.AllowFileURLs || dir == mirrored {
		return "", p, nil
	}
	const allow = "pass --allow-file-urls to bake if you trust the recipe with every file you can read"
	if dir == "" {
		return "", "", fmt.Errorf("%w (a catalog recipe has no folder, so it may read no local file): copy the recipe into a folder holding the file, or %s", ErrFileURL, allow)
	}
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", "", fmt.Errorf("recipe folder: %w", err)
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", "", err
	}
	rel, err = filepath.Rel(realDir, real)
	if err != nil || !filepath.IsLocal(rel) {
		return "", "", fmt.Errorf("%w (the file is %s, the recipe's folder %s): move the file into the recipe's folder, or %s", ErrFileURL, real, realDir, allow)
	}
	return realDir, rel, nil
}

// openFile opens the regular file at path p for reading, as localFile
// allows, refusing anything else before a byte is read: a fifo is opened
// without waiting for a writer and a device is never read from.
func (f *Fetcher) openFile(p, dir string) (*os.File, error) {
	base, rel, err := f.localFile(p, dir)
	if err != nil {
		return nil, err
	}
	const flags = os.O_RDONLY | syscall.O_NONBLOCK
	var file *os.File
	if base == "" {
		file, err = os.OpenFile(rel, flags, 0)
	} else {
		var root *os.Root
		if root, err = os.OpenRoot(base); err != nil {
			return nil, err
		}
		defer root.Close()
		file, err = root.OpenFile(rel, flags, 0) // a link swapped in since localFile cannot leave base
	}
	if err != nil {
		return nil, err
	}
	fi, err := file.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is %s, not a regular file; a source must be a file", p, filetype.Name(fi.Mode()))
	}
	if err != nil {
		file.Close()
		return nil, err
	}
	return file, nil
}

// target is where a download goes: the writers (download.Target) and,
// for a buffer, what it holds.
type target = download.Target

// errTooLarge tells a size refusal apart from other failures.
type errTooLarge = download.TooLargeError

// sizeLimit is the most bytes a download may have, and what to do about a
// larger one.
type sizeLimit struct {
	max    int64
	advice string
}

// download writes rawURL's body to t, at most limit.max bytes, stopping
// when ctx is done. A file URL is read from the local file as openFile
// allows; http and https go through download.Get: resumed with Range
// where the server allows, retried by the client's transport on 429 and
// 5xx.
func (f *Fetcher) download(ctx context.Context, rawURL, dir string, t target, limit sizeLimit) error {
	if m, ok := f.mirror(rawURL); ok {
		rawURL, dir = m, mirrored // a mirror's files are the user's to name
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("source URL %q: %w", rawURL, err)
	}
	switch u.Scheme {
	case "file":
		if err := f.copyFile(ctx, u.Path, dir, t, limit); err != nil {
			return fmt.Errorf("read %s: %w", rawURL, err)
		}
		return nil
	case "http", "https":
	default:
		return fmt.Errorf("source URL %q: scheme %q not supported (use http, https or file)", rawURL, u.Scheme)
	}
	_, err = download.Get(ctx, f.client(), rawURL, t, download.Options{
		Size: -1, MaxSize: limit.max, Advice: limit.advice, Backoff: f.Backoff,
	})
	if err != nil {
		return fmt.Errorf("download %s: %w", rawURL, err)
	}
	return nil
}

// maxSize is MaxSize, or DefaultMaxSourceSize when it is not set.
func (f *Fetcher) maxSize() int64 {
	if f.MaxSize <= 0 {
		return DefaultMaxSourceSize
	}
	return f.MaxSize
}

// backoff is how downloads and registry requests are retried: Backoff
// doubled after each attempt, four attempts.
func (f *Fetcher) backoff() remote.Backoff {
	d := f.Backoff
	if d <= 0 {
		d = 500 * time.Millisecond
	}
	return remote.Backoff{Duration: d, Factor: 2, Jitter: 0.1, Steps: 4}
}

// client is the HTTP client of downloads: Client, else one that retries
// 408, 429 and 5xx answers and broken connections with go-containerregistry's
// retry transport, as registry pulls do.
func (f *Fetcher) client() *http.Client {
	if f.Client != nil {
		return f.Client
	}
	return &http.Client{Transport: transport.NewRetry(http.DefaultTransport,
		transport.WithRetryBackoff(f.backoff()),
		transport.WithRetryStatusCodes(download.RetryStatusCodes...))}
}

// remoteOptions are the go-containerregistry options of registry
// requests (oci sources): credentials from the Docker config, Client's
// transport when set, bounded as registry's clients are (redirects, API
// answers), the retries of downloads.
func (f *Fetcher) remoteOptions(ctx context.Context) []remote.Option {
	next := remote.DefaultTransport
	if f.Client != nil && f.Client.Transport != nil {
		next = f.Client.Transport
	}
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(httpbound.Transport(next)),
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithRetryBackoff(f.backoff()),
		remote.WithRetryStatusCodes(download.RetryStatusCodes...),
		remote.WithUserAgent("bakery"),
	}
}

// copyFile copies the file at path p to t.
func (f *Fetcher) copyFile(ctx context.Context, p, dir string, t target, limit sizeLimit) error {
	src, err := f.openFile(p, dir)
	if err != nil {
		return err
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return err
	}
	if fi.Size() > limit.max {
		return &errTooLarge{Max: limit.max, Declared: fi.Size(), Advice: limit.advice}
	}
	_, err = teecopy.Copy(download.ContextReader(ctx, download.Cap(src, limit.max, &errTooLarge{Max: limit.max, Advice: limit.advice})), t.Writers...)
	return err
}

// buffer collects a small download in memory.
type buffer struct{ data []byte }

func (b *buffer) Write(p []byte) (int, error) {
	b.data = append(b.data, p...)
	return len(p), nil
}

// target is a download target of b.
func (b *buffer) target() target {
	return target{Writers: []io.Writer{b}, Reset: func() error { b.data = b.data[:0]; return nil }}
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

// mirrored stands for the recipe folder of a URL a mirror rewrote: any
// file may be named.
const mirrored = "\x00mirror"

// Mirror rewrites URLs that start with From to start with To.
type Mirror struct{ From, To string }

// ParseMirror reads FROM=TO, both non-empty.
func ParseMirror(s string) (Mirror, error) {
	from, to, ok := strings.Cut(s, "=")
	if !ok || from == "" || to == "" {
		return Mirror{}, fmt.Errorf("mirror %q: want FROM=TO, e.g. https://github.com/=http://127.0.0.1:8080/github/", s)
	}
	return Mirror{From: from, To: to}, nil
}

// mirror rewrites rawURL with the mirror of the longest matching From.
func (f *Fetcher) mirror(rawURL string) (string, bool) {
	best := -1
	for i, m := range f.Mirrors {
		if strings.HasPrefix(rawURL, m.From) && (best < 0 || len(m.From) > len(f.Mirrors[best].From)) {
			best = i
		}
	}
	if best < 0 {
		return "", false
	}
	m := f.Mirrors[best]
	return m.To + strings.TrimPrefix(rawURL, m.From), true
}
