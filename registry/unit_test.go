package registry

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/sysext-bakery/bakery/sysext"
)

func TestTagSafe(t *testing.T) {
	tests := []struct{ in, want string }{
		{"1.0.0", "1.0.0"},
		{"v1.32.2+flatcar", "v1.32.2_flatcar"},
		{"1.0~rc1", "1.0_rc1"},
		{".hidden", "_.hidden"},
		{"-x", "_-x"},
		{strings.Repeat("a", 200), strings.Repeat("a", 128)},
	}
	for _, tt := range tests {
		if got := tagSafe(tt.in); got != tt.want {
			t.Errorf("tagSafe(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestVersionFromTitle(t *testing.T) {
	tests := []struct{ title, name, arch, want string }{
		{"kubernetes-v1.32.2-x86-64.raw", "kubernetes", "x86-64", "v1.32.2"},
		{"cni-plugins-1.0-1-arm64.raw", "cni-plugins", "arm64", "1.0-1"},
		{"other-1.0-arm64.raw", "kubernetes", "arm64", ""},
		{"kubernetes-1.0-arm64.img", "kubernetes", "arm64", ""},
	}
	for _, tt := range tests {
		if got := versionFromTitle(tt.title, tt.name, tt.arch); got != tt.want {
			t.Errorf("versionFromTitle(%q) = %q, want %q", tt.title, got, tt.want)
		}
	}
}

func TestParseTarget(t *testing.T) {
	tests := []struct{ ref, repo, tag, wantErr string }{
		{"127.0.0.1:5000/ns/hello", "127.0.0.1:5000/ns/hello", "", ""},
		{"127.0.0.1:5000/ns/hello:stable", "127.0.0.1:5000/ns/hello", "stable", ""},
		{"ghcr.io/me/sysext/k8s:v1", "ghcr.io/me/sysext/k8s", "v1", ""},
		{"host/ns/hello@sha256:" + strings.Repeat("a", 64), "", "", "not a digest"},
		{"host/ns/Hello", "", "", "want host"},
		{"host/ns/hello:bad+tag", "", "", "reference"},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			repo, tag, err := parseTarget(tt.ref, makeOptions(nil))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if repo.Name() != tt.repo || tag != tt.tag {
				t.Errorf("got %s %q, want %s %q", repo.Name(), tag, tt.repo, tt.tag)
			}
		})
	}
}

func TestSelectArch(t *testing.T) {
	idx := &v1.IndexManifest{Manifests: []v1.Descriptor{
		{Digest: v1.Hash{Algorithm: "sha256", Hex: "a"}, Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}},
		{Digest: v1.Hash{Algorithm: "sha256", Hex: "b"}, Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}},
		{Digest: v1.Hash{Algorithm: "sha256", Hex: "c"}},
	}}
	for _, tt := range []struct{ arch, want string }{{"x86-64", "a"}, {"arm64", "b"}, {"s390x", ""}} {
		a, err := sysext.ArchByName(tt.arch)
		if err != nil {
			t.Fatal(err)
		}
		d, err := selectArch(idx, a)
		if tt.want == "" {
			if err == nil || !strings.Contains(err.Error(), "no image for s390x") {
				t.Errorf("%s: %v", tt.arch, err)
			}
			continue
		}
		if err != nil || d.Digest.Hex != tt.want {
			t.Errorf("%s: got %v, %v", tt.arch, d.Digest, err)
		}
	}
}

