package sources

import (
	"context"
	"errors"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/sysext-bakery/bakery/internal/fixture"
	"github.com/sysext-bakery/bakery/internal/httpbound"
	"github.com/sysext-bakery/bakery/recipes"
)

// toolImage is a two-layer image for goarch: the lower layer holds a tool
// built for it, a file and a directory that the upper layer whites out
// (the file) and makes opaque (the directory), adding one of its own.
func toolImage(t *testing.T, goarch string) v1.Image {
	t.Helper()
	lower := fixture.Layer(t, goarch == "arm64", []fixture.LayerEntry{
		{Name: "usr/", Dir: true, Mode: 0o755},
		{Name: "usr/bin/", Dir: true, Mode: 0o755},
		{Name: "usr/bin/tool", Mode: 0o755, Body: []byte("tool for " + goarch)},
		{Name: "usr/share/doc/tool/OLD", Mode: 0o644, Body: []byte("old notes")},
		{Name: "usr/share/doc/tool/README", Mode: 0o644, Body: []byte("readme")},
		{Name: "usr/lib/tool/plugins/a.so", Mode: 0o644, Body: []byte("a")},
		{Name: "usr/lib/tool/plugins/b.so", Mode: 0o644, Body: []byte("b")},
		{Name: "etc/tool.conf", Mode: 0o644, Body: []byte("not included")},
	})
	upper := fixture.Layer(t, false, []fixture.LayerEntry{
		{Name: "usr/share/doc/tool/.wh.OLD"},
		{Name: "usr/lib/tool/plugins/.wh..wh..opq"},
		{Name: "usr/lib/tool/plugins/c.so", Mode: 0o644, Body: []byte("c")},
		{Name: "usr/bin/tool-link", Link: "tool"},
	})
	return fixture.Image(t, goarch, lower, upper)
}

// ociBuild is an oci source of ref for goarch, extracting /usr.
func ociBuild(ref, goarch string) recipes.BuildSource {
	return recipes.BuildSource{Kind: recipes.OCISource, OCI: ref, GoArch: goarch, Extract: &recipes.Extract{Include: []string{"usr"}, To: "/"}}
}

// stageOCI opens, resolves, fetches and stages src into a new directory,
// whose tree it returns (path → content, "dir" or "-> target").
func stageOCI(t *testing.T, f *Fetcher, src recipes.BuildSource) (map[string]string, error) {
	t.Helper()
	s, err := Open(f, "", src)
	if err != nil {
		return nil, err
	}
	if err := s.Fetch(context.Background()); err != nil {
		return nil, err
	}
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if err := s.Stage(context.Background(), root, 0); err != nil {
		return nil, err
	}
	tree := map[string]string{}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.IsDir():
			tree[rel] = "dir"
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			tree[rel] = "-> " + target
		default:
			b, _ := os.ReadFile(p)
			tree[rel] = string(b)
		}
		return nil
	})
	return tree, err
}

// wantTool is the staged tree of toolImage for goarch.
func wantTool(goarch string) map[string]string {
	return map[string]string{
		"usr": "dir", "usr/bin": "dir", "usr/bin/tool": "tool for " + goarch, "usr/bin/tool-link": "-> tool",
		"usr/share": "dir", "usr/share/doc": "dir", "usr/share/doc/tool": "dir", "usr/share/doc/tool/README": "readme",
		"usr/lib": "dir", "usr/lib/tool": "dir", "usr/lib/tool/plugins": "dir", "usr/lib/tool/plugins/c.so": "c",
	}
}

