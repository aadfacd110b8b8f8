package registry

import (
	"context"
	"crypto"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/sirupsen/logrus"

	"github.com/sysext-bakery/bakery/internal/download"
	"github.com/sysext-bakery/bakery/internal/httpbound"
	"github.com/sysext-bakery/bakery/sysext"
)

// Option configures Push, Pull, Verify and Catalog.
type Option func(*options)

// ReleaseReader reads the extension-release fields of an image file. The
// extension's name is its SYSEXT_ID, else taken from the file name
// NAME-VERSION-ARCH.raw with VERSION = SYSEXT_VERSION_ID.
type ReleaseReader func(imagePath string) (sysext.Release, error)

// Progress receives byte counts of a transfer: name is the file, done and
// total are bytes (total 0 when unknown). It is called from the transfer's
// goroutine and must be cheap.
type Progress func(name string, done, total int64)

type options struct {
	arch        string // systemd architecture to pull; "" = this machine's
	keys        []crypto.PublicKey
	signer      crypto.Signer
	outDir      string
	dest        string
	insecure    bool
	transport   http.RoundTripper // nil: a tuned copy of remote.DefaultTransport
	keychain    authn.Keychain
	readRelease releaseReader
	progress    Progress
	annotations map[string]string
	inputs      map[string]string // systemd arch → inputs digest
	backoff     remote.Backoff
	catalog     bool
	noListing   bool   // Catalog: the artifact or nothing
	name        string // the extension asked for; "" = the repository's last element
	class       string // the image class asked for; "" = any
	have        string // the image digest the caller has; Pull then skips the download
	force       bool   // move tags backwards on push
	// catalogValidity is how long a catalog written now stays valid.
	catalogValidity time.Duration
	// pusher and puller, when set, are reused by every call so that the
	// registry is pinged and authenticated once per operation.
	pusher *remote.Pusher
	puller *remote.Puller
}

func makeOptions(opts []Option) *options {
	o := &options{
		outDir:          ".",
		keychain:        authn.DefaultKeychain,
		readRelease:     readReleaseNative,
		backoff:         remote.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 5},
		catalog:         true,
		catalogValidity: DefaultCatalogValidity,
	}
	for _, opt := range opts {
		opt(o)
	}
	if o.transport == nil {
		o.transport = defaultTransport(o.insecure)
	}
	o.transport = httpbound.Transport(o.transport)
	return o
}

// transportBuffer is the size of the HTTP transport's socket buffers. The
// default 4 KiB turns a 200 MB blob into 50,000 reads of the file and
// writes to the socket.
const transportBuffer = 256 << 10

// defaultTransport is go-containerregistry's default transport with larger
// buffers; insecure (--insecure) also accepts any TLS certificate. It is
// made once per operation so that all its requests share connections.
func defaultTransport(insecure bool) http.RoundTripper {
	t := remote.DefaultTransport.(*http.Transport).Clone()
	t.WriteBufferSize = transportBuffer
	t.ReadBufferSize = transportBuffer
	if insecure {
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // --insecure asks for exactly this
	}
	return t
}

// WithArch selects the systemd architecture (x86-64, arm64, …) to pull;
// the default is the running machine's.
func WithArch(systemdArch string) Option { return func(o *options) { o.arch = systemdArch } }

// WithKeys sets the trusted public keys: Pull and Verify then require a
// signature by one of them, and Catalog checks the catalog's signature.
func WithKeys(keys ...crypto.PublicKey) Option {
	return func(o *options) { o.keys = append(o.keys, keys...) }
}

// WithSigner makes Push sign the index (and the catalog) with key.
func WithSigner(key crypto.Signer) Option { return func(o *options) { o.signer = key } }

// WithOutDir makes Pull write NAME-VERSION-ARCH.raw into dir (default ".").
func WithOutDir(dir string) Option { return func(o *options) { o.outDir = dir } }

// WithDest makes Pull write the image to exactly path (e.g.
// /var/lib/extensions/NAME.raw); it overrides WithOutDir.
func WithDest(path string) Option { return func(o *options) { o.dest = path } }

// WithInsecure allows plain http (and any TLS certificate) to the registry.
func WithInsecure() Option { return func(o *options) { o.insecure = true } }

// WithTransport sets the HTTP transport under authentication and retries.
func WithTransport(t http.RoundTripper) Option { return func(o *options) { o.transport = t } }

// WithKeychain sets where credentials come from (default: the Docker config
// via authn.DefaultKeychain).
func WithKeychain(k authn.Keychain) Option { return func(o *options) { o.keychain = k } }

// WithReleaseReader sets how Push reads an image's extension-release
// (default: bakery's native readers of every format, a DDI's root
// partition included).
func WithReleaseReader(r ReleaseReader) Option {
	return func(o *options) { o.readRelease = fromReleaseReader(r) }
}

// WithProgress reports transfer progress of pushed and pulled images.
func WithProgress(p Progress) Option { return func(o *options) { o.progress = p } }

// WithAnnotations adds annotations to the pushed index and each entry
// (e.g. org.opencontainers.image.source, org.bakery.sysext.inputs-digest).
func WithAnnotations(a map[string]string) Option {
	return func(o *options) {
		if o.annotations == nil {
			o.annotations = map[string]string{}
		}
		for k, v := range a {
			o.annotations[k] = v
		}
	}
}

