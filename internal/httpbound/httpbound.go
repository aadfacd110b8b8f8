// Package httpbound bounds what a registry's answers can make an HTTP
// client do: follow redirects forever, or buffer an endless API response.
// registry's clients and oci sources' (package sources) run on it.
package httpbound

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Bounds on what a registry can make a client do. go-containerregistry's
// clients follow redirects without Go's limit of 10 (their CheckRedirect
// only refuses redirects to private addresses), and read tag lists,
// catalogs and referrer indexes whole; a hostile registry could loop a
// client forever or make it buffer gigabytes.
const (
	// maxRedirects is the longest redirect chain followed.
	maxRedirects = 10
	// maxAPIResponse bounds the body of every registry API response but a
	// blob's: manifests, indexes, tag lists, repository lists, referrers.
	maxAPIResponse = 16 << 20
)

// ErrHostile means a registry answered in a way no honest one does:
// endless redirects or an oversized API response.
var ErrHostile = errors.New("the registry's answer exceeds bakery's bounds")

// Transport enforces the bounds under every client bakery and
// go-containerregistry build on it, over next.
func Transport(next http.RoundTripper) http.RoundTripper { return boundedTransport{next: next} }

// boundedTransport is Transport's.
type boundedTransport struct{ next http.RoundTripper }

// RoundTrip refuses a request that is the 11th redirect of a chain, and
// limits the body of non-blob responses.
func (t boundedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	first, hops := req, 0
	for first.Response != nil && first.Response.Request != nil {
		first = first.Response.Request
		hops++
	}
	if hops > maxRedirects {
		return nil, fmt.Errorf("%w: more than %d redirects from %s %s (a redirect loop?)", ErrHostile, maxRedirects, first.Method, first.URL.Redacted())
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil || strings.Contains(first.URL.Path, "/blobs/") {
		return resp, err
	}
	resp.Body = &limitedBody{ReadCloser: resp.Body, left: maxAPIResponse, url: first.URL.Redacted()}
	return resp, nil
}

// limitedBody fails a read beyond its limit instead of truncating.
type limitedBody struct {
	io.ReadCloser
	left int64
	url  string
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, fmt.Errorf("%w: %s answered with more than %d bytes", ErrHostile, b.url, maxAPIResponse)
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n - 1, fmt.Errorf("%w: %s answered with more than %d bytes", ErrHostile, b.url, maxAPIResponse)
	}
	return n, err
}
