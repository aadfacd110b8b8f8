package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/sysext-bakery/bakery/internal/fixture"
	"github.com/sysext-bakery/bakery/sign"
	"github.com/sysext-bakery/bakery/sysext"
)

// TestSubstitutionRefused plays an attacker who can write to the registry
// but not sign: a signed index of another extension, or of another version,
// served under the name or tag asked for, is refused by pull and verify,
// and nothing is written.
func TestSubstitutionRefused(t *testing.T) {
	for _, kind := range []string{"embedded", "ggcr"} {
		t.Run(kind, func(t *testing.T) {
			reg := startRegistry(t, kind)
			ctx := context.Background()
			key := newKey(t, sign.ECDSAP256)
			ns := reg.host + "/sysext"
			push := func(ext, version string, opts ...Option) PushResult {
				t.Helper()
				res, err := Push(ctx, ns+"/"+ext, []string{bakeDir(t, ext, version, 4096, "x86-64")}, append(opts, WithoutCatalog())...)
				if err != nil {
					t.Fatal(err)
				}
				return res
			}
			evil := push("evil", "9.9.9", WithSigner(key))
			old := push("kubetools", "1.2.3", WithSigner(key))
			push("kubetools", "1.3.0", WithSigner(key))
			fixture.CopySigned(t, ns+"/evil@"+evil.IndexDigest, ns+"/kubetools:stolen")
			fixture.Copy(t, ns+"/kubetools@"+old.IndexDigest, ns+"/kubetools:1.3.1") // crane tag
			// A genuine signature by the trusted key, but claiming another
			// extension: only an unsigned copy of kubetools holds it.
			unsigned := push("other", "2.0")
			fixture.Copy(t, ns+"/other@"+unsigned.IndexDigest, reg.host+"/elsewhere/other:2.0")
			elsewhere, _ := name.NewRepository(reg.host + "/elsewhere/other")
			attachSignature(t, elsewhere, unsigned.IndexDigest, unsigned.IndexDigest, sign.Claims{Kind: "sysext", Name: "evil", Version: "2.0"}, key, makeOptions(nil))

			tests := []struct {
				name, ref, want string
			}{
				{"another extension's signed index", ns + "/kubetools:stolen", `is extension "evil", not "kubetools"`},
				{"another extension's index by digest", ns + "/kubetools@" + evil.IndexDigest, `is extension "evil", not "kubetools"`},
				{"an older version under a version tag", ns + "/kubetools:1.3.1", "tag 1.3.1 names version 1.3.1"},
				{"a signature claiming another extension", reg.host + "/elsewhere/other:2.0", `signed as name "evil"`},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					out := t.TempDir()
					_, err := Pull(ctx, tt.ref, WithArch("x86-64"), WithOutDir(out), WithKeys(key.Public()))
					if !errors.Is(err, ErrSubstituted) || !strings.Contains(err.Error(), tt.want) {
						t.Errorf("Pull: %v, want ErrSubstituted saying %q", err, tt.want)
					}
					if n := listDir(t, out); len(n) != 0 {
						t.Errorf("refused pull left %v", n)
					}
					if _, err := Verify(ctx, tt.ref, WithKeys(key.Public())); !errors.Is(err, ErrSubstituted) {
						t.Errorf("Verify: %v, want ErrSubstituted", err)
					}
				})
			}
			// What is asked for is still had.
			if _, err := Pull(ctx, ns+"/kubetools:1.3.0", WithArch("x86-64"), WithOutDir(t.TempDir()), WithKeys(key.Public())); err != nil {
				t.Errorf("genuine pull: %v", err)
			}
			if _, err := Verify(ctx, ns+"/kubetools:stolen", WithName("evil"), WithKeys(key.Public())); err != nil {
				t.Errorf("verify of the copy as what it is (--name evil): %v", err)
			}
		})
	}
}

// TestImageNotWhatTheIndexSays refuses an image whose own
// extension-release names another extension than its signed index, before
// it is written.
func TestImageNotWhatTheIndexSays(t *testing.T) {
	reg := startRegistry(t, "ggcr")
	ctx := context.Background()
	key := newKey(t, sign.ECDSAP256)
	dir := bakeDir(t, "evil", "1.0", 4096, "x86-64")
	lie := WithReleaseReader(func(string) (sysext.Release, error) {
		return sysext.Release{"ID": "_any", "ARCHITECTURE": "x86-64", "SYSEXT_ID": "kubetools", "SYSEXT_VERSION_ID": "1.0"}, nil
	})
	if _, err := Push(ctx, reg.host+"/ns/kubetools", []string{dir}, lie, WithSigner(key), WithoutCatalog()); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	_, err := Pull(ctx, reg.host+"/ns/kubetools:1.0", WithArch("x86-64"), WithOutDir(out), WithKeys(key.Public()))
	if !errors.Is(err, ErrSubstituted) || !strings.Contains(err.Error(), "extension-release.evil") {
		t.Errorf("Pull: %v, want ErrSubstituted naming extension-release.evil", err)
	}
	if n := listDir(t, out); len(n) != 0 {
		t.Errorf("refused pull left %v", n)
	}
}

