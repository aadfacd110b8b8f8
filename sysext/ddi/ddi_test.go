package ddi

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sysext-bakery/bakery/internal/fixture"
	"github.com/sysext-bakery/bakery/sign"
	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/erofs"
	"github.com/sysext-bakery/bakery/sysext/veritysig"
)

// stage writes a small extension tree named name for x86-64.
func stage(t testing.TB, dir, name string) string {
	t.Helper()
	src := filepath.Join(dir, "src")
	for p, content := range map[string]string{
		"usr/lib/extension-release.d/extension-release." + name: "ID=_any\nARCHITECTURE=x86-64\n",
		"usr/bin/hello":              "#!/bin/sh\necho hello\n",
		"usr/share/hello/big":        strings.Repeat("hello world\n", 40000),
		"opt/hello/README":           "opt too\n",
		"usr/share/hello/empty-file": "",
	} {
		full := filepath.Join(src, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return src
}

// build writes our DDI of src to dst.
func build(t testing.TB, src, dst string, s *sysext.Signing) []byte {
	t.Helper()
	if err := os.WriteFile(dst, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := (Builder{Inner: erofs.Builder{}}).Build(context.Background(), src, dst, sysext.BuildOptions{Epoch: 1700000000, AllRoot: true, Signing: s}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// keys are the signing keys the tests use: an RSA key and certificate
// made by openssl as mkosi genkey makes them, and bakery keygen --x509's
// ECDSA P-256 pair.
func keys(t *testing.T, dir string) map[string][2]string {
	t.Helper()
	out := map[string][2]string{"ecdsa": ecdsaKey(t, dir)}
	if _, err := exec.LookPath("openssl"); err == nil {
		k, c := filepath.Join(dir, "rsa.key"), filepath.Join(dir, "rsa.crt")
		if b, err := exec.Command("openssl", "req", "-new", "-x509", "-newkey", "rsa:2048", "-keyout", k, "-out", c, "-days", "3650", "-subj", "/CN=test", "-nodes").CombinedOutput(); err != nil {
			t.Fatalf("openssl req: %v\n%s", err, b)
		}
		out["rsa"] = [2]string{k, c}
	}
	return out
}

// ecdsaKey writes an ECDSA key and its certificate as bakery keygen
// --x509 does and returns their paths.
func ecdsaKey(t testing.TB, dir string) [2]string {
	t.Helper()
	key, err := sign.GenerateKey(sign.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	prefix := filepath.Join(dir, "ecdsa")
	kp, _, err := sign.WriteKeyPair(prefix, key)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := sign.WriteSelfSignedCert(prefix+".crt", key, "bakery test")
	if err != nil {
		t.Fatal(err)
	}
	return [2]string{kp, cp}
}

func loadSigning(t testing.TB, kc [2]string) *sysext.Signing {
	t.Helper()
	k, c, err := sign.LoadCertificateKey(kc[0], kc[1])
	if err != nil {
		t.Fatal(err)
	}
	return &sysext.Signing{Key: k, Cert: c}
}

// table reads a DDI's partition table with the package's reader.
func table(t *testing.T, img []byte) *Table {
	t.Helper()
	tb, err := ReadTable(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// sigDoc reads the raw JSON of a DDI's signature partition.
func sigDoc(t *testing.T, img []byte) map[string]any {
	t.Helper()
	im, err := Open(bytes.NewReader(img), int64(len(img)), "x86-64")
	if err != nil || im.Signature == nil {
		t.Fatalf("Open: %v, signature partition %v", err, im)
	}
	raw := img[im.Signature.Offset : im.Signature.Offset+im.Signature.Size]
	raw = raw[:bytes.IndexByte(raw, 0)]
	if rest := img[im.Signature.Offset+int64(len(raw)) : im.Signature.Offset+im.Signature.Size]; strings.Trim(string(rest), "\x00") != "" {
		t.Error("the signature partition is not NUL-padded after the JSON")
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	m["_keys"] = jsonKeys(t, raw)
	return m
}

// jsonKeys lists the keys of a JSON object in their order.
func jsonKeys(t *testing.T, raw []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	var keys []string
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// dissect runs systemd 257's systemd-dissect --json=short on img.
func dissect(t *testing.T, dir, img string) map[string]any {
	t.Helper()
	out, err := fixture.Debian13(t, []string{dir}, "systemd-dissect", "--json=short", img).Output()
	if err != nil {
		t.Fatalf("systemd-dissect %s: %v\n%s", img, err, out)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("systemd-dissect: %v\n%s", err, out)
	}
	return m
}

// mounts summarises systemd-dissect's mounts: designator → verity.
func mounts(m map[string]any) map[string]any {
	out := map[string]any{}
	for _, x := range m["mounts"].([]any) {
		mm := x.(map[string]any)
		out[mm["designator"].(string)] = mm["verity"]
	}
	return out
}

// TestRepart compares bakery's DDI with the one systemd-repart 257 makes
// from the same tree, key and certificate (--make-ddi=sysext), for an RSA
// key (as mkosi genkey makes) and bakery keygen --x509's ECDSA key: the
// same partition types, labels and flags, the same signature document
// shape and certificate fingerprint; systemd-dissect 257 lists root,
// root-verity and root-verity-sig for ours with "verity":"signed" and the
// same sysextRelease; openssl cms -verify accepts our signature with the
// certificate and refuses it with another; and bakery's own reader and
// verifier accept systemd-repart's DDI as signed.
func TestRepart(t *testing.T) {
	dir := t.TempDir()
	src := stage(t, dir, "ref")
	for name, kc := range keys(t, dir) {
		t.Run(name, func(t *testing.T) {
			d := filepath.Join(dir, name)
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			s := loadSigning(t, kc)
			ref := filepath.Join(d, "ref.raw")
			cmd := fixture.Debian13(t, []string{dir}, "systemd-repart", "--make-ddi=sysext", "--copy-source="+src,
				"--private-key="+kc[0], "--certificate="+kc[1], "--empty=create", "--size=auto", "--json=off",
				"--seed=e4f5ef3e-5a0d-4a7c-8a0c-0d8f6a3a1b2c", ref)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("systemd-repart: %v\n%s", err, out)
			}
			refImg, err := os.ReadFile(ref)
			if err != nil {
				t.Fatal(err)
			}
			ours := filepath.Join(d, "ours", "ref.raw") // dissect wants extension-release.ref in ref.raw
			if err := os.MkdirAll(filepath.Dir(ours), 0o755); err != nil {
				t.Fatal(err)
			}
			img := build(t, src, ours, s)

			// The partition tables.
			describe := func(tb *Table) []string {
				var out []string
				for _, p := range tb.Partitions {
					out = append(out, p.Type.String()+" "+p.Label+" "+hex.EncodeToString([]byte{byte(p.Attributes >> 56)}))
				}
				return out
			}
			if got, want := describe(table(t, img)), describe(table(t, refImg)); !slices.Equal(got, want) {
				t.Errorf("partitions (type, label, flags):\n ours %q\n ref  %q", got, want)
			}

			// The signature documents.
			sd, rd := sigDoc(t, img), sigDoc(t, refImg)
			if !slices.Equal(sd["_keys"].([]string), rd["_keys"].([]string)) {
				t.Errorf("signature document keys %v, systemd-repart's %v", sd["_keys"], rd["_keys"])
			}
			if sd["certificateFingerprint"] != rd["certificateFingerprint"] {
				t.Errorf("certificateFingerprint %v, systemd-repart's %v", sd["certificateFingerprint"], rd["certificateFingerprint"])
			}

			// systemd-dissect.
			om, rm := dissect(t, dir, ours), dissect(t, dir, ref)
			want := map[string]any{"root": "signed", "root-verity": nil, "root-verity-sig": nil}
			if got := mounts(om); len(got) != 3 || got["root"] != "signed" || !maps.Equal(got, want) {
				t.Errorf("systemd-dissect lists %v for ours, want %v", got, want)
			}
			if got, want := om["sysextRelease"], rm["sysextRelease"]; want == nil || !slicesEqualAny(got, want) {
				t.Errorf("systemd-dissect: sysextRelease %v, systemd-repart's %v", got, want)
			}

			// openssl cms -verify.
			root := sd["rootHash"].(string)
			if err := os.WriteFile(filepath.Join(d, "roothash"), []byte(root), 0o644); err != nil {
				t.Fatal(err)
			}
			doc, err := veritysig.ParseDoc(mustJSON(t, sd))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, "sig.p7s"), doc.Signature, 0o644); err != nil {
				t.Fatal(err)
			}
			cms := func(cert string) ([]byte, error) {
				return exec.Command("openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", filepath.Join(d, "sig.p7s"),
					"-content", filepath.Join(d, "roothash"), "-certfile", cert, "-CAfile", cert, "-out", os.DevNull).CombinedOutput()
			}
			if out, err := cms(kc[1]); err != nil {
				t.Errorf("openssl cms -verify refuses our signature: %v\n%s", err, out)
			}
			other := ecdsaKey(t, t.TempDir())
			if out, err := cms(other[1]); err == nil {
				t.Errorf("openssl cms -verify accepts our signature with another certificate:\n%s", out)
			}

			// bakery's reader on systemd-repart's DDI.
			im, err := Open(bytes.NewReader(refImg), int64(len(refImg)), "")
			if err != nil {
				t.Fatal(err)
			}
			v, err := im.Verify(context.Background(), []*x509.Certificate{s.Cert})
			if err != nil || v.Protection != Signed || v.RootHash != rd["rootHash"] {
				t.Errorf("Verify of systemd-repart's DDI = %+v, %v; want signed, root hash %v", v, err, rd["rootHash"])
			}
		})
	}
}

func slicesEqualAny(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func mustJSON(t *testing.T, m map[string]any) []byte {
	t.Helper()
	c := map[string]any{}
	for k, v := range m {
		if k != "_keys" {
			c[k] = v
		}
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// TestPartitionTypes checks the table of partition types against the one
// systemd 257 knows (systemd-id128 show), for every architecture bakery
// builds for.
func TestPartitionTypes(t *testing.T) {
	out, err := fixture.Debian13(t, nil, "systemd-id128", "show").Output()
	if err != nil {
		t.Fatalf("systemd-id128 show: %v\n%s", err, out)
	}
	known := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) == 2 {
			known[f[0]] = f[1]
		}
	}
	for _, a := range sysext.Arches() {
		for _, role := range []string{RoleRoot, RoleVerity, RoleSignature} {
			got, err := PartitionType(a.Name, role)
			want := known[Label(a.Name, role)]
			if err != nil || strings.ReplaceAll(got.String(), "-", "") != want {
				t.Errorf("%s: %v, %v; systemd says %q", Label(a.Name, role), got, err, want)
			}
		}
	}
}