// WithInputsDigests sets the inputs digest each image was baked from,
// keyed by systemd architecture (bakery.InputsDigest), over what the
// images' directories' INPUTS files say. Push annotates each index entry
// and manifest with its arch's (org.bakery.sysext.inputs-digest), and the
// index with the version's, a digest of them all.
func WithInputsDigests(byArch map[string]string) Option {
	return func(o *options) { o.inputs = byArch }
}

// WithoutListing makes Catalog read only the catalog artifact: a namespace
// without one has an empty catalog (Source "none") instead of a listing
// of the registry. For deciding what is published, which only bakery's
// pushes (which all write the catalog) can have done.
func WithoutListing() Option { return func(o *options) { o.noListing = true } }

// WithName sets the extension Pull and Verify expect the reference to
// hold (default: the repository's last path element, which Push requires
// to be the extension's name). A signed index of another extension,
// copied with its signature to this repository, is refused.
func WithName(extension string) Option { return func(o *options) { o.name = extension } }

// WithClass makes Pull and Verify refuse an extension of another image
// class than class ("sysext" or "confext").
func WithClass(class string) Option { return func(o *options) { o.class = class } }

// WithHave tells Pull the digest ("sha256:HEX") of the image file the
// caller already has: when the resolved, verified image has that digest,
// Pull checks everything but downloads nothing (PullResult.Unchanged).
func WithHave(digest string) Option { return func(o *options) { o.have = digest } }

// WithForce lets Push move tags backwards: latest, or the tag REF names,
// to a version older than the one they point at now.
func WithForce() Option { return func(o *options) { o.force = true } }

// WithCatalogValidity sets how long the catalog Push or RefreshCatalog
// writes stays valid (default DefaultCatalogValidity).
func WithCatalogValidity(d time.Duration) Option { return func(o *options) { o.catalogValidity = d } }

// WithRetryBackoff sets the backoff between retries of failed requests.
func WithRetryBackoff(b remote.Backoff) Option { return func(o *options) { o.backoff = b } }

// WithoutCatalog makes Push leave the namespace's catalog artifact alone.
func WithoutCatalog() Option { return func(o *options) { o.catalog = false } }

// retryable tells failures worth another try (network errors, 429 and
// 5xx answers) from final ones.
func retryable(err error) bool {
	var ne net.Error
	var te *transport.Error
	if errors.As(err, &te) {
		return slices.Contains(download.RetryStatusCodes, te.StatusCode)
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, net.ErrClosed) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// remoteOptions are the go-containerregistry options o implies.
func (o *options) remoteOptions(ctx context.Context) []remote.Option {
	ropts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(o.transport),
		remote.WithAuthFromKeychain(o.keychain),
		remote.WithRetryBackoff(o.backoff),
		remote.WithRetryStatusCodes(download.RetryStatusCodes...),
		remote.WithRetryPredicate(retryable),
		remote.WithUserAgent("bakery"),
	}
	if o.pusher != nil {
		ropts = append(ropts, remote.Reuse(o.pusher))
	}
	if o.puller != nil {
		ropts = append(ropts, remote.Reuse(o.puller))
	}
	return ropts
}

// reuseConnections makes the calls of one operation share a pusher and a
// puller (and so their pings, tokens and connections).
func (o *options) reuseConnections(ctx context.Context) error {
	var err error
	if o.pusher, err = remote.NewPusher(o.remoteOptions(ctx)...); err != nil {
		return err
	}
	o.puller, err = remote.NewPuller(o.remoteOptions(ctx)...)
	return err
}

// nameOptions are the reference parsing options o implies.
func (o *options) nameOptions() []name.Option {
	if o.insecure {
		return []name.Option{name.Insecure}
	}
	return nil
}

// ServeOption configures Serve.
type ServeOption func(*serveOptions)

type serveOptions struct {
	certFile, keyFile string
	htpasswd          string
	ready             func(addr string)
	logLevel          logrus.Level
	page              func(api http.Handler) http.Handler
}

func makeServeOptions(opts []ServeOption) serveOptions {
	o := serveOptions{logLevel: logrus.FatalLevel}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithPage serves the handler newPage makes at / beside the registry API
// at /v2/; newPage gets the API's handler, to read the registry through it
// in process.
func WithPage(newPage func(api http.Handler) http.Handler) ServeOption {
	return func(o *serveOptions) { o.page = newPage }
}

// WithTLS serves https with the given PEM certificate and key files.
func WithTLS(certFile, keyFile string) ServeOption {
	return func(o *serveOptions) { o.certFile, o.keyFile = certFile, keyFile }
}

// WithHtpasswd requires basic authentication against an htpasswd file
// (bcrypt entries, as `htpasswd -B` writes). Use it with WithTLS.
func WithHtpasswd(path string) ServeOption { return func(o *serveOptions) { o.htpasswd = path } }

// WithReady is called with the listening address once Serve accepts
// connections (useful with port 0).
func WithReady(f func(addr string)) ServeOption { return func(o *serveOptions) { o.ready = f } }

// WithVerbose logs the registry's requests and errors to stderr.
func WithVerbose() ServeOption { return func(o *serveOptions) { o.logLevel = logrus.InfoLevel } }
