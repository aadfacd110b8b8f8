package sidecar

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sysext-bakery/bakery/internal/fixture"
	"github.com/sysext-bakery/bakery/sign"
	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/erofs"
	"github.com/sysext-bakery/bakery/sysext/squashfs"
)

// TestSidecars writes the sidecars of a squashfs and an erofs image and
// has the real tools read them: veritysetup verify checks the tree
// against the root hash file, openssl cms -verify the signature, and
// systemd-dissect 257 finds the sidecars and reports the image's root
// verity-protected and signed.
func TestSidecars(t *testing.T) {
	key, err := sign.GenerateKey(sign.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPath, err := sign.WriteSelfSignedCert(filepath.Join(dir, "k.crt"), key, "sidecar test")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := sign.LoadCertificate(certPath)
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "src")
	rel := filepath.Join(src, sysext.Sysext.ReleasePath("side"))
	if err := os.MkdirAll(filepath.Dir(rel), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rel, []byte("ID=_any\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "usr/lib/big"), []byte(strings.Repeat("side\n", 50000)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, b := range []sysext.Builder{squashfs.Builder{}, erofs.Builder{}} {
		t.Run(fmt.Sprintf("%T", b), func(t *testing.T) {
			d := t.TempDir()
			img := filepath.Join(d, "side.raw")
			if err := b.Build(context.Background(), src, img, sysext.BuildOptions{AllRoot: true}); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fi, _ := f.Stat()
			files, root, err := Create(context.Background(), f, fi.Size(), img, &sysext.Signing{Key: key, Cert: cert})
			if err != nil {
				t.Fatal(err)
			}
			for _, tmp := range files {
				if err := tmp.Commit(0o644); err != nil {
					t.Fatal(err)
				}
			}
			base := filepath.Join(d, "side")
			roothash, _ := os.ReadFile(base + RootHashSuffix)
			if out, err := exec.Command("veritysetup", "verify", img, base+VeritySuffix, strings.TrimSpace(string(roothash))).CombinedOutput(); err != nil {
				t.Errorf("veritysetup verify: %v\n%s", err, out)
			}
			if strings.TrimSpace(string(roothash)) != hex.EncodeToString(root) {
				t.Errorf("root hash file %q, Create returned %x", roothash, root)
			}
			if err := os.WriteFile(base+".content", []byte(strings.TrimSpace(string(roothash))), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", base+SignatureSuffix,
				"-content", base+".content", "-CAfile", certPath, "-out", os.DevNull).CombinedOutput(); err != nil {
				t.Errorf("openssl cms -verify: %v\n%s", err, out)
			}
			// systemd-dissect says "external" for verity data found in
			// sidecars, null without them.
			if got := dissectVerity(t, d, img); got != "external" {
				t.Errorf("systemd-dissect: root verity %q with the sidecars, want external", got)
			}
			for _, suffix := range []string{VeritySuffix, RootHashSuffix, SignatureSuffix} {
				os.Remove(base + suffix)
			}
			if got := dissectVerity(t, d, img); got != "" {
				t.Errorf("systemd-dissect: root verity %q without the sidecars, want null", got)
			}
		})
	}
}

// dissectVerity is what systemd-dissect 257 says of the verity of img's
// root.
func dissectVerity(t *testing.T, dir, img string) string {
	t.Helper()
	out, err := fixture.Debian13(t, []string{dir}, "systemd-dissect", "--json=short", img).Output()
	if err != nil {
		t.Fatalf("systemd-dissect: %v\n%s", err, out)
	}
	var m struct {
		Mounts []struct {
			Designator string `json:"designator"`
			Verity     string `json:"verity"`
		} `json:"mounts"`
	}
	if err := json.Unmarshal(out, &m); err != nil || len(m.Mounts) != 1 || m.Mounts[0].Designator != "root" {
		t.Fatalf("systemd-dissect: %+v, %v\n%s", m, err, out)
	}
	return m.Mounts[0].Verity
}
