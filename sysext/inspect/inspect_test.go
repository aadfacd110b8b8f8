package inspect

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sysext-bakery/bakery/internal/bounded"
	"github.com/sysext-bakery/bakery/internal/hostile"
	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/ddi"
	"github.com/sysext-bakery/bakery/sysext/erofs"
	"github.com/sysext-bakery/bakery/sysext/squashfs"
	"golang.org/x/sys/unix"
)

func TestImage(t *testing.T) {
	const rel = "usr/lib/extension-release.d/"
	cases := []struct {
		name     string
		files    map[string]string
		wantName string
		entries  int
		err      string
	}{
		{"one release", map[string]string{rel + "extension-release.kube": "ID=_any\nARCHITECTURE=arm64\n", "usr/bin/kubelet": "x"}, "kube", 6, ""},
		{"no release dir", map[string]string{"usr/bin/x": "x"}, "", 0, "not an extension image"},
		{"two releases", map[string]string{rel + "extension-release.a": "ID=_any\n", rel + "extension-release.b": "ID=_any\n"}, "", 0, "found 2"},
		{"garbage release", map[string]string{rel + "extension-release.a": "ID=\"unterminated\n"}, "", 0, "extension-release.a"},
	}
	builders := []struct {
		b      sysext.Builder
		format string
	}{{squashfs.Builder{}, "squashfs"}, {erofs.Builder{}, "erofs"}, {ddi.Builder{Inner: erofs.Builder{}}, "ddi"}}
	for _, tb := range builders {
		for _, c := range cases {
			t.Run(tb.format+"/"+c.name, func(t *testing.T) {
				src := t.TempDir()
				for name, content := range c.files {
					p := filepath.Join(src, name)
					os.MkdirAll(filepath.Dir(p), 0o755)
					os.WriteFile(p, []byte(content), 0o644)
				}
				img := filepath.Join(t.TempDir(), "x.raw")
				opts := sysext.BuildOptions{Compression: sysext.None, AllRoot: true}
				if err := tb.b.Build(context.Background(), src, img, opts); err != nil {
					t.Fatal(err)
				}
				info, err := Image(img)
				if c.err != "" {
					if err == nil || !strings.Contains(err.Error(), c.err) {
						t.Fatalf("err = %v, want %q", err, c.err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if info.Format != tb.format || info.Name != c.wantName || info.Entries != c.entries ||
					info.Release["ARCHITECTURE"] != "arm64" || len(info.SHA256) != 64 || info.Size%4096 != 0 {
					t.Errorf("Image = %+v", info)
				}
				if d := info.DDI; (d != nil) != (tb.format == "ddi") || d != nil && (d.Architecture != "arm64" || d.FSType != "erofs" || d.Verity != "verity" || len(d.RootHash) != 64 || d.Signed) {
					t.Errorf("Image's DDI = %+v", d)
				}
			})
		}
	}
}

func TestImageRefusesNonImages(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.raw")
	for _, data := range []string{"", "hsqs" + strings.Repeat("\xff", 200), strings.Repeat("x", 5000)} {
		os.WriteFile(p, []byte(data), 0o644)
		if _, err := Image(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("Image(%q…) = %v, want an error naming the file", data[:min(len(data), 8)], err)
		}
	}
}

// TestImageHostile inspects images whose directories loop or share
// entries, or whose extension-release is a 3 GiB hole or a FIFO: Image
// must refuse each, quickly and in bounded memory, saying why.
func TestImageHostile(t *testing.T) {
	want := map[string]string{
		"loop-self":      "directory loop",
		"loop-root":      "directory loop",
		"shared-listing": "directory loop",
		"lookup-chain":   "directory loop",
		"sparse-release": `extension-release.x" has 3221225472 bytes, more than the 1048576 a release file may have`,
		"fifo-release":   `extension-release.x" is a fifo, not a regular file`,
	}
	wantErofs := map[string]string{"shared-listing": "more work than its"}
	for _, set := range []struct {
		format string
		images []hostile.Image
	}{{"squashfs", hostile.Squashfs}, {"erofs", hostile.Erofs}} {
		for _, h := range set.images {
			t.Run(set.format+"/"+h.Name, func(t *testing.T) {
				w, ok := want[h.Name]
				if e, ok := wantErofs[h.Name]; ok && set.format == "erofs" {
					w = e
				}
				if !ok {
					t.Fatalf("no expectation for the hostile image %s", h.Name)
				}
				b, err := h.Build()
				if err != nil {
					t.Fatal(err)
				}
				p := filepath.Join(t.TempDir(), h.Name+".raw")
				if err := os.WriteFile(p, b, 0o644); err != nil {
					t.Fatal(err)
				}
				bounded.Run(t, bounded.Test, func() { _, err = Image(p) })
				if err == nil || !strings.Contains(err.Error(), w) || !strings.Contains(err.Error(), p) {
					t.Fatalf("Image = %v, want an error naming the image and containing %q", err, w)
				}
			})
		}
	}
}

// FuzzImage inspects arbitrary images as Image does (release, then walk
// and count), which must end in an error or a result within bounded.Fuzz
// (1 s, 64 MiB) per input. The seed corpus in testdata/fuzz/FuzzImage
// holds the hostile images of package hostile (see TestFuzzSeeds).
func FuzzImage(f *testing.F) {
	src := f.TempDir()
	rel := filepath.Join(src, sysext.Sysext.ReleasePath("x"))
	if err := os.MkdirAll(filepath.Dir(rel), 0o755); err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(rel, []byte("ID=_any\n"), 0o644); err != nil {
		f.Fatal(err)
	}
	for _, b := range []sysext.Builder{squashfs.Builder{}, erofs.Builder{}, ddi.Builder{Inner: erofs.Builder{}}} {
		img := filepath.Join(f.TempDir(), "img")
		if err := b.Build(context.Background(), src, img, sysext.BuildOptions{AllRoot: true}); err != nil {
			f.Fatal(err)
		}
		data, err := os.ReadFile(img)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		bounded.Run(t, bounded.Fuzz, func() {
			fsys, _, err := Open(bytes.NewReader(data))
			if err != nil {
				return
			}
			sysext.DetectRelease(fsys)
			countEntries(fsys)
		})
	})
}

// TestFuzzSeeds checks that the seed corpus of FuzzImage holds the hostile
// images of both formats.
func TestFuzzSeeds(t *testing.T) {
	var seeds []hostile.Seed
	for _, set := range []struct {
		prefix string
		images []hostile.Image
	}{{"squashfs", hostile.Squashfs}, {"erofs", hostile.Erofs}} {
		s, err := hostile.Seeds(set.prefix, set.images)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, s...)
	}
	hostile.CheckCorpus(t, "FuzzImage", seeds)
}

// TestImageRefusesNonFiles: a FIFO or a directory given as the image is
// refused at once, not read or blocked on.
func TestImageRefusesNonFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.raw")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fifo, dir} {
		if err := bounded.Check(bounded.Test, func() {
			if _, err := Image(p); err == nil || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("Image(%s) = %v, want a refusal", p, err)
			}
		}); err != nil {
			t.Fatalf("Image(%s): %v", p, err)
		}
	}
}
