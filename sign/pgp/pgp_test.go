package pgp

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// gpgVerify runs the real gpg the way systemd-pull does (its own home, the
// keyring given with --keyring, no trust database) and reports whether it
// accepted the signature.
func gpgVerify(t *testing.T, keyring, msg, sig []byte) (bool, string) {
	t.Helper()
	gpg, err := exec.LookPath("gpg")
	if err != nil {
		t.Skip("gpg is not installed (apt-get install gpg)")
	}
	dir := t.TempDir()
	for name, data := range map[string][]byte{"ring.gpg": keyring, "msg": msg, "msg.sig": sig} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	home := filepath.Join(dir, "home")
	os.Mkdir(home, 0o700)
	out, err := exec.Command(gpg, "--no-options", "--no-default-keyring", "--no-auto-key-locate", "--no-auto-check-trustdb",
		"--batch", "--trust-model=always", "--homedir="+home, "--keyring="+filepath.Join(dir, "ring.gpg"),
		"--verify", filepath.Join(dir, "msg.sig"), filepath.Join(dir, "msg")).CombinedOutput()
	return err == nil, string(out)
}

func TestSignatureVerifiedByGPG(t *testing.T) {
	created := time.Unix(1_700_000_000, 0)
	key, err := Generate("bakery test", created)
	if err != nil {
		t.Fatal(err)
	}
	other, err := Generate("someone else", created)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte(strings.Repeat("ab", 32) + "  hello-1.0.0-x86-64.raw\n")
	ring, err := key.Public().Binary()
	if err != nil {
		t.Fatal(err)
	}
	otherRing, _ := other.Public().Binary()
	armored, _ := key.Public().Armored()
	sign := func(at time.Time) []byte {
		sig, err := key.Sign(msg, at)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	cases := []struct {
		name      string
		keyring   []byte
		msg, sig  []byte
		wantValid bool
	}{
		{"our key", ring, msg, sign(created.Add(time.Hour)), true},
		// A date before the key is moved to its creation: gpg refuses a
		// signature older than its key.
		{"dated before the key", ring, msg, sign(time.Unix(0, 0)), true},
		{"tampered message", ring, append([]byte("0"), msg[1:]...), sign(created), false},
		{"another key's keyring", otherRing, msg, sign(created), false},
		// Why Keyring.Binary exists: gpg does not read an armored --keyring.
		{"armored keyring", armored, msg, sign(created), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ok, out := gpgVerify(t, c.keyring, c.msg, c.sig)
			if ok != c.wantValid {
				t.Errorf("gpg accepted=%v, want %v:\n%s", ok, c.wantValid, out)
			}
			_, err := key.Public().Verify(c.msg, c.sig)
			if ownOK := err == nil; c.keyring != nil && bytes.Equal(c.keyring, ring) && ownOK != c.wantValid {
				t.Errorf("Verify: %v, want valid=%v", err, c.wantValid)
			}
		})
	}
}

func TestKeyFilesRoundTrip(t *testing.T) {
	key, err := Generate("bakery test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	prefix := filepath.Join(t.TempDir(), "new", "release")
	keyPath, pubPath, ringPath, err := WriteKeyFiles(prefix, key)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(keyPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v, mode %v; want 0600", keyPath, err, fi.Mode())
	}
	priv, err := LoadPrivateKey(keyPath)
	if err != nil || priv.Fingerprint() != key.Fingerprint() {
		t.Fatalf("reloaded private key: %v", err)
	}
	for _, p := range []string{pubPath, ringPath} {
		kr, err := LoadKeyring(p)
		if err != nil || len(kr.Fingerprints()) != 1 || kr.Fingerprints()[0] != key.Fingerprint() {
			t.Errorf("%s: %v %v", p, kr.Fingerprints(), err)
		}
	}
	if _, _, _, err := WriteKeyFiles(prefix, key); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("overwrote an existing key: %v", err)
	}
}

func TestParseRefusals(t *testing.T) {
	key, _ := Generate("bakery test", time.Now())
	priv, _ := key.MarshalArmored()
	pub, _ := key.Public().Armored()
	pem := []byte("-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n")
	cases := []struct {
		name  string
		parse func([]byte) error
		data  []byte
		want  string
	}{
		{"private key as keyring", func(d []byte) error { _, err := ParseKeyring(d); return err }, priv, "private key"},
		{"public key as private", func(d []byte) error { _, err := ParsePrivateKey(d); return err }, pub, "public key"},
		{"PEM key as keyring", func(d []byte) error { _, err := ParseKeyring(d); return err }, pem, "not an OpenPGP key"},
		{"garbage", func(d []byte) error { _, err := ParseKeyring(d); return err }, []byte("hello"), "not an OpenPGP key"},
		{"empty", func(d []byte) error { _, err := ParseKeyring(d); return err }, nil, "no OpenPGP public key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.parse(c.data); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want %q", err, c.want)
			}
		})
	}
}
