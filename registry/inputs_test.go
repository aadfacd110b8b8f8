package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestPushInputsDigests pushes images with their inputs digests, from a
// bake directory's INPUTS or from WithInputsDigests, and reads them back
// from the index (each entry its arch's, the index the version's) and
// the catalog, whose Published finds a build by them.
func TestPushInputsDigests(t *testing.T) {
	digest := func(c byte) string { return "sha256:" + strings.Repeat(string(c), 64) }
	tests := []struct {
		name    string
		inputs  string // INPUTS written into the bake directory
		byArch  map[string]string
		want    map[string]string // arch → inputs digest
		version bool              // whether the index has a version inputs digest
	}{
		{"from INPUTS", "%[1]s  hello-1.0-x86-64.raw\n%[2]s  hello-1.0-arm64.raw\n", nil,
			map[string]string{"x86-64": digest('1'), "arm64": digest('2')}, true},
		{"WithInputsDigests over INPUTS", "%[1]s  hello-1.0-x86-64.raw\n", map[string]string{"x86-64": digest('3')},
			map[string]string{"x86-64": digest('3'), "arm64": ""}, false},
		{"none", "", nil, map[string]string{"x86-64": "", "arm64": ""}, false},
	}
	reg := startRegistry(t, "ggcr")
	ctx := context.Background()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := bakeDir(t, "hello", "1.0", 4096, "x86-64", "arm64")
			if tt.inputs != "" {
				body := fmt.Sprintf(tt.inputs, strings.Repeat("1", 64), strings.Repeat("2", 64))
				if err := os.WriteFile(filepath.Join(dir, "INPUTS"), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			ns := fmt.Sprintf("%s/ns%d", reg.host, i)
			res, err := Push(ctx, ns+"/hello", []string{dir}, WithInputsDigests(tt.byArch))
			if err != nil {
				t.Fatal(err)
			}
			mb, err := fetchManifest(mustTag(t, ns+"/hello:1.0"), makeOptions(nil).remoteOptions(ctx))
			if err != nil {
				t.Fatal(err)
			}
			var idx v1.IndexManifest
			if err := json.Unmarshal(mb.raw, &idx); err != nil {
				t.Fatal(err)
			}
			for _, e := range idx.Manifests {
				arch := e.Annotations[AnnotationArchitecture]
				if got := e.Annotations[AnnotationInputsDigest]; got != tt.want[arch] {
					t.Errorf("%s entry: inputs digest %q, want %q", arch, got, tt.want[arch])
				}
			}
			if got := idx.Annotations[AnnotationInputsDigest]; (got != "") != tt.version || got == tt.want["x86-64"] && got != "" {
				t.Errorf("index inputs digest %q, want one of its own: %v", got, tt.version)
			}
			cat, err := Catalog(ctx, ns, WithoutListing())
			if err != nil {
				t.Fatal(err)
			}
			if v := cat.Catalog.Extensions[0].Versions[0]; v.InputsDigest != idx.Annotations[AnnotationInputsDigest] {
				t.Errorf("catalog version inputs digest %q, index %q", v.InputsDigest, idx.Annotations[AnnotationInputsDigest])
			}
			for arch, want := range tt.want {
				v, ok := cat.Catalog.Published("hello", arch, want)
				if ok != (want != "") || ok && v.Digest != res.IndexDigest {
					t.Errorf("Published(%s, %q) = %v, %v", arch, want, v.Digest, ok)
				}
				if _, ok := cat.Catalog.Published("hello", arch, digest('9')); ok {
					t.Errorf("Published(%s) found digest that was never pushed", arch)
				}
			}
			if _, ok := cat.Catalog.Published("other", "x86-64", tt.want["x86-64"]); ok {
				t.Error("Published found another extension's build")
			}
		})
	}
	t.Run("a version's inputs digest depends on every arch's", func(t *testing.T) {
		a := []*localImage{{inputs: digest('1')}, {inputs: digest('2')}}
		a[0].arch.Name, a[1].arch.Name = "x86-64", "arm64"
		b := []*localImage{{inputs: digest('1')}, {inputs: digest('3')}}
		b[0].arch.Name, b[1].arch.Name = "x86-64", "arm64"
		if versionInputs(a) == versionInputs(b) || versionInputs(a) != versionInputs([]*localImage{a[1], a[0]}) {
			t.Error("versionInputs must change with any arch's digest and not with their order")
		}
	})
}

// TestCatalogWithoutListing: a namespace with no catalog artifact has an
// empty catalog, not a listing of the registry, when listing is off.
func TestCatalogWithoutListing(t *testing.T) {
	reg := startRegistry(t, "ggcr")
	if _, err := Push(context.Background(), reg.host+"/ns/hello", []string{bakeDir(t, "hello", "1.0", 4096, "x86-64")}, WithoutCatalog()); err != nil {
		t.Fatal(err)
	}
	res, err := Catalog(context.Background(), reg.host+"/ns", WithoutListing())
	if err != nil || res.Source != "none" || len(res.Catalog.Extensions) != 0 {
		t.Errorf("Catalog = %+v, %v; want an empty catalog from nowhere", res, err)
	}
}
