package sign

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"

	"github.com/sysext-bakery/bakery/internal/atomicfile"
)

// SelfSignedCert makes a self-signed code-signing certificate for key,
// valid for ten years, as PEM.
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
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
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
