// Package download fetches one HTTP resource into a target that can start
// over: the one resumable download of bakery, used for recipe sources and
// for registry blobs. It resumes a broken transfer with a Range request
// (checking the Content-Range of the answer), starts over when a server
// ignores Range, stops at a size limit and when its context is done, and
// gives up after attempts in a row that make no progress. Retrying a
// request the server answered with 429 or 5xx is the client transport's
// job (go-containerregistry's transport.NewRetry for both callers), so
// that registry pulls and source downloads retry the same way.
package download

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sysext-bakery/bakery/internal/bytesize"
	"github.com/sysext-bakery/bakery/internal/teecopy"
)

// Target is where a download goes: writers that take every byte (a file
// and a hash, fed in parallel), and how to empty them to start over.
type Target struct {
	Writers []io.Writer
	Reset   func() error
}

// File is the target of a download into the empty file f, hashed by h as
// it is written.
func File(f *os.File, h hash.Hash) Target {
	return Target{Writers: []io.Writer{f, h}, Reset: func() error {
		h.Reset()
		if err := f.Truncate(0); err != nil {
			return err
		}
		_, err := f.Seek(0, io.SeekStart)
		return err
	}}
}

// Options say what a download may be.
type Options struct {
	// Size is the exact length expected, or -1 when unknown.
	Size int64
	// MaxSize, when above 0, bounds the body: a larger declared or actual
	// body fails with a *TooLargeError, which no retry changes.
	MaxSize int64
	// Advice completes a TooLargeError's message: what to do.
	Advice string
	// Stalls is how many attempts in a row may end without a new byte
	// before the download is given up; 0 means 6.
	Stalls int
	// Backoff is the wait after the first attempt without progress,
	// growing with each further one; 0 means 500 ms.
	Backoff time.Duration
	// Check turns an answer other than 200 or 206 into an error (e.g.
	// go-containerregistry's transport.CheckError for a registry's
	// structured errors); nil reports the status code and its standard
	// text, never the server's own words.
	Check func(*http.Response) error
	// Progress, when set, is told the bytes done and the total (0 when
	// unknown) as they arrive.
	Progress func(done, total int64)
}

// TooLargeError is a download over Options.MaxSize.
type TooLargeError struct {
	Max int64
	// Declared is the size the server announced; 0 when the limit was
	// crossed while reading.
	Declared int64
	Advice   string
}

func (e *TooLargeError) Error() string {
	if e.Declared > 0 {
		return fmt.Sprintf("%d bytes, more than the limit of %s; %s", e.Declared, bytesize.Format(e.Max), e.Advice)
	}
	return fmt.Sprintf("more than the limit of %s; %s", bytesize.Format(e.Max), e.Advice)
}

// StatusError is an answer other than 200 or 206.
type StatusError struct{ Code int }

func (e *StatusError) Error() string {
	return fmt.Sprintf("server answered %d %s", e.Code, http.StatusText(e.Code))
}

// RetryStatusCodes are the answers worth another attempt: the clients of
// both callers retry them with go-containerregistry's retry transport, and
// Get counts them as attempts without progress.
var RetryStatusCodes = []int{
	http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
	http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout,
}

// retryableStatus tells the answers worth another attempt.
func retryableStatus(code int) bool { return slices.Contains(RetryStatusCodes, code) }

// Get downloads url with client into t, as the package documentation says,
// and returns the bytes written. On error t holds a prefix of the body, or
// nothing; the caller discards it.
func Get(ctx context.Context, client *http.Client, url string, t Target, o Options) (int64, error) {
	stallsLeft, backoff := o.Stalls, o.Backoff
	if stallsLeft <= 0 {
		stallsLeft = 6
	}
	if backoff <= 0 {
		backoff = 500 * time.Millisecond
	}
	var off int64
	var errs []error
	for stalls := 0; ; {
		n, err := o.attempt(ctx, client, url, t, &off)
		switch {
		case err == nil && (o.Size < 0 || off == o.Size):
			return off, nil
		case err == nil:
			err = fmt.Errorf("the answer ended at byte %d of %d", off, o.Size)
		case ctx.Err() != nil:
			return off, ctx.Err()
		case final(err):
			return off, err
		}
		errs = append(errs, err)
		if n > 0 {
			stalls = 0
		} else if stalls++; stalls >= stallsLeft {
			return off, fmt.Errorf("gave up after %d attempts without progress: %w", stalls, errors.Join(errs...))
		}
		select {
		case <-ctx.Done():
			return off, ctx.Err()
		case <-time.After(backoff * time.Duration(stalls+1)):
		}
	}
}

