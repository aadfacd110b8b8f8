package bakery

import (
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/sysext-bakery/bakery/internal/fixture"
	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/inspect"
	"github.com/sysext-bakery/bakery/sysext/squashfs"
)

// elfFor is a minimal executable for arch, x86-64 or arm64.
func elfFor(t *testing.T, arch string) []byte {
	t.Helper()
	a, err := sysext.ArchByName(arch)
	if err != nil {
		t.Fatal(err)
	}
	return fixture.ELF(a.Class, elf.ELFDATA2LSB, elf.ET_EXEC, a.Machine)
}

// TestBakeFromOCIImage bakes a recipe whose source is a two-layer
// multi-arch image for both arches: each image holds its arch's binary
// (the ELF check would refuse the other's) and the tree the upper layer's
// whiteouts leave; a second bake makes no registry request; a layer
// changed in the registry fails the bake at the recipe's oci line.
func TestBakeFromOCIImage(t *testing.T) {
	reg := fixture.ServeRegistry(t)
	images := map[string]v1.Image{}
	for _, arch := range []string{"x86-64", "arm64"} {
		a, _ := sysext.ArchByName(arch)
		lower := fixture.Layer(t, false, []fixture.LayerEntry{
			{Name: "usr/bin/tool", Mode: 0o755, Body: elfFor(t, arch)},
			{Name: "usr/share/tool/stale.conf", Mode: 0o644, Body: []byte("stale")},
			{Name: "usr/share/tool/modules/old", Mode: 0o644, Body: []byte("old")},
		})
		upper := fixture.Layer(t, true, []fixture.LayerEntry{
			{Name: "usr/share/tool/.wh.stale.conf"},
			{Name: "usr/share/tool/modules/.wh..wh..opq"},
			{Name: "usr/share/tool/modules/new", Mode: 0o644, Body: []byte("new " + arch)},
		})
		images[a.GoArch] = fixture.Image(t, a.GoArch, lower, upper)
	}
	ref := reg.PushIndex(t, "ns/tool", images)
	r := writeRecipe(t, fmt.Sprintf(`name: tool
version: "1.0"
sources:
  - oci: %s
    extract: {include: [usr/bin/tool, usr/share/tool], to: /}
`, ref), nil)
	opts := bakeOptions(t, t.TempDir(), squashfs.Builder{}, squashfsFormat)
	res, err := Bake(bakeCtx, r, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range res.Images {
		fsys := openImage(t, img.Path)
		var files []string
		fs.WalkDir(fsys, "usr/share/tool", func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				files = append(files, p)
			}
			return err
		})
		if want := []string{"usr/share/tool/modules/new"}; !slices.Equal(files, want) {
			t.Errorf("%s: usr/share/tool holds %q, want %q", img.Architecture, files, want)
		}
		if b, _ := fs.ReadFile(fsys, "usr/share/tool/modules/new"); string(b) != "new "+img.Architecture {
			t.Errorf("%s: modules/new is %q, the upper layer of another arch's image", img.Architecture, b)
		}
		if b, _ := fs.ReadFile(fsys, "usr/bin/tool"); string(b) != string(elfFor(t, img.Architecture)) {
			t.Errorf("%s: usr/bin/tool is not the arch's binary", img.Architecture)
		}
	}
	before := reg.BlobGets.Load() + reg.ManifestGets.Load()
	opts.OutDir = t.TempDir()
	again, err := Bake(bakeCtx, r, opts)
	if err != nil {
		t.Fatal(err)
	}
	if n := reg.BlobGets.Load() + reg.ManifestGets.Load() - before; n != 0 {
		t.Errorf("the second bake made %d registry requests, want none", n)
	}
	for i := range again.Images {
		if again.Images[i].SHA256 != res.Images[i].SHA256 {
			t.Errorf("%s: the second bake gave other bytes", again.Images[i].Architecture)
		}
	}

	layers, _ := images["arm64"].Layers()
	d, _ := layers[0].Digest()
	data, _ := os.ReadFile(reg.BlobPath(d))
	data[len(data)/2] ^= 1
	os.WriteFile(reg.BlobPath(d), data, 0o644)
	opts = bakeOptions(t, t.TempDir(), squashfs.Builder{}, squashfsFormat)
	_, err = Bake(bakeCtx, r, opts)
	if err == nil || !strings.Contains(err.Error(), r.Path+":4: source 1 oci:") || !strings.Contains(err.Error(), "sha256 mismatch") {
		t.Errorf("bake from a tampered layer: %v, want a sha256 mismatch at %s:4", err, r.Path)
	}
}

// openImage opens a baked image's file system.
func openImage(t *testing.T, p string) fs.FS {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fsys, _, err := inspect.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	return fsys
}

// TestStreamedBakeOfLayers bakes images whose upper layer whites out a
// file of the lower one: the file held back when the layer ends (the
// image is still written as the layers are staged) or one already in the
// image being written (written again from the staged tree). Both equal
// what image create writes of the staged tree.
func TestStreamedBakeOfLayers(t *testing.T) {
	reg := fixture.ServeRegistry(t)
	lower := fixture.Layer(t, false, []fixture.LayerEntry{
		{Name: "usr/share/tool/a", Mode: 0o644, Body: []byte("a")},
		{Name: "usr/share/tool/b", Mode: 0o644, Body: []byte("b")},
		{Name: "usr/share/tool/c", Mode: 0o644, Body: []byte("c")},
	})
	for _, tt := range []struct {
		name, whiteout string
		again          bool
	}{
		{"held", "usr/share/tool/.wh.c", false},
		{"handed out", "usr/share/tool/.wh.a", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			upper := fixture.Layer(t, true, []fixture.LayerEntry{{Name: tt.whiteout}, {Name: "usr/share/tool/d", Mode: 0o644, Body: []byte("d")}})
			ref := reg.PushImage(t, "ns/"+strings.ReplaceAll(tt.name, " ", "-"), fixture.Image(t, "amd64", lower, upper))
			r := writeRecipe(t, fmt.Sprintf(`name: layers
version: "1"
arches: [x86-64]
sources:
  - oci: %s
    extract: {to: /}
`, ref), nil)
			var steps stepRecorder
			opts := bakeOptions(t, t.TempDir(), squashfs.Builder{}, squashfsFormat)
			opts.Progress = &steps
			res, err := Bake(bakeCtx, r, opts)
			if err != nil {
				t.Fatal(err)
			}
			again := slices.ContainsFunc(steps, func(s string) bool { return strings.Contains(s, "not in walk order") })
			if again != tt.again {
				t.Errorf("built again: %v, want %v:\n%s", again, tt.again, strings.Join(steps, "\n"))
			}
			staged := stageLikeBake(t, r, "x86-64", opts)
			out, err := WriteImage(bakeCtx, squashfs.Builder{}, staged, filepath.Join(t.TempDir(), "img.raw"), opts.Build)
			if err != nil {
				t.Fatal(err)
			}
			if err := out.Digest(); err != nil {
				t.Fatal(err)
			}
			defer out.Abort()
			if out.SHA256 != res.Images[0].SHA256 {
				t.Errorf("baked %s, image create of the staged tree %s", res.Images[0].SHA256, out.SHA256)
			}
		})
	}
}
