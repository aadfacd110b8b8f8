package sign

import (
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

const (
	digestA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	digestB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// helloClaims are the claims the tests sign.
var helloClaims = Claims{Kind: "sysext", Name: "hello", Version: "1.0"}

func mustKey(t testing.TB, alg Algorithm) crypto.Signer {
	t.Helper()
	k, err := GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// editBundle decodes a bundle, lets f change it and encodes it again.
func editBundle(t *testing.T, b []byte, f func(*Bundle)) []byte {
	t.Helper()
	var bu Bundle
	if err := json.Unmarshal(b, &bu); err != nil {
		t.Fatal(err)
	}
	f(&bu)
	out, err := json.Marshal(bu)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSignVerify(t *testing.T) {
	for _, alg := range []Algorithm{ECDSAP256, Ed25519} {
		t.Run(string(alg), func(t *testing.T) {
			key := mustKey(t, alg)
			other := mustKey(t, alg)
			bundle, err := Sign(key, "reg/ns/hello", digestA, helloClaims)
			if err != nil {
				t.Fatal(err)
			}
			resigned := func(payload string) []byte {
				raw, _ := base64.StdEncoding.DecodeString(payload)
				sig, err := signMessage(key, PAE(InTotoPayloadType, raw))
				if err != nil {
					t.Fatal(err)
				}
				return editBundle(t, bundle, func(b *Bundle) {
					b.DSSEEnvelope.Payload = payload
					b.DSSEEnvelope.Signatures = []Signature{{Sig: base64.StdEncoding.EncodeToString(sig)}}
				})
			}
			tests := []struct {
				name    string
				bundle  []byte
				keys    []crypto.PublicKey
				digest  string
				wantErr error  // checked with errors.Is when set
				wantMsg string // substring of the error when set
				// wantClaims are the claims of a bundle that verifies.
				wantClaims *Claims
			}{
				{name: "valid", bundle: bundle, keys: []crypto.PublicKey{key.Public()}, digest: digestA, wantClaims: &helloClaims},
				{name: "valid among several keys", bundle: bundle, keys: []crypto.PublicKey{other.Public(), key.Public()}, digest: digestA, wantClaims: &helloClaims},
				{name: "wrong key", bundle: bundle, keys: []crypto.PublicKey{other.Public()}, digest: digestA, wantErr: ErrBadSignature},
				{name: "other digest", bundle: bundle, keys: []crypto.PublicKey{key.Public()}, digest: digestB, wantErr: ErrWrongSubject},
				{name: "no keys", bundle: bundle, digest: digestA, wantMsg: "no trusted public keys"},
				{name: "payload swapped", bundle: editBundle(t, bundle, func(b *Bundle) {
					b.DSSEEnvelope.Payload = base64.StdEncoding.EncodeToString([]byte(strings.Replace(mustDecode(t, b.DSSEEnvelope.Payload), digestA[7:], digestB[7:], 1)))
				}), keys: []crypto.PublicKey{key.Public()}, digest: digestB, wantErr: ErrBadSignature},
				{name: "payload type changed", bundle: editBundle(t, bundle, func(b *Bundle) { b.DSSEEnvelope.PayloadType = "text/plain" }),
					keys: []crypto.PublicKey{key.Public()}, digest: digestA, wantMsg: "payloadType"},
				{name: "no signatures", bundle: editBundle(t, bundle, func(b *Bundle) { b.DSSEEnvelope.Signatures = nil }),
					keys: []crypto.PublicKey{key.Public()}, digest: digestA, wantErr: ErrBadSignature},
				{name: "message signature", bundle: editBundle(t, bundle, func(b *Bundle) {
					b.DSSEEnvelope = nil
					b.MessageSignature = json.RawMessage(`{"signature":"AA=="}`)
				}), keys: []crypto.PublicKey{key.Public()}, digest: digestA, wantMsg: "messageSignature"},
				{name: "attestation predicate", bundle: resigned(statement("https://slsa.dev/provenance/v1", `{}`)),
					keys: []crypto.PublicKey{key.Public()}, digest: digestA, wantMsg: "predicateType"},
				{name: "cosign image signature", bundle: resigned(statement(CosignPredicateType, `{}`)),
					keys: []crypto.PublicKey{key.Public()}, digest: digestA, wantClaims: nil},
				{name: "bakery predicate without a name", bundle: resigned(statement(PredicateType, `{"kind":"sysext","version":"1"}`)),
					keys: []crypto.PublicKey{key.Public()}, digest: digestA, wantMsg: "kind and a name"},
				{name: "bakery predicate not an object", bundle: resigned(statement(PredicateType, `"hello"`)),
					keys: []crypto.PublicKey{key.Public()}, digest: digestA, wantMsg: "kind and a name"},
				{name: "wrong media type", bundle: editBundle(t, bundle, func(b *Bundle) { b.MediaType = "application/json" }),
					keys: []crypto.PublicKey{key.Public()}, digest: digestA, wantMsg: "media type"},
				{name: "not json", bundle: []byte("nope"), keys: []crypto.PublicKey{key.Public()}, digest: digestA, wantMsg: "parse Sigstore bundle"},
				{name: "bad digest argument", bundle: bundle, keys: []crypto.PublicKey{key.Public()}, digest: "sha256:zz", wantMsg: "want sha256:"},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					v, err := VerifyBundle(tt.bundle, tt.keys, tt.digest)
					if tt.wantErr == nil && tt.wantMsg == "" {
						if err != nil {
							t.Fatalf("VerifyBundle: %v", err)
						}
						if v.Statement.Subject[0].Name != "reg/ns/hello" {
							t.Errorf("subject name %q", v.Statement.Subject[0].Name)
						}
						if (v.Claims == nil) != (tt.wantClaims == nil) || v.Claims != nil && *v.Claims != *tt.wantClaims {
							t.Errorf("claims %+v, want %+v", v.Claims, tt.wantClaims)
						}
						if hint, _ := KeyHint(key.Public()); v.KeyHint != hint {
							t.Errorf("key hint %q, want the signing key's %q", v.KeyHint, hint)
						}
						return
					}
					if err == nil {
						t.Fatal("VerifyBundle accepted a bad bundle")
					}
					if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
						t.Errorf("error %v, want %v", err, tt.wantErr)
					}
					if tt.wantMsg != "" && !strings.Contains(err.Error(), tt.wantMsg) {
						t.Errorf("error %q does not mention %q", err, tt.wantMsg)
					}
				})
			}
		})
	}
}

// statement is a base64 in-toto statement about digestA with the given
// predicate.
func statement(predicateType, predicate string) string {
	return base64.StdEncoding.EncodeToString([]byte(`{"_type":"` + StatementType + `","subject":[{"name":"reg/ns/hello","digest":{"sha256":"` +
		digestA[7:] + `"}}],"predicateType":"` + predicateType + `","predicate":` + predicate + `}`))
}

func TestClaimsCheck(t *testing.T) {
	signed := Claims{Kind: "sysext", Name: "kubetools", Version: "1.3.0"}
	tests := []struct {
		name string
		want Claims
		bad  string // the field the error names, "" when it passes
	}{
		{"same", signed, ""},
		{"name only", Claims{Name: "kubetools"}, ""},
		{"nothing asked", Claims{}, ""},
		{"other extension", Claims{Kind: "sysext", Name: "evil"}, "name"},
		{"other version", Claims{Name: "kubetools", Version: "1.2.3"}, "version"},
		{"other kind", Claims{Kind: "catalog", Name: "kubetools"}, "kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := signed.Check(tt.want)
			if tt.bad == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrWrongClaims) || !strings.Contains(err.Error(), "signed as "+tt.bad) {
				t.Errorf("Check = %v, want ErrWrongClaims naming %s", err, tt.bad)
			}
		})
	}
}

