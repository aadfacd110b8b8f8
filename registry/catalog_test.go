package registry

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

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
			got = append(got, fmt.Sprintf("%s %s %s signed=%v attached=%v arches=%d", e.Name, v.Version, e.Description, v.Signed, v.SignatureAttached, len(v.Arches)))
		}
	}
	// A listing checks no signature: signed is never true, attached says
	// what is there.
	want := []string{"alpha 1.0 alpha tool signed=false attached=true arches=1", "alpha 1.1 alpha tool signed=false attached=true arches=1",
		"beta 0.1 beta tool signed=false attached=false arches=1"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("catalog:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestAddVersion checks that an entry replaces a version pushed again and
// keeps the others in systemd's version order.
func TestAddVersion(t *testing.T) {
	var e CatalogExtension
	for _, v := range []struct{ version, digest string }{{"2", "d2"}, {"1", "d3"}, {"2", "d4"}, {"10", "d5"}, {"1.0~rc1", "d6"}} {
		e.addVersion(CatalogVersion{Version: v.version, Digest: v.digest})
	}
	var got []string
	for _, v := range e.Versions {
		got = append(got, v.Version+" "+v.Digest)
	}
	if want := "1 d3|1.0~rc1 d6|2 d4|10 d5"; strings.Join(got, "|") != want {
		t.Errorf("got %q, want %q", strings.Join(got, "|"), want)
	}
}
