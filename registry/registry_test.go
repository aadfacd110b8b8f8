package registry

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/sysext-bakery/bakery/internal/fixture"
	"github.com/sysext-bakery/bakery/sign"
)

// fastRetry keeps failing tests short.
var fastRetry = WithRetryBackoff(remote.Backoff{Duration: 10 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 4})

// makeImage builds NAME-VERSION-ARCH.raw in dir with mksquashfs: a tree
// holding its extension-release and a payload file of payloadSize bytes.
func makeImage(t testing.TB, dir, name, version, arch string, payloadSize int) string {
	t.Helper()
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		t.Skip("mksquashfs not installed (apt-get install squashfs-tools)")
	}
	tree := filepath.Join(t.TempDir(), "tree")
	rel := filepath.Join(tree, "usr/lib/extension-release.d")
	if err := os.MkdirAll(rel, 0o755); err != nil {
		t.Fatal(err)
	}
	content := fmt.Sprintf("ID=_any\nARCHITECTURE=%s\nSYSEXT_ID=%s\nSYSEXT_VERSION_ID=%s\n", arch, name, version)
	if err := os.WriteFile(filepath.Join(rel, "extension-release."+name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, payloadSize)
	for i := range payload { // incompressible enough that the image is about payloadSize
		payload[i] = byte(i*7919 + i>>8*31 + i>>16)
	}
	sum := sha256.Sum256([]byte(arch + version))
	copy(payload, sum[:])
	if err := os.MkdirAll(filepath.Join(tree, "usr/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "usr/bin", name), payload, 0o755); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, fmt.Sprintf("%s-%s-%s.raw", name, version, arch))
	out, err := exec.Command("mksquashfs", tree, img, "-all-root", "-noappend", "-no-progress", "-noI", "-noD", "-noF", "-noX").CombinedOutput()
	if err != nil {
		t.Fatalf("mksquashfs: %v\n%s", err, out)
	}
	return img
}

// bakeDir makes a bake output dir with images for arches and SHA256SUMS.
func bakeDir(t testing.TB, name, version string, payload int, arches ...string) string {
	t.Helper()
	dir := t.TempDir()
	var sums bytes.Buffer
	for _, a := range arches {
		p := makeImage(t, dir, name, version, a, payload)
		fmt.Fprintf(&sums, "%s  %s\n", fileSHA(t, p), filepath.Base(p))
	}
	if err := os.WriteFile(filepath.Join(dir, "SHA256SUMS"), sums.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func fileSHA(t testing.TB, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

func newKey(t testing.TB, alg sign.Algorithm) crypto.Signer {
	t.Helper()
	k, err := sign.GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// listDir names the entries of dir (to check nothing partial was left).
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// TestRoundTrip pushes a signed two-arch version to each registry kind,
// then verifies it, pulls each arch and checks the bytes and the catalog.
func TestRoundTrip(t *testing.T) {
	dir := bakeDir(t, "hello", "1.0+git", 64<<10, "x86-64", "arm64")
	for _, kind := range registryKinds {
		t.Run(kind, func(t *testing.T) {
			reg := startRegistry(t, kind)
			ctx := context.Background()
			key := newKey(t, sign.ECDSAP256)
			ref := reg.host + "/ns/hello"
			res, err := Push(ctx, ref, []string{dir}, WithSigner(key), WithAnnotations(map[string]string{AnnotationDescription: "says hello",
				AnnotationLicenses: "MIT", AnnotationSources: "https://example.org/hello.tar.gz https://example.org/SHA256SUMS"}))
			if err != nil {
				t.Fatalf("Push: %v", err)
			}
			if got, want := strings.Join(res.Tags, ","), "1.0_git,latest"; got != want {
				t.Errorf("tags %s, want %s", got, want)
			}
			if len(res.Images) != 2 || res.Signature == "" || res.Catalog == "" {
				t.Fatalf("push result %+v", res)
			}
			checkIndex(t, ref+":1.0_git", res)

			trusted := WithKeys(key.Public())
			vr, err := Verify(ctx, ref+":latest", trusted)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if vr.Digest != res.IndexDigest || len(vr.Manifests) != 2 {
				t.Errorf("Verify result %+v, want index %s with 2 manifests", vr, res.IndexDigest)
			}
			out := t.TempDir()
			for _, arch := range []string{"x86-64", "arm64"} {
				pr, err := Pull(ctx, ref+":1.0_git", WithArch(arch), WithOutDir(out), trusted)
				if err != nil {
					t.Fatalf("Pull %s: %v", arch, err)
				}
				src := filepath.Join(dir, "hello-1.0+git-"+arch+".raw")
				if pr.Path != filepath.Join(out, filepath.Base(src)) || !pr.Verified || pr.IndexDigest != res.IndexDigest {
					t.Errorf("Pull result %+v", pr)
				}
				if got, want := fileSHA(t, pr.Path), fileSHA(t, src); got != want || "sha256:"+got != pr.Digest {
					t.Errorf("pulled %s has sha256 %s, pushed %s (result says %s)", arch, got, want, pr.Digest)
				}
			}
			// By digest, to an exact destination.
			dest := filepath.Join(out, "hello.raw")
			if _, err := Pull(ctx, ref+"@"+res.IndexDigest, WithArch("arm64"), WithDest(dest), trusted); err != nil {
				t.Fatalf("Pull by digest: %v", err)
			}
			if fileSHA(t, dest) != fileSHA(t, filepath.Join(dir, "hello-1.0+git-arm64.raw")) {
				t.Error("pull by digest gave other bytes")
			}
			if _, err := Pull(ctx, ref+":latest", WithArch("riscv64"), WithOutDir(out)); err == nil || !strings.Contains(err.Error(), "no image for riscv64") {
				t.Errorf("pull of a missing arch: %v", err)
			}

			cat, err := Catalog(ctx, reg.host+"/ns", trusted)
			if err != nil {
				t.Fatalf("Catalog: %v", err)
			}
			if cat.Source != "artifact" || !cat.Verified || len(cat.Catalog.Extensions) != 1 {
				t.Fatalf("catalog %+v", cat)
			}
			e := cat.Catalog.Extensions[0]
			if e.Name != "hello" || e.Description != "says hello" || e.License != "MIT" || len(e.Versions) != 1 || !e.Versions[0].Signed ||
				e.Versions[0].Digest != res.IndexDigest || len(e.Versions[0].Arches) != 2 {
				t.Errorf("catalog entry %+v", e)
			}
			if v := e.Versions[0]; v.Release["ID"] != "_any" || len(v.Sources) != 2 || v.Created == "" {
				t.Errorf("catalog version's release %v, sources %v, created %q", v.Release, v.Sources, v.Created)
			}
		})
	}
}

// checkIndex reads the pushed index raw and checks the OCI layout of the
// design: artifactType, platforms, annotations, one uncompressed layer.
func checkIndex(t *testing.T, ref string, res PushResult) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(r)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if im.ArtifactType != "application/vnd.bakery.sysext.v1" || im.Annotations[AnnotationName] != "hello" || im.Annotations[AnnotationVersion] != "1.0+git" {
		t.Errorf("index artifactType %q annotations %v", im.ArtifactType, im.Annotations)
	}
	for i, d := range im.Manifests {
		if d.Platform == nil || d.Platform.OS != "linux" || d.Annotations[AnnotationArchitecture] == "" || d.Annotations[AnnotationFSType] != "squashfs" {
			t.Errorf("entry %d: platform %v annotations %v", i, d.Platform, d.Annotations)
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if m.Config.MediaType != "application/vnd.bakery.sysext.config.v1+json" || len(m.Layers) != 1 || m.Layers[0].MediaType != "application/vnd.bakery.sysext.layer.v1.squashfs" {
			t.Errorf("manifest %d: config %s layers %v", i, m.Config.MediaType, m.Layers)
		}
		found := false
		for _, pi := range res.Images {
			found = found || (pi.LayerDigest == m.Layers[0].Digest.String() && pi.File == m.Layers[0].Annotations[AnnotationTitle])
		}
		if !found {
			t.Errorf("manifest %d layer %v is none of the pushed files", i, m.Layers[0])
		}
	}
}

// TestSignatureAttacks checks that pull and verify refuse what is not
// signed by a trusted key for exactly this index, and write nothing.
func TestSignatureAttacks(t *testing.T) {
	reg := startRegistry(t, "ggcr")
	ctx := context.Background()
	key, wrong := newKey(t, sign.ECDSAP256), newKey(t, sign.Ed25519)
	signed, err := Push(ctx, reg.host+"/ns/hello", []string{bakeDir(t, "hello", "1.0", 4096, "x86-64")}, WithSigner(key))
	if err != nil {
		t.Fatal(err)
	}
	if _, err = Push(ctx, reg.host+"/ns/unsigned", []string{bakeDir(t, "unsigned", "2.0", 4096, "x86-64")}); err != nil {
		t.Fatal(err)
	}
	// A signature made for hello's index, attached to another index.
	other, err := Push(ctx, reg.host+"/ns/replay", []string{bakeDir(t, "replay", "2.0", 4096, "x86-64")})
	if err != nil {
		t.Fatal(err)
	}
	o := makeOptions(nil)
	replayRepo, _ := name.NewRepository(reg.host + "/ns/replay")
	attachSignature(t, replayRepo, other.IndexDigest, signed.IndexDigest, sign.Claims{Kind: "sysext", Name: "replay", Version: "2.0"}, key, o)

	// Another index under the old tag, signed by an untrusted key: what
	// an attacker who can write tags but not sign makes.
	swapped, err := Push(ctx, reg.host+"/ns/hello:2.0", []string{bakeDir(t, "hello", "2.0", 4096, "x86-64")}, WithSigner(wrong), WithoutCatalog())
	if err != nil {
		t.Fatal(err)
	}
	fixture.Copy(t, reg.host+"/ns/hello@"+swapped.IndexDigest, reg.host+"/ns/hello:swapped") // crane tag

	tests := []struct {
		name string
		ref  string
		keys []crypto.PublicKey
	}{
		{"wrong key", reg.host + "/ns/hello@" + signed.IndexDigest, []crypto.PublicKey{wrong.Public()}},
		{"stripped signature", reg.host + "/ns/unsigned:latest", []crypto.PublicKey{key.Public()}},
		{"signature for another digest", reg.host + "/ns/replay:latest", []crypto.PublicKey{key.Public()}},
		{"index swapped under a tag", reg.host + "/ns/hello:swapped", []crypto.PublicKey{key.Public()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := t.TempDir()
			_, err := Pull(ctx, tt.ref, WithArch("x86-64"), WithOutDir(out), WithKeys(tt.keys...))
			if !errors.Is(err, ErrNoSignature) {
				t.Errorf("Pull: %v, want ErrNoSignature", err)
			}
			if n := listDir(t, out); len(n) != 0 {
				t.Errorf("refused pull left files %v", n)
			}
			if _, err := Verify(ctx, tt.ref, WithKeys(tt.keys...)); !errors.Is(err, ErrNoSignature) {
				t.Errorf("Verify: %v, want ErrNoSignature", err)
			}
		})
	}
	// The genuine signature still verifies by digest.
	if _, err := Verify(ctx, reg.host+"/ns/hello@"+signed.IndexDigest, WithKeys(key.Public())); err != nil {
		t.Errorf("genuine signature: %v", err)
	}
}

// attachSignature pushes, as a referrer of subject, a bundle by key that
// signs signedDigest with claims.
func attachSignature(t *testing.T, repo name.Repository, subject, signedDigest string, claims sign.Claims, key crypto.Signer, o *options) {
	t.Helper()
	desc, err := remote.Head(repo.Digest(subject))
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := sign.Sign(key, repo.Name(), signedDigest, claims)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pushBundle(context.Background(), repo, *desc, bundle, o); err != nil {
		t.Fatal(err)
	}
}