// TestOCISource fetches a two-layer multi-arch image for each arch: the
// platform's layers are applied with their whiteouts, Resolve fetches
// nothing, and a second fetch is served from the cache alone.
func TestOCISource(t *testing.T) {
	reg := fixture.ServeRegistry(t)
	ref := reg.PushIndex(t, "ns/tool", map[string]v1.Image{"amd64": toolImage(t, "amd64"), "arm64": toolImage(t, "arm64")})
	for _, goarch := range []string{"amd64", "arm64"} {
		t.Run(goarch, func(t *testing.T) {
			f := &Fetcher{Cache: Cache{Dir: t.TempDir()}, Backoff: 1}
			before := reg.BlobGets.Load() + reg.ManifestGets.Load()
			s, err := Open(f, "", ociBuild(ref, goarch))
			if err != nil {
				t.Fatal(err)
			}
			d, err := s.Resolve(context.Background())
			if err != nil || d.String() != ref[strings.Index(ref, "@")+1:] {
				t.Errorf("Resolve = %v, %v; want the pinned digest", d, err)
			}
			if n := reg.BlobGets.Load() + reg.ManifestGets.Load() - before; n != 0 {
				t.Errorf("Resolve made %d requests", n)
			}
			for round := range 2 {
				blobs, manifests := reg.BlobGets.Load(), reg.ManifestGets.Load()
				tree, err := stageOCI(t, f, ociBuild(ref, goarch))
				if err != nil {
					t.Fatal(err)
				}
				if !maps.Equal(tree, wantTool(goarch)) {
					t.Errorf("staged tree:\n got %q\nwant %q", tree, wantTool(goarch))
				}
				b, m := reg.BlobGets.Load()-blobs, reg.ManifestGets.Load()-manifests
				if round == 0 && (b != 3 || m != 2) {
					t.Errorf("first fetch: %d blob and %d manifest requests, want 3 (config, 2 layers) and 2 (index, manifest)", b, m)
				}
				if round == 1 && b+m != 0 {
					t.Errorf("second fetch: %d blob and %d manifest requests, want none", b, m)
				}
			}
		})
	}
}

// TestOCIPlatformChoice: a digest may name an index or a single image;
// a build for a platform the image lacks is refused before any layer is
// downloaded.
func TestOCIPlatformChoice(t *testing.T) {
	reg := fixture.ServeRegistry(t)
	single := reg.PushImage(t, "ns/single", toolImage(t, "amd64"))
	onlyAMD := reg.PushIndex(t, "ns/index", map[string]v1.Image{"amd64": toolImage(t, "amd64")})
	tests := []struct {
		name, ref, goarch, wantErr string
	}{
		{"single image of the build's arch", single, "amd64", ""},
		{"single image of another arch", single, "arm64", "the image is for linux/amd64, the build for linux/arm64: pin the image index"},
		{"index without the arch", onlyAMD, "arm64", "the image index has no image for linux/arm64 (it has linux/amd64)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &Fetcher{Cache: Cache{Dir: t.TempDir()}, Backoff: 1}
			blobs := reg.BlobGets.Load()
			tree, err := stageOCI(t, f, ociBuild(tt.ref, tt.goarch))
			if tt.wantErr == "" {
				if err != nil || !maps.Equal(tree, wantTool(tt.goarch)) {
					t.Fatalf("stage: %v\n%q", err, tree)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one saying %q", err, tt.wantErr)
			}
			if n := reg.BlobGets.Load() - blobs; n > 1 {
				t.Errorf("%d blob requests: no layer should be fetched", n)
			}
		})
	}
}

