package registry

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/sysext-bakery/bakery/sign"
	"github.com/sysext-bakery/bakery/sysext/ddi"
)

// TestDDILayer pushes a DDI (here with squashfs inside) and pulls it back:
// its layer is application/vnd.efi.img with fstype ddi, its
// extension-release is read from the root partition on push and checked
// on pull, and the pulled file is the pushed one.
func TestDDILayer(t *testing.T) {
	dir := t.TempDir()
	img := makeImage(t, dir, "hello", "1.0", "x86-64", 16<<10)
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := ddi.Assemble(context.Background(), f, "x86-64", nil); err != nil {
		t.Fatal(err)
	}
	f.Close()
	reg := startRegistry(t, "embedded")
	key := newKey(t, sign.ECDSAP256)
	ref := reg.host + "/ns/hello"
	res, err := Push(context.Background(), ref, []string{img}, WithSigner(key))
	if err != nil {
		t.Fatalf("Push: %v", err)
	}
	r, err := name.ParseReference(ref + ":1.0")
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
	if len(im.Manifests) != 1 || im.Manifests[0].Annotations[AnnotationFSType] != "ddi" {
		t.Fatalf("index entries %+v, want one with fstype ddi", im.Manifests)
	}
	m, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	mf, err := m.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(mf.Layers) != 1 || mf.Layers[0].MediaType != LayerMediaTypeDDI || mf.Layers[0].Digest.String() != res.Images[0].LayerDigest {
		t.Errorf("layers %+v, want one %s", mf.Layers, LayerMediaTypeDDI)
	}
	out := t.TempDir()
	pr, err := Pull(context.Background(), ref+":1.0", WithArch("x86-64"), WithOutDir(out), WithKeys(key.Public()))
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	if fileSHA(t, pr.Path) != fileSHA(t, img) || filepath.Base(pr.Path) != filepath.Base(img) {
		t.Errorf("pulled %s differs from the pushed %s", pr.Path, img)
	}
}
