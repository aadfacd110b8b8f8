package page

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/sysext-bakery/bakery/merge"
	"github.com/sysext-bakery/bakery/registry"
)

// hostileText is markup a catalog may carry where text belongs.
const hostileText = `<script>alert(1)</script><img src=x onerror="alert('x')"> "q" & 'a'`

// testCatalog is a verified catalog of n extensions with m versions each,
// one of them (name "evil") carrying markup in its fields.
func testCatalog(n, m int) registry.CatalogResult {
	doc := registry.CatalogDoc{Namespace: "registry.example/sysext", Sequence: 7, Updated: "2026-12-01T00:00:00Z", Expires: "2026-12-31T00:00:00Z"}
	for i := range n {
		e := registry.CatalogExtension{Name: fmt.Sprintf("ext%03d", i), Class: "sysext", Repository: fmt.Sprintf("registry.example/sysext/ext%03d", i),
			Description: "an extension", License: "Apache-2.0"}
		if i == 0 {
			e.Name, e.Description, e.License = "evil", hostileText, hostileText
		}
		for j := range m {
			v := registry.CatalogVersion{Version: fmt.Sprintf("1.%d.0", j), Tag: fmt.Sprintf("1.%d.0", j), Digest: fmt.Sprintf("sha256:%064x", i*1000+j), Signed: true,
				Created: "2026-12-01T00:00:00Z", Release: map[string]string{"ID": "flatcar", "SYSEXT_LEVEL": "1.0"},
				Sources: []string{"https://example.com/a.tar.gz"},
				Arches:  []registry.CatalogArch{{Arch: "x86-64", Digest: fmt.Sprintf("sha256:%064x", j), Size: 1 << 20}, {Arch: "arm64", Digest: fmt.Sprintf("sha256:%064x", j+1), Size: 1 << 20}}}
			if i == 0 {
				v.Created, v.Sources, v.Release = hostileText, []string{"javascript:alert(1)", hostileText}, map[string]string{"ID": hostileText}
			}
			e.Versions = append(e.Versions, v)
		}
		doc.Extensions = append(doc.Extensions, e)
	}
	return registry.CatalogResult{Source: "artifact", Verified: true, Key: "KEYHINT", Catalog: doc}
}

// TestHostileCatalogIsText renders a catalog whose fields hold markup and
// whose names are not extension names: the markup comes out escaped, and
// the bad names are left out with a warning.
func TestHostileCatalogIsText(t *testing.T) {
	res := testCatalog(3, 2)
	res.Catalog.Extensions = append(res.Catalog.Extensions, registry.CatalogExtension{Name: "../../etc/passwd", Versions: []registry.CatalogVersion{{Version: "1"}}},
		registry.CatalogExtension{Name: `x"><script>`, Versions: []registry.CatalogVersion{{Version: "1"}}},
		registry.CatalogExtension{Name: "badclass", Class: "x; rm -rf /", Versions: []registry.CatalogVersion{{Version: "1", Tag: "1"}}},
		registry.CatalogExtension{Name: "badtag", Versions: []registry.CatalogVersion{{Version: "1.0.0", Tag: "1.0.0"}, {Version: "2.0.0", Tag: "2.0.0;curl x|sh"}}})
	c := newCatalog("registry.example/sysext", res, "")
	if len(c.Extensions) != 4 || !strings.Contains(c.Warning, `"../../etc/passwd"`) || !strings.Contains(c.Warning, `"badclass"`) || !strings.Contains(c.Warning, `"badtag:2.0.0;curl x|sh"`) {
		t.Fatalf("extensions %d, warning %q: want the bad names and the bad class left out and named, and the bad tag", len(c.Extensions), c.Warning)
	}
	// A tag goes into a command to copy: only valid OCI tags do.
	bt, _ := c.Find("badtag")
	if pull := c.Snippets(bt)[1].Text; !strings.Contains(pull, "/badtag:1.0.0 ") || strings.Contains(pull, "curl") {
		t.Errorf("pull snippet %q, want the latest valid tag, 1.0.0", pull)
	}
	e, _ := c.Find("evil")
	for name, render := range map[string]func(*bytes.Buffer) error{
		"listing": func(b *bytes.Buffer) error { return c.RenderListing(b) },
		"detail":  func(b *bytes.Buffer) error { return c.RenderDetail(b, e) },
	} {
		var b bytes.Buffer
		if err := render(&b); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		// The bad name is shown quoted (%q) in the warning: escaped, its
		// `"><script>` cannot appear.
		for _, bad := range []string{"<script>alert", "<img src=x", `href="javascript:`, `"><script>`} {
			if strings.Contains(out, bad) {
				t.Errorf("%s holds %q unescaped", name, bad)
			}
		}
		if !strings.Contains(out, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s does not show the markup as text", name)
		}
	}
}

func TestFilter(t *testing.T) {
	res := testCatalog(4, 1)
	res.Catalog.Extensions[2].Versions[0].Arches = res.Catalog.Extensions[2].Versions[0].Arches[1:] // arm64 only
	c := newCatalog("r/ns", res, "")
	for _, tt := range []struct {
		query, arch string
		shown       []string
	}{
		{"", "", []string{"evil", "ext001", "ext002", "ext003"}},
		{"", "x86-64", []string{"evil", "ext001", "ext003"}},
		{"EXT00", "arm64", []string{"ext001", "ext002", "ext003"}},
		{"script", "", []string{"evil"}}, // the description
		{"nothing", "", nil},
	} {
		f := c.Filter(tt.query, tt.arch)
		var shown []string
		for _, e := range f.Extensions {
			if !e.Hidden {
				shown = append(shown, e.Name)
			}
		}
		if fmt.Sprint(shown) != fmt.Sprint(tt.shown) || f.Shown != len(tt.shown) {
			t.Errorf("Filter(%q, %q) shows %v (%d), want %v", tt.query, tt.arch, shown, f.Shown, tt.shown)
		}
	}
	if c.Extensions[1].Hidden {
		t.Error("Filter changed the catalog it filtered")
	}
}