// TestPushTags checks that push validates every tag before writing
// anything, refuses a repository named after another extension, and moves
// moving tags only forward.
func TestPushTags(t *testing.T) {
	reg := startRegistry(t, "ggcr")
	ctx := context.Background()
	repo := reg.host + "/ns/app"
	dirs := map[string]string{}
	for _, v := range []string{"1.2.3", "1.3.0", "1.4.0"} {
		dirs[v] = bakeDir(t, "app", v, 4096, "x86-64")
	}
	tagsOf := func() []string {
		r, _ := name.NewRepository(repo)
		tags, err := remote.List(r)
		if err != nil {
			return nil
		}
		return tags
	}
	pointsAt := func(tag string) string {
		d, err := remote.Head(mustTag(t, repo+":"+tag))
		if err != nil {
			t.Fatalf("tag %s: %v", tag, err)
		}
		return d.Digest.String()
	}
	refused := []struct{ name, ref, version, want string }{
		{"invalid tag", repo + ":-lead", "1.3.0", "not a valid OCI tag"},
		{"tag naming another version", repo + ":1.2.9", "1.3.0", "names a version"},
		{"repository of another extension", reg.host + "/ns/other", "1.3.0", `images are extension app`},
	}
	for _, tt := range refused {
		if _, err := Push(ctx, tt.ref, []string{dirs[tt.version]}, WithoutCatalog()); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error saying %q", tt.name, err, tt.want)
		}
	}
	if tags := tagsOf(); len(tags) != 0 {
		t.Fatalf("refused pushes wrote tags %v", tags)
	}

	v13, err := Push(ctx, repo+":stable", []string{dirs["1.3.0"]}, WithoutCatalog())
	if err != nil {
		t.Fatal(err)
	}
	v12, err := Push(ctx, repo, []string{dirs["1.2.3"]}, WithoutCatalog())
	if err != nil {
		t.Fatal(err)
	}
	if pointsAt("latest") != v13.IndexDigest || len(v12.Kept) != 1 || v12.Kept[0] != (KeptTag{Tag: "latest", Version: "1.3.0"}) {
		t.Errorf("pushing 1.2.3 after 1.3.0 moved latest (kept %v)", v12.Kept)
	}
	if pointsAt("1.2.3") != v12.IndexDigest {
		t.Error("1.2.3 is not tagged")
	}
	if _, err := Push(ctx, repo+":stable", []string{dirs["1.2.3"]}, WithoutCatalog()); err == nil || !strings.Contains(err.Error(), "only moves forward") {
		t.Errorf("moving stable back: %v", err)
	}
	if pointsAt("stable") != v13.IndexDigest {
		t.Error("a refused push moved stable")
	}
	if _, err := Push(ctx, repo+":stable", []string{dirs["1.2.3"]}, WithoutCatalog(), WithForce()); err != nil || pointsAt("stable") != v12.IndexDigest || pointsAt("latest") != v12.IndexDigest {
		t.Errorf("--force did not move stable and latest back: %v", err)
	}
	v14, err := Push(ctx, repo, []string{dirs["1.4.0"]}, WithoutCatalog())
	if err != nil || pointsAt("latest") != v14.IndexDigest {
		t.Errorf("a newer version did not move latest: %v", err)
	}
}

func mustTag(t *testing.T, s string) name.Tag {
	t.Helper()
	tag, err := name.NewTag(s)
	if err != nil {
		t.Fatal(err)
	}
	return tag
}

// hostileRegistry serves a registry's /v2/ API with ggcr's in-memory
// registry, except for the paths handled by tricks; it counts requests.
type hostileRegistry struct {
	tricks   map[string]http.HandlerFunc // by path prefix
	requests atomic.Int64
	next     http.Handler
}

func (h *hostileRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.requests.Add(1)
	for prefix, f := range h.tricks {
		if strings.HasPrefix(r.URL.Path, prefix) {
			f(w, r)
			return
		}
	}
	h.next.ServeHTTP(w, r)
}

