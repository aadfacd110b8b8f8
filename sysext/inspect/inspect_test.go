package inspect

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/erofs"
	"github.com/sysext-bakery/bakery/sysext/squashfs"
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
		{"no release dir", map[string]string{"usr/bin/x": "x"}, "", 0, "not a system extension image"},
		{"two releases", map[string]string{rel + "extension-release.a": "ID=_any\n", rel + "extension-release.b": "ID=_any\n"}, "", 0, "found 2"},
		{"garbage release", map[string]string{rel + "extension-release.a": "ID=\"unterminated\n"}, "", 0, "extension-release.a"},
	}
	builders := []struct {
		b      sysext.Builder
		format sysext.Format
	}{{squashfs.Builder{}, sysext.Squashfs}, {erofs.Builder{}, sysext.Erofs}}
	for _, tb := range builders {
		for _, c := range cases {
			t.Run(string(tb.format)+"/"+c.name, func(t *testing.T) {
				src := t.TempDir()
				for name, content := range c.files {
					p := filepath.Join(src, name)
					os.MkdirAll(filepath.Dir(p), 0o755)
					os.WriteFile(p, []byte(content), 0o644)
				}
				img := filepath.Join(t.TempDir(), "x.raw")
				opts := sysext.BuildOptions{Format: tb.format, Compression: sysext.None, AllRoot: true}
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
