package registry

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/sysext-bakery/bakery/internal/teecopy"
)

// maxStalls is how many requests in a row may fail without moving a blob
// download forward before it is given up.
const maxStalls = 6

// client is an authenticated HTTP client for the registry API of repo,
// with retries on 429/5xx.
func (o *options) client(ctx context.Context, reg name.Registry, scopes ...string) (*http.Client, error) {
	auth, err := o.keychain.Resolve(reg)
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", reg, err)
	}
	rt := transport.NewRetry(o.transport, transport.WithRetryBackoff(o.backoff),
		transport.WithRetryStatusCodes(retryStatusCodes...), transport.WithRetryPredicate(retryable))
	tr, err := transport.NewWithContext(ctx, reg, auth, rt, scopes)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", reg, err)
	}
	return &http.Client{Transport: tr}, nil
}

// registryURL is the URL of path on reg.
func registryURL(reg name.Registry, path string) string {
	return reg.Scheme() + "://" + reg.RegistryStr() + path
}

// downloadBlob writes blob want (size bytes) of repo to f, which must be
// empty, resuming with Range requests after broken transfers and starting
// over when the server ignores them. It returns only when f holds exactly
// the blob's bytes.
func downloadBlob(ctx context.Context, repo name.Repository, want v1.Hash, size int64, f *os.File, file string, o *options) error {
	c, err := o.client(ctx, repo.Registry, repo.Scope(transport.PullScope))
	if err != nil {
		return err
	}
	u := registryURL(repo.Registry, "/v2/"+repo.RepositoryStr()+"/blobs/"+want.String())
	h := sha256.New()
	var off int64
	var errs []error
	for stalls := 0; off < size || off == 0 && size == 0; {
		n, err := fetchRange(ctx, c, u, f, h, &off, size, file, o)
		if err == nil && off == size {
			break
		}
		if err == nil {
			err = fmt.Errorf("response ended at byte %d of %d", off, size)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var te *transport.Error
		if errors.As(err, &te) && !retryableStatus(te.StatusCode) {
			return err
		}
		errs = append(errs, err)
		if n > 0 {
			stalls = 0
		} else if stalls++; stalls >= maxStalls {
			return fmt.Errorf("download %s: gave up after %d attempts without progress: %w", want, stalls, errors.Join(errs...))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(o.backoff.Duration * time.Duration(stalls+1)):
		}
	}
	if got := fmt.Sprintf("%x", h.Sum(nil)); got != want.Hex || off != size {
		return fmt.Errorf("download %s: got %d bytes with sha256:%s: wrong content, nothing was written", want, off, got)
	}
	return nil
}

// retryableStatus tells HTTP statuses worth another try.
func retryableStatus(code int) bool {
	for _, c := range retryStatusCodes {
		if c == code {
			return true
		}
	}
	return false
}

// fetchRange makes one GET of the blob from *off on, appending to f and h.
// It returns how many bytes it added.
func fetchRange(ctx context.Context, c *http.Client, u string, f *os.File, h hash.Hash, off *int64, size int64, file string, o *options) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	if *off > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", *off))
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		if *off > 0 { // Range ignored: start over.
			if err := restart(f, h, off); err != nil {
				return 0, err
			}
		}
	case resp.StatusCode == http.StatusPartialContent && *off > 0:
		if !strings.HasPrefix(resp.Header.Get("Content-Range"), "bytes "+strconv.FormatInt(*off, 10)+"-") {
			if err := restart(f, h, off); err != nil {
				return 0, err
			}
			return 0, fmt.Errorf("server answered Range from %d with %q", *off, resp.Header.Get("Content-Range"))
		}
	default:
		return 0, transport.CheckError(resp, http.StatusOK)
	}
	w := io.Writer(f)
	if o.progress != nil {
		w = &progressWriter{w: f, file: file, done: *off, total: size, report: o.progress}
	}
	n, err := teecopy.Copy(io.LimitReader(resp.Body, size-*off), w, h)
	*off += n
	return n, err
}

// restart empties f and h for a download from the first byte.
func restart(f *os.File, h hash.Hash, off *int64) error {
	h.Reset()
	*off = 0
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.Seek(0, io.SeekStart)
	return err
}

// progressWriter reports bytes written through it.
type progressWriter struct {
	w           io.Writer
	file        string
	done, total int64
	report      Progress
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.done += int64(n)
	p.report(p.file, p.done, p.total)
	return n, err
}