// TestOCITampered: content in the registry that does not match the
// digests pinning it (a layer's bytes changed in storage, a manifest or
// the index replaced under its digest) is refused, and nothing of it is
// cached.
func TestOCITampered(t *testing.T) {
	const blobMismatch, manifestMismatch = "sha256 mismatch: the registry sent content with", "does not match requested digest"
	tests := []struct {
		name   string
		tamper func(t *testing.T, reg *fixture.Registry, ref name.Digest, img v1.Image)
		want   string
	}{
		{"layer bytes", func(t *testing.T, reg *fixture.Registry, _ name.Digest, img v1.Image) {
			layers, _ := img.Layers()
			d, _ := layers[1].Digest()
			flipByte(t, reg.BlobPath(d))
		}, blobMismatch},
		{"config bytes", func(t *testing.T, reg *fixture.Registry, _ name.Digest, img v1.Image) {
			d, _ := img.ConfigName()
			flipByte(t, reg.BlobPath(d))
		}, blobMismatch},
		{"manifest under its digest", func(t *testing.T, _ *fixture.Registry, ref name.Digest, img v1.Image) {
			d, _ := img.Digest()
			raw, _ := img.RawManifest()
			putRaw(t, ref.Context().Digest(d.String()), append(raw, ' '), types.OCIManifestSchema1)
		}, manifestMismatch},
		{"index under its digest", func(t *testing.T, _ *fixture.Registry, ref name.Digest, _ v1.Image) {
			putRaw(t, ref, []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`), types.OCIImageIndex)
		}, manifestMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := fixture.ServeRegistry(t)
			img := toolImage(t, "amd64")
			ref := reg.PushIndex(t, "ns/tool", map[string]v1.Image{"amd64": img})
			pinned, err := name.NewDigest(ref)
			if err != nil {
				t.Fatal(err)
			}
			tt.tamper(t, reg, pinned, img)
			f := &Fetcher{Cache: Cache{Dir: t.TempDir()}, Backoff: 1}
			_, err = stageOCI(t, f, ociBuild(ref, "amd64"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one saying %q", err, tt.want)
			}
			if tt.want == blobMismatch && !errors.Is(err, ErrDigestMismatch) {
				t.Errorf("err = %v, want ErrDigestMismatch", err)
			}
			for _, p := range cacheFiles(t, f.Cache.Dir) {
				data, _ := os.ReadFile(p)
				if !hasDigest(data, v1.Hash{Algorithm: "sha256", Hex: filepath.Base(p)}) {
					t.Errorf("cache holds %s, whose content has another digest", p)
				}
			}
		})
	}
}

// flipByte changes the first byte of the file at p.
func flipByte(t *testing.T, p string) {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data[0] ^= 0xff
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// rawManifest is a manifest or index to PUT as is.
type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.raw, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }

// putRaw stores raw under ref, which the test registry allows whatever
// its digest.
func putRaw(t *testing.T, ref name.Reference, raw []byte, mt types.MediaType) {
	t.Helper()
	if err := remote.Put(ref, rawManifest{raw, mt}); err != nil {
		t.Fatal(err)
	}
}

// TestOCIMirror fetches an image named by another registry through a
// mirror of its prefix; a mirror that changes the digest is refused.
func TestOCIMirror(t *testing.T) {
	reg := fixture.ServeRegistry(t)
	ref := reg.PushIndex(t, "mirror/ns/tool", map[string]v1.Image{"amd64": toolImage(t, "amd64")})
	digest := ref[strings.Index(ref, "@"):]
	upstream := "registry.invalid/ns/tool" + digest
	tests := []struct {
		name    string
		mirrors []Mirror
		wantErr string
	}{
		{"registry prefix", []Mirror{{"registry.invalid/", reg.Host + "/mirror/"}}, ""},
		{"plain http mirror", []Mirror{{"registry.invalid/", "http://" + reg.Host + "/mirror/"}}, ""},
		{"no mirror", nil, "registry.invalid"},
		{"mirror changing the digest", []Mirror{{"registry.invalid/ns/tool@sha256:", reg.Host + "/mirror/ns/tool@sha256:0"}}, "not a reference to the same digest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &Fetcher{Cache: Cache{Dir: t.TempDir()}, Mirrors: tt.mirrors, Backoff: 1, Attempts: 1}
			tree, err := stageOCI(t, f, ociBuild(upstream, "amd64"))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !maps.Equal(tree, wantTool("amd64")) {
				t.Fatalf("stage: %v\n%q", err, tree)
			}
		})
	}
}

// TestOCIHostileRegistry: a registry that redirects forever, or answers
// with an endless manifest, is given up on after bounded requests.
func TestOCIHostileRegistry(t *testing.T) {
	tests := []struct {
		name   string
		handle http.HandlerFunc
	}{
		{"redirect loop", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, r.URL.String(), http.StatusTemporaryRedirect)
		}},
		{"endless manifest", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", string(types.OCIImageIndex))
			chunk := []byte(strings.Repeat(" ", 64<<10))
			for {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var requests atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				if r.URL.Path == "/v2/" {
					return
				}
				tt.handle(w, r)
			}))
			t.Cleanup(srv.Close)
			ref := strings.TrimPrefix(srv.URL, "http://") + "/ns/tool@sha256:" + strings.Repeat("a", 64)
			_, err := stageOCI(t, &Fetcher{Cache: Cache{Dir: t.TempDir()}, Backoff: 1}, ociBuild(ref, "amd64"))
			if !errors.Is(err, httpbound.ErrHostile) {
				t.Errorf("err = %v, want %v", err, httpbound.ErrHostile)
			}
			if n := requests.Load(); n > 100 {
				t.Errorf("%d requests", n)
			}
		})
	}
}
