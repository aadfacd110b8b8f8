package formats

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sysext-bakery/bakery/sysext"
)

// release is the file every test image holds.
const (
	releasePath = "usr/lib/extension-release.d/extension-release.x"
	release     = "ID=_any\nARCHITECTURE=x86-64\n"
)

// stage writes a small staged tree and returns its root.
func stage(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	for name, content := range map[string]string{releasePath: release, "usr/bin/tool": strings.Repeat("tool\n", 10000)} {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return src
}

// build writes the image of src with b, skipping when b's tool is not
// installed.
func build(t *testing.T, b sysext.Builder, src string, opts sysext.BuildOptions) []byte {
	t.Helper()
	if b.Name() != "native" {
		if _, err := exec.LookPath(b.Name()); err != nil {
			t.Skipf("%s is not installed", b.Name())
		}
	}
	img := filepath.Join(t.TempDir(), "img.raw")
	if err := os.WriteFile(img, nil, 0o644); err != nil { // mkfs.erofs 1.5 does not create it
		t.Fatal(err)
	}
	if err := b.Build(context.Background(), src, img, opts); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestFormats builds an image with every builder of every format in every
// compression the builder lists, and checks the table against it: the
// builder's Check accepts the compression, its format and no other
// detects the image, Detect names the format, and the format's Open reads
// the image exactly when Reads says it does.
func TestFormats(t *testing.T) {
	src := stage(t)
	for _, f := range All() {
		for _, b := range f.Builders() {
			for _, c := range b.Compressions() {
				t.Run(f.Name()+"/"+b.Name()+"/"+string(c), func(t *testing.T) {
					opts := sysext.BuildOptions{Compression: c, Epoch: 1700000000, AllRoot: true}
					if err := b.Check(opts); err != nil {
						t.Fatalf("Check refuses a compression the builder lists: %v", err)
					}
					img := bytes.NewReader(build(t, b, src, opts))
					for _, g := range All() {
						if got := g.Detect(img); got != (g == f) {
							t.Errorf("%s.Detect = %v", g.Name(), got)
						}
					}
					if got, err := Detect(img); err != nil || got != f {
						t.Errorf("Detect = %v, %v; want %s", got, err, f.Name())
					}
					fsys, err := f.Open(img)
					if !f.Reads(c) {
						if err == nil {
							t.Errorf("Open read an image that Reads(%q) says it cannot", c)
						}
						return
					}
					if err != nil {
						t.Fatalf("Open: %v", err)
					}
					if got, err := fs.ReadFile(fsys, releasePath); err != nil || string(got) != release {
						t.Errorf("read %s = %q, %v", releasePath, got, err)
					}
				})
			}
		}
	}
}

// TestDefaultCompression checks that a builder given no compression writes
// the first one it lists, byte for byte.
func TestDefaultCompression(t *testing.T) {
	src := stage(t)
	for _, f := range All() {
		for _, b := range f.Builders() {
			t.Run(f.Name()+"/"+b.Name(), func(t *testing.T) {
				opts := sysext.BuildOptions{Epoch: 1700000000, AllRoot: true}
				implicit := build(t, b, src, opts)
				opts.Compression = b.Compressions()[0]
				if !bytes.Equal(implicit, build(t, b, src, opts)) {
					t.Errorf("no compression differs from %s, the first listed", opts.Compression)
				}
			})
		}
	}
}

// TestBuilders checks what the table says of each format's builders.
func TestBuilders(t *testing.T) {
	for _, f := range All() {
		t.Run(f.Name(), func(t *testing.T) {
			seen := map[string]bool{}
			for _, b := range f.Builders() {
				if seen[b.Name()] {
					t.Errorf("two builders are called %s", b.Name())
				}
				seen[b.Name()] = true
				if len(b.Compressions()) == 0 {
					t.Errorf("%s lists no compression", b.Name())
				}
				if err := b.Check(sysext.BuildOptions{Compression: "brotli"}); err == nil {
					t.Errorf("%s accepts the compression brotli", b.Name())
				}
			}
			if len(seen) == 0 {
				t.Error("no builder")
			}
			if f.KernelType() == "" {
				t.Error("no kernel file-system type")
			}
		})
	}
}

// TestByName finds every format by its name and the default by none, and
// refuses other names listing the known ones.
func TestByName(t *testing.T) {
	names := Names()
	if len(names) != len(All()) || names[0] != Default().Name() {
		t.Fatalf("Names = %v, All = %v, Default = %s", names, All(), Default().Name())
	}
	for i, f := range All() {
		if names[i] != f.Name() {
			t.Errorf("Names[%d] = %s, want %s", i, names[i], f.Name())
		}
		if got, err := ByName(f.Name()); err != nil || got != f {
			t.Errorf("ByName(%q) = %v, %v", f.Name(), got, err)
		}
	}
	if got, err := ByName(""); err != nil || got != Default() {
		t.Errorf(`ByName("") = %v, %v; want the default`, got, err)
	}
	for _, name := range []string{"zip", "SQUASHFS", "DDI"} {
		_, err := ByName(name)
		if err == nil || !strings.Contains(err.Error(), `format "`+name+`" is not supported (use squashfs, erofs or ddi)`) {
			t.Errorf("ByName(%q) = %v, want an error listing the formats", name, err)
		}
	}
}

// failingReader fails every read.
type failingReader struct{}

func (failingReader) ReadAt([]byte, int64) (int, error) { return 0, errors.New("disk on fire") }

// TestDetectUnknown refuses what no format recognises, naming them all,
// and reports an image that cannot be read as such.
func TestDetectUnknown(t *testing.T) {
	at := func(off int, magic string) []byte {
		b := make([]byte, 4096)
		copy(b[off:], magic)
		return b
	}
	for _, tt := range []struct {
		name string
		r    io.ReaderAt
		want string
	}{
		{"empty", bytes.NewReader(nil), "not a squashfs, erofs or ddi image (no known superblock magic)"},
		{"garbage", strings.NewReader(strings.Repeat("x", 5000)), "no known superblock magic"},
		{"GPT header without protective MBR", bytes.NewReader(at(512, "EFI PART")), "no known superblock magic"},
		{"squashfs magic off its place", bytes.NewReader(at(1024, "hsqs")), "no known superblock magic"},
		{"erofs magic cut short", bytes.NewReader(at(1024, "\xe2\xe1\xf5\xe0")[:1026]), "no known superblock magic"},
		{"unreadable", failingReader{}, "read image: disk on fire"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if f, err := Detect(tt.r); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Detect = %v, %v; want an error containing %q", f, err, tt.want)
			}
		})
	}
}