func TestSignNeedsClaims(t *testing.T) {
	if _, err := Sign(mustKey(t, Ed25519), "n", digestA, Claims{Kind: "sysext"}); err == nil {
		t.Error("Sign accepted claims without a name")
	}
}

func mustDecode(t *testing.T, s string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPAE(t *testing.T) {
	// The example of the DSSE v1 specification.
	got := string(PAE("http://example.com/HelloWorld", []byte("hello world")))
	want := "DSSEv1 29 http://example.com/HelloWorld 11 hello world"
	if got != want {
		t.Errorf("PAE = %q, want %q", got, want)
	}
}

func TestKeyFiles(t *testing.T) {
	for _, alg := range []Algorithm{ECDSAP256, Ed25519} {
		t.Run(string(alg), func(t *testing.T) {
			dir := t.TempDir()
			key := mustKey(t, alg)
			keyPath, pubPath, err := WriteKeyPair(filepath.Join(dir, "k"), key)
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(keyPath)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("private key mode %v, want 0600", fi.Mode().Perm())
			}
			priv, err := LoadPrivateKey(keyPath)
			if err != nil {
				t.Fatal(err)
			}
			pub, err := LoadPublicKey(pubPath)
			if err != nil {
				t.Fatal(err)
			}
			bundle, err := Sign(priv, "n", digestA, helloClaims)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := VerifyBundle(bundle, []crypto.PublicKey{pub}, digestA); err != nil {
				t.Errorf("key loaded from disk does not verify: %v", err)
			}
			if _, _, err := WriteKeyPair(filepath.Join(dir, "k"), key); err == nil {
				t.Error("WriteKeyPair overwrote an existing key")
			}
		})
	}
}

