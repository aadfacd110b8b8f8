package registry

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/sysext-bakery/bakery/internal/download"
)

// client is an authenticated HTTP client for the registry API of repo,
// with retries on 429/5xx.
func (o *options) client(ctx context.Context, reg name.Registry, scopes ...string) (*http.Client, error) {
	auth, err := o.keychain.Resolve(reg)
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", reg, err)
	}
	rt := transport.NewRetry(o.transport, transport.WithRetryBackoff(o.backoff),
		transport.WithRetryStatusCodes(download.RetryStatusCodes...), transport.WithRetryPredicate(retryable))
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
// empty, through download.Get: resumed with Range requests after broken
// transfers, started over when the server ignores them, the registry's
// structured errors reported. It returns only when f holds exactly the
// blob's bytes.
func downloadBlob(ctx context.Context, repo name.Repository, want v1.Hash, size int64, f *os.File, file string, o *options) error {
	c, err := o.client(ctx, repo.Registry, repo.Scope(transport.PullScope))
	if err != nil {
		return err
	}
	u := registryURL(repo.Registry, "/v2/"+repo.RepositoryStr()+"/blobs/"+want.String())
	h := sha256.New()
	opts := download.Options{Size: size, Backoff: o.backoff.Duration,
		Check: func(resp *http.Response) error {
			return transport.CheckError(resp, http.StatusOK, http.StatusPartialContent)
		}}
	if o.progress != nil {
		opts.Progress = func(done, total int64) { o.progress(file, done, total) }
	}
	n, err := download.Get(ctx, c, u, download.File(f, h), opts)
	if err != nil {
		return fmt.Errorf("download %s: %w", want, err)
	}
	if got := fmt.Sprintf("%x", h.Sum(nil)); got != want.Hex || n != size {
		return fmt.Errorf("download %s: got %d bytes with sha256:%s: wrong content, nothing was written", want, n, got)
	}
	return nil
}