// TestSnippets checks that the sync.yaml snippet is one bakery sync reads,
// for both classes and with the catalog required only when verified.
func TestSnippets(t *testing.T) {
	for _, tt := range []struct {
		class    string
		verified bool
	}{{"sysext", true}, {"confext", false}} {
		res := testCatalog(2, 2)
		res.Verified = tt.verified
		res.Catalog.Extensions[1].Class = tt.class
		c := newCatalog("registry.example:5000/sysext", res, "")
		c.Insecure = true
		e, _ := c.Find("ext001")
		snips := c.Snippets(e)
		cfg, err := merge.ParseConfig([]byte(snips[0].Text), "snippet")
		if err != nil {
			t.Fatalf("%s snippet does not parse: %v\n%s", tt.class, err, snips[0].Text)
		}
		x := cfg.Extensions[0]
		if cfg.Registry != c.Namespace || !cfg.Insecure || !cfg.Policy.RequireSignature || cfg.Policy.RequireCatalog != tt.verified ||
			x.Name != "ext001" || (x.Class != tt.class && !(tt.class == "sysext" && x.Class == "")) {
			t.Errorf("%s snippet: %+v", tt.class, cfg)
		}
		if want := "bakery pull registry.example:5000/sysext/ext001:1.1.0 --key release.pub"; !strings.HasPrefix(snips[1].Text, want) {
			t.Errorf("pull snippet %q, want it to start %q", snips[1].Text, want)
		}
	}
}

// TestExport writes a catalog as files, replaces an earlier export, and
// refuses to replace anything else.
func TestExport(t *testing.T) {
	c := newCatalog("r/ns", testCatalog(3, 2), "")
	dir := filepath.Join(t.TempDir(), "new", "site")
	for range 2 { // the second replaces the first
		if err := Export(dir, c); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"index.html", "ext/evil.html", "ext/ext002.html", "assets/page.css", "assets/page.js"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("export lacks %s: %v", f, err)
		}
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), ".site.tmp-*")); len(leftovers) != 0 {
		t.Errorf("export left %v", leftovers)
	}
	index, _ := os.ReadFile(filepath.Join(dir, "index.html"))
	if !bytes.Contains(index, []byte(`data-static="1"`)) {
		t.Error("an export does not say it is static (the script filters it)")
	}
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "notes.txt"), []byte("mine"), 0o644)
	if err := Export(other, c); err == nil || !strings.Contains(err.Error(), "other files") {
		t.Errorf("export over a directory of other files: %v", err)
	}
	if data, _ := os.ReadFile(filepath.Join(other, "notes.txt")); string(data) != "mine" {
		t.Error("a refused export touched the directory")
	}
}

// TestHandlerRoutes checks what the handler answers to other than pages.
func TestHandlerRoutes(t *testing.T) {
	// Nothing listens: reading fails, at once.
	h := NewHandler("127.0.0.1:1", Config{}, registry.WithInsecure(), registry.WithRetryBackoff(remote.Backoff{Steps: 1}))
	for _, tt := range []struct {
		method, path string
		status       int
		header       string
	}{
		{"GET", "/assets/page.css", 200, "text/css; charset=utf-8"},
		{"GET", "/ns/x/assets/page.js", 200, "text/javascript; charset=utf-8"},
		{"GET", "/assets/nothing.js", 404, ""},
		{"POST", "/", 405, ""},
		{"GET", "/elsewhere", 404, ""},
		{"GET", "/", 502, ""},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
		if rec.Code != tt.status || (tt.header != "" && rec.Header().Get("Content-Type") != tt.header) {
			t.Errorf("%s %s = %d %q, want %d %q", tt.method, tt.path, rec.Code, rec.Header().Get("Content-Type"), tt.status, tt.header)
		}
		if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("%s %s: Content-Security-Policy %q", tt.method, tt.path, csp)
		}
	}
}

// BenchmarkRenderListing renders the listing of 500 extensions × 10
// versions (the target: under 200 ms).
func BenchmarkRenderListing(b *testing.B) {
	c := newCatalog("r/ns", testCatalog(500, 10), "")
	for b.Loop() {
		var buf bytes.Buffer
		if err := c.Filter("", "").RenderListing(&buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServeListing serves the listing of 500 extensions × 10
// versions through the handler, from its cache.
func BenchmarkServeListing(b *testing.B) {
	h := NewHandler("r", Config{})
	h.namespaces = cached[[]string]{value: []string{"ns"}, at: farFuture}
	h.catalogs["ns"] = cached[*Catalog]{value: newCatalog("r/ns", testCatalog(500, 10), ""), at: farFuture}
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/ns/ns/?arch=x86-64", nil))
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}

// farFuture keeps a cached value fresh for the benchmark.
var farFuture = time.Now().Add(time.Hour)

// TestHandlerForgetsCancelledReads serves a visitor who left before the
// registry answered, then another: the first read's cancellation is not
// cached for the second, who gets the page.
func TestHandlerForgetsCancelledReads(t *testing.T) {
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/v2/_catalog" {
			w.Write([]byte(`{"repositories":[]}`))
		}
	}))
	defer reg.Close()
	h := NewHandler(strings.TrimPrefix(reg.URL, "http://"), Config{}, registry.WithInsecure())
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil).WithContext(gone))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("the visitor who left got %d, want 503", rec.Code)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("the next visitor got %d (%s), want the page: the cancelled read was cached", rec.Code, rec.Body)
	}
}
