package page

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"mime"
	"net/http"
	"net/http/httptest"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sysext-bakery/bakery/registry"
)

// Config is how a Handler reads and presents a registry.
type Config struct {
	// Keys are the trusted public keys the catalogs are verified with.
	Keys []crypto.PublicKey
	// Insecure says nodes reach the registry over plain http (snippets
	// then carry insecure: true).
	Insecure bool
	// PublicHost is the registry's host[:port] as nodes reach it, for the
	// snippets; "" takes the host each request was sent to, which is right
	// when the page is served beside the registry.
	PublicHost string
	// TTL is how long a catalog read is reused; 0 means 15 s.
	TTL time.Duration
	// Log, when set, receives errors reading the registry.
	Log *log.Logger
}

// defaultTTL is how long a Handler reuses a catalog it read.
const defaultTTL = 15 * time.Second

// Handler serves the catalog pages of every namespace of a registry that
// holds a catalog artifact: / lists the namespaces (or redirects to the
// only one), /ns/NS/ is NS's listing, /ns/NS/ext/NAME.html an extension's
// page. It reads the registry through its API, as any client would.
type Handler struct {
	host    string
	options []registry.Option
	cfg     Config

	mu         sync.Mutex
	namespaces cached[[]string]
	catalogs   map[string]cached[*Catalog]
}

// cached is a value read at a time (or the error reading it).
type cached[T any] struct {
	value T
	err   error
	at    time.Time
}

// NewHandler returns a Handler reading the registry at host[:port] with
// the registry client's opts.
func NewHandler(host string, cfg Config, opts ...registry.Option) *Handler {
	if cfg.TTL <= 0 {
		cfg.TTL = defaultTTL
	}
	return &Handler{host: host, options: opts, cfg: cfg, catalogs: map[string]cached[*Catalog]{}}
}

// apiHost is the name a Handler made by ForAPI gives the registry it
// reads in process; it never reaches the network.
const apiHost = "registry.bakery.invalid"

// ForAPI returns a Handler reading the registry whose API handler is api,
// in process: what bakery registry serve mounts beside the API.
func ForAPI(api http.Handler, cfg Config) *Handler {
	return NewHandler(apiHost, cfg, registry.WithInsecure(), registry.WithTransport(apiTransport{api}))
}

// apiTransport sends requests to a handler in process. Responses are
// buffered whole: the page reads only manifests and catalog documents,
// which the registry client bounds.
type apiTransport struct{ api http.Handler }

// RoundTrip serves req with the handler.
func (t apiTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	in := req.Clone(req.Context())
	in.RequestURI = req.URL.RequestURI()
	in.RemoteAddr = "127.0.0.1:0"
	rec := httptest.NewRecorder()
	t.api.ServeHTTP(rec, in)
	if err := req.Context().Err(); err != nil {
		return nil, err // a RoundTripper returns a response or an error
	}
	res := rec.Result()
	res.Request = req
	return res, nil
}

// securityHeaders are sent with every page: nothing loads from
// elsewhere, nothing inline runs, the page is not framed.
var securityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
	"X-Content-Type-Options":  "nosniff",
	"Referrer-Policy":         "no-referrer",
	"X-Frame-Options":         "DENY",
}

// ServeHTTP serves a page or an asset.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for k, v := range securityHeaders {
		w.Header().Set(k, v)
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	dir, file := path.Split(p)
	switch {
	case strings.HasSuffix(dir, "/assets/"):
		serveAsset(w, r, file)
	case p == "/" || p == "/index.html":
		h.serveNamespaces(w, r)
	case strings.HasPrefix(p, "/ns/") && (file == "" || file == "index.html"):
		h.serveCatalog(w, r, strings.Trim(strings.TrimPrefix(dir, "/ns/"), "/"), "")
	case strings.HasPrefix(p, "/ns/") && strings.HasSuffix(dir, "/ext/") && strings.HasSuffix(file, ".html"):
		h.serveCatalog(w, r, strings.Trim(strings.TrimSuffix(strings.TrimPrefix(dir, "/ns/"), "/ext/"), "/"), strings.TrimSuffix(file, ".html"))
	default:
		http.NotFound(w, r)
	}
}

