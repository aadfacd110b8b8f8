// Package sign makes and checks key-based Sigstore signatures of OCI digests.
//
// A signature is a Sigstore bundle v0.3 holding a DSSE envelope over an
// in-toto statement v1 whose subject is the signed digest: the shape
// `cosign sign --key` writes and `cosign verify --key` reads. Keys are
// ECDSA P-256 or Ed25519 in PEM (PKCS#8 private, PKIX public).
package sign

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/sysext-bakery/bakery/internal/atomicfile"
	"github.com/sysext-bakery/bakery/internal/smallfile"
)

// Algorithm names a signing key type.
type Algorithm string

// The key types bakery generates and accepts.
const (
	ECDSAP256 Algorithm = "ecdsa-p256"
	Ed25519   Algorithm = "ed25519"
)

// GenerateKey makes a new private key of the given algorithm.
func GenerateKey(alg Algorithm) (crypto.Signer, error) {
	switch alg {
	case ECDSAP256, "":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case Ed25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, fmt.Errorf("key algorithm %q: unknown (use %s or %s)", alg, ECDSAP256, Ed25519)
}

// checkKeyType refuses public keys bakery cannot verify with.
func checkKeyType(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return fmt.Errorf("ECDSA key on curve %s: only P-256 is supported", k.Curve.Params().Name)
		}
		return nil
	case ed25519.PublicKey:
		return nil
	}
	return fmt.Errorf("key type %T: only ECDSA P-256 and Ed25519 are supported", pub)
}

// MarshalPrivateKey encodes a private key as PEM "PRIVATE KEY" (PKCS#8).
func MarshalPrivateKey(key crypto.Signer) ([]byte, error) {
	if err := checkKeyType(key.Public()); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// MarshalPublicKey encodes a public key as PEM "PUBLIC KEY" (PKIX), the
// form `cosign verify --key` reads.
func MarshalPublicKey(pub crypto.PublicKey) ([]byte, error) {
	if err := checkKeyType(pub); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ParsePrivateKey decodes a PEM private key: "PRIVATE KEY" (PKCS#8) or
// "EC PRIVATE KEY" (SEC 1), of a type bakery signs with.
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
	signer, err := parsePEMPrivateKey(data)
	if err != nil {
		return nil, err
	}
	if err := checkKeyType(signer.Public()); err != nil {
		return nil, err
	}
	return signer, nil
}

// parsePEMPrivateKey decodes a PEM private key of any type Go signs with:
// "PRIVATE KEY" (PKCS#8), "EC PRIVATE KEY" (SEC 1) or "RSA PRIVATE KEY"
// (PKCS#1).
func parsePEMPrivateKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found (expected a PEM \"PRIVATE KEY\", as written by bakery keygen)")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
		return nil, fmt.Errorf("PEM %q is a password-encrypted key: bakery reads unencrypted PKCS#8 keys (bakery keygen)", block.Type)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key (expected \"PRIVATE KEY\")", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", block.Type, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key type %T cannot sign", key)
	}
	return signer, nil
}

// ParsePublicKey decodes a PEM "PUBLIC KEY" (PKIX), as written by bakery
// keygen and cosign generate-key-pair.
func ParsePublicKey(data []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found (expected a PEM \"PUBLIC KEY\", as written by bakery keygen)")
	}
	if block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("PEM block %q is not a public key (expected \"PUBLIC KEY\"; pass the .pub file)", block.Type)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	if err := checkKeyType(pub); err != nil {
		return nil, err
	}
	return pub, nil
}

// maxKeyFileSize bounds what is read as a key or certificate file: a PEM
// key is a few hundred bytes, a certificate chain a few kilobytes.
const maxKeyFileSize = 1 << 20

// LoadPrivateKey reads a PEM private key file.
func LoadPrivateKey(path string) (crypto.Signer, error) {
	data, err := smallfile.Read(path, maxKeyFileSize)
	if err != nil {
		return nil, fmt.Errorf("read private key: %w", err)
	}
	k, err := ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("private key %s: %w", path, err)
	}
	return k, nil
}

// LoadPublicKey reads a PEM public key file.
func LoadPublicKey(path string) (crypto.PublicKey, error) {
	_, k, err := ReadPublicKey(path)
	return k, err
}

// ReadPublicKey is LoadPublicKey that also returns the file's bytes, for
// a caller that passes the key on as it was checked.
func ReadPublicKey(path string) ([]byte, crypto.PublicKey, error) {
	data, err := smallfile.Read(path, maxKeyFileSize)
	if err != nil {
		return nil, nil, fmt.Errorf("read public key: %w", err)
	}
	k, err := ParsePublicKey(data)
	if err != nil {
		return nil, nil, fmt.Errorf("public key %s: %w", path, err)
	}
	return data, k, nil
}

// WriteKeyPair writes PREFIX.key (private, mode 0600) and PREFIX.pub. Each
// file is written whole or not at all; an existing PREFIX.key is never
// overwritten.
func WriteKeyPair(prefix string, key crypto.Signer) (keyPath, pubPath string, err error) {
	priv, err := MarshalPrivateKey(key)
	if err != nil {
		return "", "", err
	}
	pub, err := MarshalPublicKey(key.Public())
	if err != nil {
		return "", "", err
	}
	keyPath, pubPath = prefix+".key", prefix+".pub"
	if _, err := os.Lstat(keyPath); err == nil {
		return "", "", fmt.Errorf("%s already exists: remove it or choose another --out prefix", keyPath)
	}
	if err := atomicfile.WriteFile(keyPath, priv, 0o600); err != nil {
		return "", "", err
	}
	if err := atomicfile.WriteFile(pubPath, pub, 0o644); err != nil {
		return "", "", err
	}
	return keyPath, pubPath, nil
}