func TestParseKeyErrors(t *testing.T) {
	pubPEM, err := MarshalPublicKey(mustKey(t, ECDSAP256).Public())
	if err != nil {
		t.Fatal(err)
	}
	privPEM, err := MarshalPrivateKey(mustKey(t, ECDSAP256))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		data    []byte
		public  bool
		wantMsg string
	}{
		{"empty public", nil, true, "no PEM block"},
		{"private as public", privPEM, true, "not a public key"},
		{"public as private", pubPEM, false, "not a private key"},
		{"cosign encrypted", []byte("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"), false, "password-encrypted"},
		{"garbage DER", []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"), true, "parse public key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.public {
				_, err = ParsePublicKey(tt.data)
			} else {
				_, err = ParsePrivateKey(tt.data)
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %v, want one mentioning %q", err, tt.wantMsg)
			}
		})
	}
}

func FuzzVerifyBundle(f *testing.F) {
	key := mustKey(f, ECDSAP256)
	b, err := Sign(key, "n", digestA, helloClaims)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"mediaType":"` + BundleMediaType + `","dsseEnvelope":{"payload":"e30=","payloadType":"` + InTotoPayloadType + `","signatures":[{"sig":"AA=="}]}}`))
	keys := []crypto.PublicKey{key.Public()}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := VerifyBundle(data, keys, digestA)
		if err == nil && v == nil {
			t.Fatal("nil statement without error")
		}
	})
}

func FuzzParsePublicKey(f *testing.F) {
	pub, err := MarshalPublicKey(mustKey(f, Ed25519).Public())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pub)
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ParsePublicKey(data)
		if err == nil && checkKeyType(k) != nil {
			t.Fatal("accepted an unsupported key type")
		}
	})
}

func TestSelfSignedCert(t *testing.T) {
	for _, alg := range []Algorithm{ECDSAP256, Ed25519} {
		t.Run(string(alg), func(t *testing.T) {
			key := mustKey(t, alg)
			p, err := WriteSelfSignedCert(filepath.Join(t.TempDir(), "c.crt"), key, "bakery test")
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			block, _ := pem.Decode(data)
			if block == nil || block.Type != "CERTIFICATE" {
				t.Fatalf("not a PEM certificate: %q", data)
			}
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
				t.Errorf("not self-signed by the key: %v", err)
			}
			if cert.Subject.CommonName != "bakery test" {
				t.Errorf("CN %q", cert.Subject.CommonName)
			}
		})
	}
}

// TestLoadRefusesWhatIsNotAKeyFile checks that key and certificate paths
// naming a fifo or a device fail at once, naming the path, instead of
// blocking or reading without end.
func TestLoadRefusesWhatIsNotAKeyFile(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "key.pub")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	loads := map[string]func(string) error{
		"LoadPublicKey":   func(p string) error { _, err := LoadPublicKey(p); return err },
		"LoadPrivateKey":  func(p string) error { _, err := LoadPrivateKey(p); return err },
		"LoadCertificate": func(p string) error { _, err := LoadCertificate(p); return err },
	}
	for name, load := range loads {
		for p, want := range map[string]string{fifo: fifo + " is a fifo", "/dev/zero": "/dev/zero is a character device"} {
			if err := load(p); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s(%s) = %v, want an error containing %q", name, p, err, want)
			}
		}
	}
}