func startHostile(t *testing.T, tricks map[string]http.HandlerFunc) (*hostileRegistry, string) {
	t.Helper()
	h := &hostileRegistry{tricks: tricks, next: ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return h, strings.TrimPrefix(srv.URL, "http://")
}

// TestHostileRegistryBounds checks that a registry cannot loop a client or
// make it buffer without bound: a redirect loop on a manifest, an endless
// paged repository list, and an oversized API answer each end with an
// error after a bounded number of requests and bounded memory.
func TestHostileRegistryBounds(t *testing.T) {
	names := func(page, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("ns%07d/ext%07d", page, i)
		}
		return out
	}
	var page atomic.Int64
	tests := []struct {
		name     string
		tricks   map[string]http.HandlerFunc
		call     func(ctx context.Context, host string) error
		want     string
		requests int64
	}{
		{
			name: "redirect loop on a manifest",
			tricks: map[string]http.HandlerFunc{"/v2/ns/app/manifests/": func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, r.URL.String(), http.StatusTemporaryRedirect)
			}},
			call: func(ctx context.Context, host string) error {
				_, err := Pull(ctx, host+"/ns/app:latest", WithArch("x86-64"), WithOutDir(t.TempDir()), fastRetry)
				return err
			},
			want: "redirects", requests: 100,
		},
		{
			name: "endless repository list",
			tricks: map[string]http.HandlerFunc{"/v2/_catalog": func(w http.ResponseWriter, r *http.Request) {
				p := page.Add(1)
				w.Header().Set("Link", fmt.Sprintf(`</v2/_catalog?last=%s&n=5000>; rel="next"`, names(int(p), 1)[0]))
				json.NewEncoder(w).Encode(map[string][]string{"repositories": names(int(p), 5000)})
			}},
			call: func(ctx context.Context, host string) error { _, err := Catalog(ctx, host, fastRetry); return err },
			want: "more than 100000 repositories", requests: 30,
		},
		{
			name: "oversized repository list",
			tricks: map[string]http.HandlerFunc{"/v2/_catalog": func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, `{"repositories":["`)
				chunk := strings.Repeat("x", 1<<20)
				for range 64 {
					if _, err := io.WriteString(w, chunk); err != nil {
						return
					}
				}
				io.WriteString(w, `"]}`)
			}},
			call: func(ctx context.Context, host string) error {
				_, err := Catalog(ctx, host+"/ns", fastRetry)
				return err
			},
			want: "more than 16777216 bytes", requests: 20,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, host := startHostile(t, tt.tricks)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			err := tt.call(ctx, host)
			runtime.ReadMemStats(&after)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one saying %q", err, tt.want)
			}
			if n := h.requests.Load(); n > tt.requests {
				t.Errorf("%d requests, want at most %d", n, tt.requests)
			}
			if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 256<<20 {
				t.Errorf("heap grew by %d MB", grown>>20)
			}
		})
	}
}

// TestConcurrentPushesKeepEveryEntry pushes several extensions, and
// several versions of one, at the same time: the catalog must list them
// all (a read-modify-write of one catalog document loses some).
func TestConcurrentPushesKeepEveryEntry(t *testing.T) {
	for _, kind := range []string{"embedded", "docker-registry"} {
		t.Run(kind, func(t *testing.T) {
			reg := startRegistry(t, kind)
			ctx := context.Background()
			key := newKey(t, sign.ECDSAP256)
			type job struct{ ext, version string }
			var jobs []job
			for i := range 6 {
				jobs = append(jobs, job{fmt.Sprintf("ext%d", i), "1.0"})
			}
			for _, v := range []string{"2.0", "2.1", "2.2"} {
				jobs = append(jobs, job{"multi", v})
			}
			dirs := make([]string, len(jobs))
			for i, j := range jobs {
				dirs[i] = bakeDir(t, j.ext, j.version, 4096, "x86-64")
			}
			var wg sync.WaitGroup
			errs := make([]error, len(jobs))
			for i, j := range jobs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = Push(ctx, reg.host+"/sysext/"+j.ext, []string{dirs[i]}, WithSigner(key))
				}()
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			cat, err := Catalog(ctx, reg.host+"/sysext", WithKeys(key.Public()))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range cat.Catalog.Extensions {
				for _, v := range e.Versions {
					if !v.Signed {
						t.Errorf("%s %s not marked signed", e.Name, v.Version)
					}
					got = append(got, e.Name+" "+v.Version)
				}
			}
			want := "ext0 1.0|ext1 1.0|ext2 1.0|ext3 1.0|ext4 1.0|ext5 1.0|multi 2.0|multi 2.1|multi 2.2"
			if strings.Join(got, "|") != want {
				t.Errorf("catalog lists %q,\nwant %q", strings.Join(got, "|"), want)
			}
		})
	}
}

