package merge

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sysext-bakery/bakery/sign"
)

// TestLoadCertificates checks where merge finds the certificates trusted
// to sign DDIs, as systemd's conf_files of verity.d: every *.crt of
// /etc, /run, /usr/local/lib and /usr/lib verity.d, sorted by name, an
// earlier directory's file hiding a later one's of the same name, an
// empty file masking it, unreadable ones skipped with a warning; then
// sync.yaml's certificates.
func TestLoadCertificates(t *testing.T) {
	root := t.TempDir()
	pem := func(cn string) string {
		key, err := sign.GenerateKey(sign.ECDSAP256)
		if err != nil {
			t.Fatal(err)
		}
		b, err := sign.SelfSignedCert(key, cn)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	writeFiles(t, root, map[string]string{
		"etc/verity.d/b.crt":            pem("etc b"),
		"usr/lib/verity.d/b.crt":        pem("usr b, hidden by etc's"),
		"usr/lib/verity.d/a.crt":        pem("usr a"),
		"run/verity.d/masked.crt":       "",
		"usr/lib/verity.d/masked.crt":   pem("masked"),
		"usr/local/lib/verity.d/z.crt":  "not a certificate",
		"etc/verity.d/notes.txt":        pem("not a .crt"),
		"etc/bakery/release.crt":        pem("config"),
		"usr/local/lib/verity.d/c.crt/": "",
	})
	// A fifo is refused without blocking; an oversized file unread.
	if err := unix.Mkfifo(filepath.Join(root, "etc/verity.d/fifo.crt"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, root, map[string]string{"etc/verity.d/big.crt": strings.Repeat("x", maxCertSize+1)})
	certs, warnings := LoadCertificates(root, &Config{Certificates: []string{"/etc/bakery/release.crt", "/etc/bakery/missing.crt"}})
	var names []string
	for _, c := range certs {
		names = append(names, c.Subject.CommonName)
	}
	if want := []string{"usr a", "etc b", "config"}; !slices.Equal(names, want) {
		t.Errorf("certificates %q, want %q", names, want)
	}
	all := strings.Join(warnings, "\n")
	if len(warnings) != 5 || !strings.Contains(all, "/usr/local/lib/verity.d/z.crt") || !strings.Contains(all, "/etc/bakery/missing.crt") ||
		!strings.Contains(all, "c.crt") || !strings.Contains(all, "fifo.crt") || !strings.Contains(all, "big.crt") {
		t.Errorf("warnings %q, want z.crt, c.crt (a directory), fifo.crt, big.crt and missing.crt", warnings)
	}
	if certs, warnings := LoadCertificates(t.TempDir(), nil); len(certs) != 0 || len(warnings) != 0 {
		t.Errorf("a root without verity.d: %v, %q", certs, warnings)
	}
}

// TestConfigCertificates checks sync.yaml's certificates: absolute paths,
// and enough for policy.require-signature on their own (DDIs only).
func TestConfigCertificates(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name, yaml, want string
	}{
		{"certificates only", "certificates: [/etc/bakery/r.crt]\npolicy:\n  require-signature: true\n", ""},
		{"relative certificate", "certificates: [r.crt]\n", `certificates[0] "r.crt": give an absolute path`},
		{"nothing trusted", "policy:\n  require-signature: true\n", "needs at least one trusted key"},
		{"catalog needs keys", "certificates: [/etc/bakery/r.crt]\npolicy:\n  require-catalog: true\n", "require-catalog needs at least one trusted key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".yaml")
			if err := os.WriteFile(p, []byte(tt.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := LoadConfig(p)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("LoadConfig = %v, want %q", err, tt.want)
			}
		})
	}
}
