package sign

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"time"

	"github.com/sysext-bakery/bakery/internal/atomicfile"
)

// SelfSignedCert makes a self-signed certificate for key, valid for ten
// years, as PEM: what systemd checks a DDI's verity signature with (in
// /etc/verity.d/) and signs it with (systemd-repart --certificate). Like
// mkosi genkey's it names no extended key usage, so that openssl's
// S/MIME purpose checks (openssl cms -verify) accept it too.
func SelfSignedCert(key crypto.Signer, commonName string) ([]byte, error) {
	if err := checkKeyType(key.Public()); err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// WriteSelfSignedCert writes SelfSignedCert(key, commonName) to path
// (atomically) and returns path.
func WriteSelfSignedCert(path string, key crypto.Signer, commonName string) (string, error) {
	cert, err := SelfSignedCert(key, commonName)
	if err != nil {
		return "", err
	}
	return path, atomicfile.WriteFile(path, cert, 0o644)
}

// ParseCertificate decodes a PEM "CERTIFICATE".
func ParseCertificate(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM \"CERTIFICATE\" block found (expected an X.509 certificate, as bakery keygen --x509 writes)")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	return cert, nil
}

// LoadCertificate reads a PEM certificate file.
func LoadCertificate(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	cert, err := ParseCertificate(data)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", path, err)
	}
	return cert, nil
}

// LoadCertificateKey reads a private key and its certificate for X.509
// signatures (DDI verity signatures): besides bakery's own keys it takes
// the RSA keys systemd-repart and mkosi genkey make (PKCS#8 or PKCS#1
// PEM), and refuses a key that is not the certificate's.
func LoadCertificateKey(keyPath, certPath string) (crypto.Signer, *x509.Certificate, error) {
	cert, err := LoadCertificate(certPath)
	if err != nil {
		return nil, nil, err
	}
	data, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, fmt.Errorf("read private key: %w", err)
	}
	key, err := parsePEMPrivateKey(data)
	if err != nil {
		return nil, nil, fmt.Errorf("private key %s: %w", keyPath, err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("private key %s is not the key of certificate %s: give the certificate made with it (bakery keygen --x509 writes both)", keyPath, certPath)
	}
	return key, cert, nil
}