// serveAsset serves an embedded stylesheet or script.
func serveAsset(w http.ResponseWriter, r *http.Request, name string) {
	data, err := fs.ReadFile(files, "assets/"+name)
	if err != nil || name == "" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", mime.TypeByExtension(path.Ext(name)))
	w.Header().Set("Cache-Control", "public, max-age=300")
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
}

// serveNamespaces lists the namespaces with a catalog, or redirects to
// the only one.
func (h *Handler) serveNamespaces(w http.ResponseWriter, r *http.Request) {
	nss, err := h.loadNamespaces(r.Context())
	if err != nil {
		h.fail(w, err)
		return
	}
	if len(nss) == 1 {
		http.Redirect(w, r, "/ns/"+nss[0]+"/", http.StatusFound)
		return
	}
	data := struct {
		frame
		Namespaces []string
		Generated  string
		Sequence   int64
	}{frame: frame{Title: "bakery catalogs · " + h.publicHost(r)}, Namespaces: nss, Generated: time.Now().UTC().Format(time.RFC3339)}
	render(w, func(b io.Writer) error { return templates.ExecuteTemplate(b, "namespaces.html", data) })
}

// serveCatalog serves namespace ns's listing (name "") or the page of
// its extension name.
func (h *Handler) serveCatalog(w http.ResponseWriter, r *http.Request, ns, name string) {
	nss, err := h.loadNamespaces(r.Context())
	if err != nil {
		h.fail(w, err)
		return
	}
	// Only namespaces the registry lists with a catalog: reading any
	// other would list the whole registry, on any request.
	if !slices.Contains(nss, ns) {
		http.NotFound(w, r)
		return
	}
	c, err := h.loadCatalog(r.Context(), ns)
	if err != nil {
		h.fail(w, err)
		return
	}
	view := *c
	view.Namespace = strings.TrimSuffix(h.publicHost(r)+"/"+ns, "/")
	view.Insecure = h.cfg.Insecure
	view.Warning = strings.ReplaceAll(view.Warning, h.host, h.publicHost(r))
	if name == "" {
		render(w, view.Filter(r.URL.Query().Get("q"), r.URL.Query().Get("arch")).RenderListing)
		return
	}
	e, ok := view.Find(name)
	if !ok {
		http.NotFound(w, r)
		return
	}
	render(w, func(b io.Writer) error { return view.RenderDetail(b, e) })
}

// publicHost is the registry's host as nodes reach it.
func (h *Handler) publicHost(r *http.Request) string {
	if h.cfg.PublicHost != "" {
		return h.cfg.PublicHost
	}
	return r.Host
}

// render writes the page write renders, or an error page when it fails:
// never half a page.
func render(w http.ResponseWriter, write func(io.Writer) error) {
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		http.Error(w, "rendering the page failed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(buf.Bytes())
}

// fail answers that the registry could not be read.
func (h *Handler) fail(w http.ResponseWriter, err error) {
	if h.cfg.Log != nil {
		h.cfg.Log.Printf("catalog page: %v", err)
	}
	status := http.StatusBadGateway
	if errors.Is(err, context.Canceled) {
		status = http.StatusServiceUnavailable
	}
	http.Error(w, "reading the registry failed: "+err.Error(), status)
}

// loadNamespaces lists the namespaces with a catalog, at most once per
// TTL.
func (h *Handler) loadNamespaces(ctx context.Context) ([]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c := h.namespaces; !c.at.IsZero() && time.Since(c.at) < h.cfg.TTL {
		return c.value, c.err
	}
	nss, err := registry.Namespaces(ctx, h.host, h.options...)
	if ctx.Err() == nil { // a visitor who left is no answer for the others
		h.namespaces = cached[[]string]{nss, err, time.Now()}
	}
	return nss, err
}

// loadCatalog reads namespace ns's catalog, at most once per TTL.
func (h *Handler) loadCatalog(ctx context.Context, ns string) (*Catalog, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c, ok := h.catalogs[ns]; ok && time.Since(c.at) < h.cfg.TTL {
		return c.value, c.err
	}
	c, err := Load(ctx, Source{Namespace: strings.TrimSuffix(h.host+"/"+ns, "/"), Keys: h.cfg.Keys, Options: h.options})
	if err != nil {
		err = fmt.Errorf("catalog of %s: %w", ns, err)
	}
	if ctx.Err() == nil { // a visitor who left is no answer for the others
		h.catalogs[ns] = cached[*Catalog]{c, err, time.Now()}
	}
	return c, err
}
