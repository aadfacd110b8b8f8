package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// TestListPaged runs the paged listing against servers that paginate with
// Link headers, ignore n, or ignore last.
func TestListPaged(t *testing.T) {
	all := []string{"a/1", "a/2", "b/1", "b/2", "c/1", "d/9", "e/0"}
	tests := []struct {
		name     string
		ignoreN  bool // one big page
		ignoreLa bool // every page starts at the beginning
		pageSize int
		want     []string
	}{
		{"link pages", false, false, 2, all},
		{"ignores n", true, false, 2, all},
		// Only the first page can be had; the listing must end, not loop.
		{"ignores last", false, true, 3, all[:3]},
		{"page size fits", false, false, 100, all},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requests := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests++
				n, _ := strconv.Atoi(r.URL.Query().Get("n"))
				if tt.ignoreN || n == 0 {
					n = len(all)
				}
				start := 0
				if last := r.URL.Query().Get("last"); last != "" && !tt.ignoreLa {
					for start < len(all) && all[start] <= last {
						start++
					}
				}
				end := min(start+n, len(all))
				page := all[start:end]
				if len(page) > 0 && (end < len(all) || tt.ignoreN) {
					w.Header().Set("Link", fmt.Sprintf(`</v2/_catalog?last=%s&n=%d>; rel="next"`, page[len(page)-1], n))
				}
				json.NewEncoder(w).Encode(map[string][]string{"repositories": page})
			}))
			defer srv.Close()
			got, err := listPaged(context.Background(), srv.Client(), srv.URL+"/v2/_catalog?n="+strconv.Itoa(tt.pageSize), "repositories")
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if requests > len(all)+2 {
				t.Errorf("%d requests for %d items", requests, len(all))
			}
		})
	}
}

// TestCatalogFallback lists a namespace without a catalog artifact from
// /v2/_catalog and the tag lists of Debian's docker-registry.
func TestCatalogFallback(t *testing.T) {
	reg := startRegistry(t, "docker-registry")
	ctx := context.Background()
	key := newKey(t, "")
	for _, p := range []struct{ name, version string }{{"alpha", "1.0"}, {"alpha", "1.1"}, {"beta", "0.1"}} {
		dir := bakeDir(t, p.name, p.version, 4096, "x86-64")
		opts := []Option{WithoutCatalog(), WithAnnotations(map[string]string{AnnotationDescription: p.name + " tool"})}
		if p.name == "alpha" {
			opts = append(opts, WithSigner(key))
		}
		if _, err := Push(ctx, reg.host+"/ns/"+p.name, []string{dir}, opts...); err != nil {
			t.Fatal(err)
		}
	}
	// Not in the namespace: must not be listed.
	if _, err := Push(ctx, reg.host+"/other/gamma", []string{bakeDir(t, "gamma", "1", 4096, "x86-64")}, WithoutCatalog()); err != nil {
		t.Fatal(err)
	}
	res, err := Catalog(ctx, reg.host+"/ns")
	if err != nil {
		t.Fatal(err)
	}
	if res.Source != "listing" {
		t.Fatalf("source %q, want listing", res.Source)
	}
	var got []string
	for _, e := range res.Catalog.Extensions {
		for _, v := range e.Versions {
			got = append(got, fmt.Sprintf("%s %s %s signed=%v arches=%d", e.Name, v.Version, e.Description, v.Signed, len(v.Arches)))
		}
	}
	want := []string{"alpha 1.0 alpha tool signed=true arches=1", "alpha 1.1 alpha tool signed=true arches=1", "beta 0.1 beta tool signed=false arches=1"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("catalog:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestMergeCatalog checks that a push replaces its own version and keeps
// the others, sorted.
func TestMergeCatalog(t *testing.T) {
	push := func(name, version, digest string) PushResult {
		return PushResult{Name: name, Version: version, Repository: "r/" + name, IndexDigest: digest, Tags: []string{tagSafe(version), "latest"},
			Images: []PushedImage{{Arch: "x86-64", LayerDigest: "sha256:l", Size: 1}}}
	}
	var doc CatalogDoc
	desc := func(d string) map[string]string {
		return map[string]string{AnnotationDescription: d, AnnotationInputsDigest: "in-" + d}
	}
	doc = mergeCatalog(doc, push("b", "1", "d1"), desc("B"))
	doc = mergeCatalog(doc, push("a", "2", "d2"), desc("A"))
	doc = mergeCatalog(doc, push("a", "1", "d3"), nil)
	doc = mergeCatalog(doc, push("a", "2", "d4"), desc(""))
	doc = mergeCatalog(doc, push("a", "10", "d5"), nil) // after 2: versions sort like systemd's
	var got []string
	for _, e := range doc.Extensions {
		for _, v := range e.Versions {
			got = append(got, e.Name+" "+v.Version+" "+v.Digest+" "+e.Description+" "+v.InputsDigest)
		}
	}
	want := "a 1 d3 A |a 2 d4 A in-|a 10 d5 A |b 1 d1 B in-B"
	if strings.Join(got, "|") != want {
		t.Errorf("got %q, want %q", strings.Join(got, "|"), want)
	}
}
