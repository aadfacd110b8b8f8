package bakery

import (
	"archive/tar"
	"fmt"
	"strings"
	"testing"

	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/squashfs"
)

// TestErrorsNeverQuoteFetchedContent bakes sources that are someone's
// secrets rather than what the recipe expects: whatever step refuses them,
// the error names the URL and says what was expected, but quotes nothing.
func TestErrorsNeverQuoteFetchedContent(t *testing.T) {
	const secret = "hunter2-s3cret"
	shadow := []byte("[root:$y$j9T$" + secret + ":19000:0:99999:7:::\n")
	environ := []byte("HOME=/root\x00API_TOKEN=" + secret + "\x00")
	unit := []byte("[Service]\nEnvironment " + secret + "\n")
	archive := tarGz(t, tarEntry{hdr: tar.Header{Name: "usr/lib/systemd/system/x.service", Typeflag: tar.TypeReg}, body: string(shadow)})
	srv := serveFiles(t, map[string][]byte{"/shadow": shadow, "/environ": environ, "/unit": unit, "/a.tar.gz": archive})
	cases := []struct {
		name, source string
		want         []string
	}{
		{"sha256-url is the environment", "url: %[1]s/a.tar.gz\n    sha256-url: %[1]s/environ\n    extract: {}",
			[]string{"sha256-url " + srv.URL + "/environ", "line 1 is not a checksum line"}},
		{"sha256-url is shadow", "url: %[1]s/a.tar.gz\n    sha256-url: %[1]s/shadow\n    extract: {}",
			[]string{"sha256-url " + srv.URL + "/shadow", "line 1 is not a checksum line"}},
		{"archive is shadow", "url: %[1]s/shadow\n    sha256: " + sha256Hex(shadow) + "\n    extract: {}",
			[]string{"not a tar, tar.gz"}},
		{"unit file is not KEY=VALUE", "url: %[1]s/unit\n    sha256: " + sha256Hex(unit) + "\n    install: {to: /usr/lib/systemd/system/x.service}",
			[]string{"/usr/lib/systemd/system/x.service:2", "KEY=VALUE"}},
		{"unit file from an archive has a bad header", "url: %[1]s/a.tar.gz\n    sha256: " + sha256Hex(archive) + "\n    extract: {}",
			[]string{"/usr/lib/systemd/system/x.service:1", "section header"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := writeRecipe(t, fmt.Sprintf("name: x\nversion: \"1\"\narches: [x86-64]\nsources:\n  - "+c.source+"\n", srv.URL), nil)
			_, err := Bake(bakeCtx, r, bakeOptions(t, t.TempDir(), squashfs.Builder{}, sysext.Squashfs))
			if err == nil {
				t.Fatal("baked")
			}
			msg := err.Error()
			for _, leak := range []string{secret, "API_TOKEN", "$y$", fmt.Sprintf("% x", "[roo"), fmt.Sprintf("% x", "[Ser")} {
				if strings.Contains(msg, leak) {
					t.Errorf("error quotes the fetched document (%q): %s", leak, msg)
				}
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error does not say %q: %s", w, msg)
				}
			}
		})
	}
}
