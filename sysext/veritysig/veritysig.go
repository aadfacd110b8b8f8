// Package veritysig makes and checks the signature of a dm-verity root
// hash the way systemd does: a PKCS#7 detached signature over the root
// hash's lowercase hex spelling, and the JSON document of a DDI's
// root-ARCH-verity-sig partition that carries it.
//
// Signing follows systemd-repart (OpenSSL's PKCS7_sign with
// PKCS7_DETACHED|PKCS7_NOATTR|PKCS7_BINARY: SHA-256, no signed
// attributes, the signer's certificate included), so RSA signatures are
// reproducible. Checking follows systemd's userspace check
// (PKCS7_verify with PKCS7_NOINTERN|PKCS7_NOVERIFY): only the trusted
// certificates are used, never those the signature carries, and no chain
// is built. PKCS#7 itself is github.com/smallstep/pkcs7.
package veritysig

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/smallstep/pkcs7"
)

// MaxDocSize bounds a verity-sig document: systemd-repart's are a few KiB,
// a chain of certificates tens.
const MaxDocSize = 1 << 20

// maxSignatureSize bounds the PKCS#7 signature parsed from a document.
const maxSignatureSize = 256 << 10

// Sign makes the PKCS#7 detached signature (DER) of rootHash as systemd
// checks it, by key, whose certificate is cert.
func Sign(rootHash []byte, key crypto.Signer, cert *x509.Certificate) ([]byte, error) {
	sd, err := pkcs7.NewSignedData([]byte(hex.EncodeToString(rootHash)))
	if err != nil {
		return nil, fmt.Errorf("sign root hash: %w", err)
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if err := sd.SignWithoutAttr(cert, key, pkcs7.SignerInfoConfig{}); err != nil {
		return nil, fmt.Errorf("sign root hash: %w", err)
	}
	sd.Detach()
	sig, err := sd.Finish()
	if err != nil {
		return nil, fmt.Errorf("sign root hash: %w", err)
	}
	return sig, nil
}

// ErrUntrusted is returned by Verify when no trusted certificate made
// the signature.
var ErrUntrusted = errors.New("not signed by a trusted certificate")

// Verify checks that sig (PKCS#7, DER) signs rootHash by a key of one of
// the trusted certificates, and returns that certificate. Every signer of
// sig must verify; certificates inside sig are ignored.
func Verify(sig, rootHash []byte, trusted []*x509.Certificate) (*x509.Certificate, error) {
	if len(sig) > maxSignatureSize {
		return nil, fmt.Errorf("signature of %d bytes: at most %d", len(sig), maxSignatureSize)
	}
	p7, err := pkcs7.Parse(sig)
	if err != nil {
		return nil, fmt.Errorf("parse PKCS#7 signature: %w", err)
	}
	if len(p7.Signers) == 0 {
		return nil, errors.New("the PKCS#7 signature has no signer")
	}
	if len(trusted) == 0 {
		return nil, fmt.Errorf("%w: no certificate is trusted (put one in /etc/verity.d/NAME.crt)", ErrUntrusted)
	}
	// NOINTERN: only the trusted certificates can be the signer.
	p7.Certificates = trusted
	p7.Content = []byte(hex.EncodeToString(rootHash))
	if err := p7.Verify(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUntrusted, err)
	}
	// Name the certificate of the first signer (Verify found each one).
	ias := p7.Signers[0].IssuerAndSerialNumber
	for _, c := range trusted {
		if bytes.Equal(c.RawIssuer, ias.IssuerName.FullBytes) && c.SerialNumber.Cmp(ias.SerialNumber) == 0 {
			return c, nil
		}
	}
	return nil, fmt.Errorf("%w: the signer's certificate is not among the trusted", ErrUntrusted)
}

// Doc is the JSON document of a root-ARCH-verity-sig partition, as
// systemd-repart writes it and systemd reads it (NUL-padded to the
// partition's size).
type Doc struct {
	// RootHash is the verity root hash in lowercase hex.
	RootHash string `json:"rootHash"`
	// CertificateFingerprint is the SHA-256 of the signing certificate's
	// DER, in lowercase hex.
	CertificateFingerprint string `json:"certificateFingerprint"`
	// Signature is the PKCS#7 detached signature (DER) of RootHash's
	// bytes, base64 in the JSON.
	Signature []byte `json:"signature"`
}

// Fingerprint is the SHA-256 of cert's DER in lowercase hex, as Doc's
// certificateFingerprint.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// NewDoc signs rootHash and returns the document.
func NewDoc(rootHash []byte, key crypto.Signer, cert *x509.Certificate) (*Doc, error) {
	sig, err := Sign(rootHash, key, cert)
	if err != nil {
		return nil, err
	}
	return &Doc{RootHash: hex.EncodeToString(rootHash), CertificateFingerprint: Fingerprint(cert), Signature: sig}, nil
}

// Marshal encodes the document as systemd-repart does: compact JSON, the
// fields in its order.
func (d *Doc) Marshal() ([]byte, error) { return json.Marshal(d) }

// ParseDoc reads a document from a partition's bytes: the JSON up to the
// first NUL, at most MaxDocSize bytes, with exactly the three fields,
// a root hash of 64 hex digits and a certificate fingerprint of 64.
func ParseDoc(data []byte) (*Doc, error) {
	if i := bytes.IndexByte(data, 0); i >= 0 {
		data = data[:i]
	}
	if len(data) > MaxDocSize {
		return nil, fmt.Errorf("verity signature document of more than %d bytes", MaxDocSize)
	}
	var d Doc
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("verity signature document: %w", err)
	}
	if dec.More() {
		return nil, errors.New("verity signature document: data after the JSON object")
	}
	if _, err := decodeHex(d.RootHash, sha256.Size); err != nil {
		return nil, fmt.Errorf("verity signature document: rootHash: %w", err)
	}
	if d.CertificateFingerprint != "" {
		if _, err := decodeHex(d.CertificateFingerprint, sha256.Size); err != nil {
			return nil, fmt.Errorf("verity signature document: certificateFingerprint: %w", err)
		}
	}
	if len(d.Signature) == 0 {
		return nil, errors.New("verity signature document: no signature")
	}
	return &d, nil
}

// decodeHex decodes n bytes of lowercase hex.
func decodeHex(s string, n int) ([]byte, error) {
	if len(s) != 2*n {
		return nil, fmt.Errorf("%d hex digits, want %d", len(s), 2*n)
	}
	if s != string(bytes.ToLower([]byte(s))) {
		return nil, errors.New("not lowercase hex")
	}
	return hex.DecodeString(s)
}

// Check verifies the document for rootHash (the root hash of the verity
// tree that checks the data) with the trusted certificates: the document
// must name that root hash, be signed by a trusted certificate, and name
// that certificate's fingerprint. It returns the certificate.
func (d *Doc) Check(rootHash []byte, trusted []*x509.Certificate) (*x509.Certificate, error) {
	if d.RootHash != hex.EncodeToString(rootHash) {
		return nil, fmt.Errorf("the signature is for root hash %s, not %x", d.RootHash, rootHash)
	}
	cert, err := Verify(d.Signature, rootHash, trusted)
	if err != nil {
		return nil, err
	}
	if d.CertificateFingerprint != "" && d.CertificateFingerprint != Fingerprint(cert) {
		return nil, fmt.Errorf("the signature names certificate %s, but %s (%s) signed it", d.CertificateFingerprint, Fingerprint(cert), cert.Subject)
	}
	return cert, nil
}