// final tells the errors no further attempt changes.
func final(err error) bool {
	var tooLarge *TooLargeError
	var status *StatusError
	switch {
	case errors.As(err, &tooLarge):
		return true
	case errors.As(err, &status):
		return !retryableStatus(status.Code)
	}
	return false
}

// attempt makes one GET from *off on, appending to t; it returns the bytes
// it added.
func (o Options) attempt(ctx context.Context, client *http.Client, url string, t Target, off *int64) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	if *off > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(*off, 10)+"-")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK && *off > 0: // Range ignored: start over
		if err := t.Reset(); err != nil {
			return 0, err
		}
		*off = 0
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusPartialContent && *off > 0:
		if !strings.HasPrefix(resp.Header.Get("Content-Range"), "bytes "+strconv.FormatInt(*off, 10)+"-") {
			from := *off
			*off = 0 // the next attempt starts over, without Range
			return 0, errors.Join(fmt.Errorf("the server answered a Range request from byte %d with another range", from), t.Reset())
		}
	default:
		err := &StatusError{Code: resp.StatusCode}
		if o.Check != nil && !retryableStatus(resp.StatusCode) {
			if cerr := o.Check(resp); cerr != nil {
				return 0, errors.Join(err, cerr)
			}
		}
		return 0, err
	}
	total := o.Size
	if total < 0 && resp.ContentLength >= 0 {
		total = *off + resp.ContentLength
	}
	if o.MaxSize > 0 && total > o.MaxSize {
		return 0, &TooLargeError{Max: o.MaxSize, Declared: total, Advice: o.Advice}
	}
	body := io.Reader(resp.Body)
	if o.Size >= 0 {
		body = io.LimitReader(body, o.Size-*off)
	}
	if o.MaxSize > 0 {
		body = Cap(body, o.MaxSize-*off, &TooLargeError{Max: o.MaxSize, Advice: o.Advice})
	}
	writers := t.Writers
	if o.Progress != nil {
		writers = append(writers[:len(writers):len(writers)], &progress{done: *off, total: max(total, 0), report: o.Progress})
	}
	n, err := teecopy.Copy(ctxReader{ctx, body}, writers...)
	*off += n
	if err == nil && resp.ContentLength >= 0 && o.Size < 0 && n != resp.ContentLength {
		err = fmt.Errorf("the answer ended after %d of %d bytes", n, resp.ContentLength)
	}
	return n, err
}

// Cap returns a reader of at most max bytes of r that fails with tooLarge,
// instead of stopping, when r holds more.
func Cap(r io.Reader, max int64, tooLarge error) io.Reader {
	return &capped{r: r, left: max, err: tooLarge}
}

// capped fails a read beyond its limit instead of truncating.
type capped struct {
	r    io.Reader
	left int64
	err  error
}

func (c *capped) Read(p []byte) (int, error) {
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		return n - 1, c.err
	}
	return n, err
}

// ContextReader reads r until ctx is done: a long copy stops at the
// next read after a signal cancels it.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

// Read reads from r, or fails with ctx's error once ctx is done.
func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// progress reports the bytes written through it.
type progress struct {
	done, total int64
	report      func(done, total int64)
}

func (p *progress) Write(b []byte) (int, error) {
	p.done += int64(len(b))
	p.report(p.done, p.total)
	return len(b), nil
}
