package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sysext-bakery/bakery/sign"
)

// TestDDICommands runs keygen --x509, bake --format ddi signed and
// unsigned, bake of a plain image with --key (sidecars) and image inspect:
// the signed DDI names the certificate keygen wrote, unsigned DDIs of the
// same recipe are byte-identical, veritysetup verify accepts the sidecars,
// and the flags that go together are refused apart.
func TestDDICommands(t *testing.T) {
	work := t.TempDir()
	prefix := filepath.Join(work, "release")
	stdout, stderr, code := run(t, "keygen", "--x509", "--out", prefix, "--json")
	if code != 0 {
		t.Fatalf("keygen --x509: %d %s", code, stderr)
	}
	var kg struct{ Key, Public, Certificate, Algorithm string }
	if err := json.Unmarshal([]byte(stdout), &kg); err != nil || kg.Certificate != prefix+".crt" || kg.Algorithm != "ecdsa-p256" {
		t.Fatalf("keygen --x509 --json: %q, %v", stdout, err)
	}
	cert, err := sign.LoadCertificate(kg.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	fingerprint := sha256.Sum256(cert.Raw)

	bake := func(out string, args ...string) []string {
		t.Helper()
		_, stderr, code := run(t, append([]string{"bake", "../../testdata/hello", "--arch", "x86-64", "--epoch", "0", "--out", out}, args...)...)
		if code != 0 {
			t.Fatalf("bake %q: %d %s", args, code, stderr)
		}
		entries, _ := os.ReadDir(out)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}
	signed := filepath.Join(work, "signed")
	bake(signed, "--format", "ddi", "--key", prefix+".key", "--cert", prefix+".crt")
	stdout, stderr, code = run(t, "image", "inspect", "--json", filepath.Join(signed, "hello-1.0.0-x86-64.raw"))
	var info struct {
		Fstype string
		Name   string
		DDI    struct {
			FSType, Verity, CertificateFingerprint string
			Signed                                 bool
		}
	}
	if err := json.Unmarshal([]byte(stdout), &info); code != 0 || err != nil {
		t.Fatalf("image inspect: %d %v %s", code, err, stderr)
	}
	if info.Fstype != "ddi" || info.Name != "hello" || !info.DDI.Signed || info.DDI.Verity != "verity" || info.DDI.FSType != "erofs" ||
		info.DDI.CertificateFingerprint != hex.EncodeToString(fingerprint[:]) {
		t.Errorf("image inspect of the signed DDI: %+v, want signed by %x", info, fingerprint)
	}

	a, b := filepath.Join(work, "a"), filepath.Join(work, "b")
	bake(a, "--format", "ddi")
	bake(b, "--format", "ddi")
	sums := func(dir string) string { data, _ := os.ReadFile(filepath.Join(dir, "SHA256SUMS")); return string(data) }
	if sums(a) == "" || sums(a) != sums(b) {
		t.Errorf("two bakes of the same DDI differ:\n%s\n%s", sums(a), sums(b))
	}

	plain := filepath.Join(work, "plain")
	names := bake(plain, "--key", prefix+".key", "--cert", prefix+".crt")
	want := "INPUTS SHA256SUMS hello-1.0.0-x86-64.raw hello-1.0.0-x86-64.roothash hello-1.0.0-x86-64.roothash.p7s hello-1.0.0-x86-64.verity"
	if strings.Join(names, " ") != want {
		t.Errorf("bake of a signed squashfs wrote %q, want %q", names, want)
	}
	if _, err := exec.LookPath("veritysetup"); err == nil {
		root, _ := os.ReadFile(filepath.Join(plain, "hello-1.0.0-x86-64.roothash"))
		if out, err := exec.Command("veritysetup", "verify", filepath.Join(plain, "hello-1.0.0-x86-64.raw"), filepath.Join(plain, "hello-1.0.0-x86-64.verity"), strings.TrimSpace(string(root))).CombinedOutput(); err != nil {
			t.Errorf("veritysetup verify of the sidecars: %v\n%s", err, out)
		}
	}

	dst := filepath.Join(work, "created", "hello.raw")
	if _, stderr, code := run(t, "image", "create", "../../testdata/hello/files", dst, "--format", "ddi", "--key", prefix+".key", "--cert", prefix+".crt"); code != 0 {
		t.Errorf("image create --format ddi: %d %s", code, stderr)
	}

	for _, c := range []struct {
		name   string
		args   []string
		stderr string
	}{
		{"key without cert", []string{"bake", "../../testdata/hello", "--format", "ddi", "--key", prefix + ".key"}, "--key and --cert go together"},
		{"cert of another key", []string{"image", "create", "../../testdata/hello/files", filepath.Join(work, "x.raw"), "--format", "ddi", "--key", prefix + ".key", "--cert", otherCert(t, work)}, "is not the key of certificate"},
		{"x509 with ed25519", []string{"keygen", "--x509", "--algorithm", "ed25519", "--out", filepath.Join(work, "ed")}, "need ecdsa-p256"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, stderr, code := run(t, c.args...); code != 2 || !strings.Contains(stderr, c.stderr) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr, c.stderr)
			}
		})
	}
}

// otherCert writes the certificate of another key.
func otherCert(t *testing.T, dir string) string {
	t.Helper()
	if _, stderr, code := run(t, "keygen", "--x509", "--out", filepath.Join(dir, "other")); code != 0 {
		t.Fatalf("keygen: %s", stderr)
	}
	return filepath.Join(dir, "other.crt")
}