// TestParseImageManifest refuses manifests that are not one sysext layer,
// and layer titles that would write outside the output directory.
func TestParseImageManifest(t *testing.T) {
	layer := func(mt, title string) string {
		return `{"mediaType":"` + mt + `","digest":"sha256:` + strings.Repeat("a", 64) + `","size":1,"annotations":{"org.opencontainers.image.title":"` + title + `"}}`
	}
	manifest := func(layers ...string) []byte {
		return []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"x","digest":"sha256:` +
			strings.Repeat("b", 64) + `","size":2},"layers":[` + strings.Join(layers, ",") + `]}`)
	}
	sq := "application/vnd.bakery.sysext.layer.v1.squashfs"
	tests := []struct {
		name    string
		raw     []byte
		mt      types.MediaType
		wantErr string
	}{
		{"ok", manifest(layer(sq, "a-1-x86-64.raw")), types.OCIManifestSchema1, ""},
		{"ddi", manifest(layer(string(LayerMediaTypeDDI), "a.raw")), types.OCIManifestSchema1, ""},
		{"container image", manifest(layer("application/vnd.oci.image.layer.v1.tar+gzip", "x")), types.OCIManifestSchema1, "not a bakery extension"},
		{"two layers", manifest(layer(sq, "a"), layer(sq, "b")), types.OCIManifestSchema1, "exactly one"},
		{"path traversal", manifest(layer(sq, "../../etc/passwd")), types.OCIManifestSchema1, "not a plain file name"},
		{"dot dot", manifest(layer(sq, "..")), types.OCIManifestSchema1, "not a plain file name"},
		{"absolute", manifest(layer(sq, "/etc/x")), types.OCIManifestSchema1, "not a plain file name"},
		{"index media type", manifest(layer(sq, "a")), types.OCIImageIndex, "not an OCI image manifest"},
		{"a terabyte image", manifest(strings.Replace(layer(sq, "a"), `"size":1`, `"size":1099511627776`, 1)), types.OCIManifestSchema1, "1 byte to 64 GiB"},
		{"empty image", manifest(strings.Replace(layer(sq, "a"), `"size":1`, `"size":0`, 1)), types.OCIManifestSchema1, "1 byte to 64 GiB"},
		{"garbage", []byte("{"), types.OCIManifestSchema1, "parse manifest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseImageManifest(&manifestBlob{raw: tt.raw, mt: tt.mt})
			if tt.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("error %v, want one with %q", err, tt.wantErr)
			}
		})
	}
}

func FuzzParseImageManifest(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"layers":[{"mediaType":"application/vnd.bakery.sysext.layer.v1.squashfs","annotations":{"org.opencontainers.image.title":"a.raw"}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseImageManifest(&manifestBlob{raw: data, mt: types.OCIManifestSchema1})
		if err != nil {
			return
		}
		title := m.Layers[0].Annotations[AnnotationTitle]
		if strings.ContainsAny(title, "/\x00") || title == ".." || title == "." {
			t.Fatalf("accepted title %q", title)
		}
	})
}

// TestPushChangedAfterBaking pushes an image whose bytes no longer match
// SHA256SUMS: the push fails naming the file, and no tag appears.
func TestPushChangedAfterBaking(t *testing.T) {
	reg := startRegistry(t, "ggcr")
	dir := bakeDir(t, "hello", "1.0", 1024, "x86-64")
	img := filepath.Join(dir, "hello-1.0-x86-64.raw")
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] ^= 1 // same size, other content
	if err := os.WriteFile(img, data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Push(context.Background(), reg.host+"/ns/hello", []string{dir}, fastRetry)
	if err == nil || !strings.Contains(err.Error(), "SHA256SUMS says") {
		t.Fatalf("error %v, want one saying the file changed after baking", err)
	}
	if _, err := Pull(context.Background(), reg.host+"/ns/hello:latest", WithArch("x86-64"), WithOutDir(t.TempDir())); err == nil {
		t.Error("a tag was pushed for the failed push")
	}
}

// TestPushRefuses checks push's input validation, before any network use.
func TestPushRefuses(t *testing.T) {
	a := bakeDir(t, "hello", "1.0", 1024, "x86-64")
	b := bakeDir(t, "hello", "2.0", 1024, "arm64")
	c := bakeDir(t, "hello", "1.0", 1024, "x86-64")
	notImage := filepath.Join(t.TempDir(), "x.raw")
	os.WriteFile(notImage, bytes.Repeat([]byte{1}, 4096), 0o644)
	tests := []struct {
		name    string
		images  []string
		wantErr string
	}{
		{"nothing", nil, "no images"},
		{"two versions", []string{a, b}, "one version of one extension"},
		{"same arch twice", []string{a, c}, "both for x86-64"},
		{"not an image", []string{notImage}, "not an extension image"},
		{"empty dir", []string{t.TempDir()}, "holds no *.raw"},
		{"missing", []string{"/nonexistent/x.raw"}, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Port 9 (discard) on loopback: nothing may be sent anyway.
			_, err := Push(context.Background(), "127.0.0.1:9/ns/hello", tt.images, fastRetry)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one with %q", err, tt.wantErr)
			}
		})
	}
}