// TestSignedCatalog checks what a signed catalog promises: with --key
// only a signed, unexpired catalog of this namespace is accepted, its
// sequence grows, and a re-signed catalog extends its expiry.
func TestSignedCatalog(t *testing.T) {
	reg := startRegistry(t, "embedded")
	ctx := context.Background()
	key, other := newKey(t, sign.ECDSAP256), newKey(t, sign.ECDSAP256)
	trusted := WithKeys(key.Public())
	if _, err := Push(ctx, reg.host+"/unsigned/app", []string{bakeDir(t, "app", "1.0", 4096, "x86-64")}); err != nil {
		t.Fatal(err)
	}
	if _, err := Catalog(ctx, reg.host+"/unsigned", trusted); !errors.Is(err, ErrNoSignature) {
		t.Errorf("unsigned catalog with --key: %v, want ErrNoSignature", err)
	}
	if _, err := Catalog(ctx, reg.host+"/nothing", trusted); !errors.Is(err, ErrNoSignature) || !strings.Contains(err.Error(), "no catalog artifact") {
		t.Errorf("no catalog at all with --key: %v, want ErrNoSignature (no listing fallback)", err)
	}

	dir := bakeDir(t, "app", "1.0", 4096, "x86-64")
	if _, err := Push(ctx, reg.host+"/sysext/app", []string{dir}, WithSigner(key), WithCatalogValidity(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := Catalog(ctx, reg.host+"/sysext", trusted); !errors.Is(err, ErrCatalogExpired) {
		t.Errorf("expired catalog: %v, want ErrCatalogExpired", err)
	}
	first, err := Catalog(ctx, reg.host+"/sysext")
	if err != nil {
		t.Fatal(err)
	}
	refreshed, err := RefreshCatalog(ctx, reg.host+"/sysext", WithSigner(key))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Catalog(ctx, reg.host+"/sysext", trusted)
	if err != nil {
		t.Fatalf("re-signed catalog: %v", err)
	}
	if !got.Verified || got.Catalog.Sequence <= first.Catalog.Sequence || got.Digest != refreshed.Digest || len(got.Catalog.Extensions) != 1 {
		t.Errorf("re-signed catalog %+v (sequence before %d)", got, first.Catalog.Sequence)
	}
	if _, err := Catalog(ctx, reg.host+"/sysext", WithKeys(other.Public())); !errors.Is(err, ErrNoSignature) {
		t.Errorf("catalog checked with another key: %v, want ErrNoSignature", err)
	}
	// A catalog copied to another namespace keeps a valid signature but
	// claims the first namespace.
	fixture.CopySigned(t, reg.host+"/sysext/catalog@"+got.Digest, reg.host+"/mirror/catalog:latest")
	if _, err := Catalog(ctx, reg.host+"/mirror", trusted); !errors.Is(err, ErrSubstituted) {
		t.Errorf("catalog of another namespace: %v, want ErrSubstituted", err)
	}
}

// TestListingShowsImages checks the registry listing of a namespace
// without a catalog artifact: every extension, image digests and sizes
// (not those of the manifests), and an empty list rather than null.
func TestListingShowsImages(t *testing.T) {
	reg := startRegistry(t, "embedded")
	ctx := context.Background()
	res, err := Push(ctx, reg.host+"/ns/app", []string{bakeDir(t, "app", "1.0", 8192, "x86-64", "arm64")}, WithoutCatalog())
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{reg.host + "/ns", reg.host} {
		cat, err := Catalog(ctx, target)
		if err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		if cat.Source != "listing" || len(cat.Catalog.Extensions) != 1 || len(cat.Catalog.Extensions[0].Versions) != 1 {
			t.Fatalf("%s: %+v", target, cat)
		}
		for _, a := range cat.Catalog.Extensions[0].Versions[0].Arches {
			found := false
			for _, img := range res.Images {
				found = found || img.Arch == a.Arch && img.LayerDigest == a.Digest && img.Size == a.Size
			}
			if !found {
				t.Errorf("%s: arch %+v is not a pushed image (%+v)", target, a, res.Images)
			}
		}
	}
	empty, err := Catalog(ctx, reg.host+"/none")
	if err != nil || empty.Catalog.Extensions == nil {
		t.Errorf("empty namespace: %+v, %v", empty, err)
	}
}

// TestEmbeddedRegistryListsRepositories checks /v2/_catalog of the
// embedded registry answers with and without n (crane catalog uses it).
func TestEmbeddedRegistryListsRepositories(t *testing.T) {
	host := startEmbedded(t, t.TempDir())
	if _, err := Push(context.Background(), host+"/ns/app", []string{bakeDir(t, "app", "1.0", 4096, "x86-64")}, WithoutCatalog()); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"", "?n=10", "?n=1000"} {
		resp, err := http.Get("http://" + host + "/v2/_catalog" + q)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Repositories []string }
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != 200 || err != nil || strings.Join(body.Repositories, ",") != "ns/app" {
			t.Errorf("_catalog%s: %d %v %v", q, resp.StatusCode, body.Repositories, err)
		}
	}
}
