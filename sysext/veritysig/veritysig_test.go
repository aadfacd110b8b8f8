package veritysig

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/sysext-bakery/bakery/sign"
)

var bigOne = new(big.Int).SetInt64(1)

func cert(t *testing.T, key *ecdsa.PrivateKey) *x509.Certificate {
	t.Helper()
	pem, err := sign.SelfSignedCert(key, "veritysig test")
	if err != nil {
		t.Fatal(err)
	}
	c, err := sign.ParseCertificate(pem)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSignVerify checks that a signature verifies for its root hash with
// its certificate trusted, and not for another root hash, with another
// certificate trusted, or with none.
func TestSignVerify(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c, oc := cert(t, key), cert(t, other)
	root := sha256.Sum256([]byte("data"))
	sig, err := Sign(root[:], key, c)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Verify(sig, root[:], []*x509.Certificate{oc, c}); err != nil || got != c {
		t.Errorf("Verify = %v, %v; want the signing certificate", got, err)
	}
	wrong := sha256.Sum256([]byte("other"))
	for _, tt := range []struct {
		name    string
		root    []byte
		trusted []*x509.Certificate
	}{
		{"another root hash", wrong[:], []*x509.Certificate{c}},
		{"another certificate", root[:], []*x509.Certificate{oc}},
		{"no certificate", root[:], nil},
	} {
		if _, err := Verify(sig, tt.root, tt.trusted); !errors.Is(err, ErrUntrusted) {
			t.Errorf("%s: Verify = %v, want ErrUntrusted", tt.name, err)
		}
	}
}

// TestRSAReproducible checks that an RSA signature (PKCS#1 v1.5, no
// signed attributes) is the same bytes every time, so a signed DDI is
// reproducible with an RSA key.
func TestRSAReproducible(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: bigOne}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	root := sha256.Sum256([]byte("data"))
	a, _ := Sign(root[:], key, c)
	b, _ := Sign(root[:], key, c)
	if !bytes.Equal(a, b) {
		t.Error("two RSA signatures of one root hash differ")
	}
}

// TestParseDoc refuses documents systemd would not read or that claim
// too much.
func TestParseDoc(t *testing.T) {
	root := strings.Repeat("ab", 32)
	for _, tt := range []struct {
		name, doc, want string
	}{
		{"valid, NUL-padded", `{"rootHash":"` + root + `","certificateFingerprint":"` + root + `","signature":"AAEC"}` + "\x00\x00garbage", ""},
		{"no signature", `{"rootHash":"` + root + `"}`, "no signature"},
		{"short root hash", `{"rootHash":"abcd","signature":"AAEC"}`, "4 hex digits"},
		{"upper-case root hash", `{"rootHash":"` + strings.ToUpper(root) + `","signature":"AAEC"}`, "lowercase"},
		{"bad fingerprint", `{"rootHash":"` + root + `","certificateFingerprint":"zz","signature":"AAEC"}`, "certificateFingerprint"},
		{"unknown field", `{"rootHash":"` + root + `","signature":"AAEC","extra":true}`, "unknown field"},
		{"two objects", `{"rootHash":"` + root + `","signature":"AAEC"} {}`, "data after"},
		{"2 MiB", `{"rootHash":"` + strings.Repeat(" ", 2<<20), "more than"},
		{"not base64", `{"rootHash":"` + root + `","signature":"!!"}`, "illegal base64"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseDoc([]byte(tt.doc))
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("ParseDoc = %v, want %q", err, tt.want)
			}
		})
	}
}
