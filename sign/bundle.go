package sign

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Media and payload types of the signature format.
const (
	// BundleMediaType is the Sigstore bundle v0.3 media type; it is also the
	// artifactType of the OCI referrer that carries a bundle.
	BundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	// InTotoPayloadType is the DSSE payload type of an in-toto statement.
	InTotoPayloadType = "application/vnd.in-toto+json"
	// StatementType is the in-toto statement v1 type.
	StatementType = "https://in-toto.io/Statement/v1"
	// PredicateType marks a statement as an image signature, as cosign's.
	PredicateType = "https://sigstore.dev/cosign/sign/v1"
)

// Errors a verification can be checked against with errors.Is.
var (
	// ErrBadSignature means no trusted key verifies the envelope.
	ErrBadSignature = errors.New("signature does not verify with any trusted key")
	// ErrWrongSubject means the signed statement is about another digest.
	ErrWrongSubject = errors.New("signed statement is about another digest")
)

// Bundle is a Sigstore bundle v0.3 as JSON (protobuf-specs field names),
// restricted to what a key-based DSSE signature needs.
type Bundle struct {
	MediaType            string               `json:"mediaType"`
	VerificationMaterial VerificationMaterial `json:"verificationMaterial"`
	DSSEEnvelope         *Envelope            `json:"dsseEnvelope,omitempty"`
	// MessageSignature is only decoded to refuse it clearly: a bare
	// signature over a blob says nothing about which artifact it signs.
	MessageSignature json.RawMessage `json:"messageSignature,omitempty"`
}

// VerificationMaterial names the key that signed; bakery signatures carry
// a public key hint and no transparency-log entries (offline, key-based).
type VerificationMaterial struct {
	PublicKey *PublicKeyHint `json:"publicKey,omitempty"`
	// TlogEntries are kept so that bundles from cosign round-trip; bakery
	// does not check them (key-based trust).
	TlogEntries []json.RawMessage `json:"tlogEntries,omitempty"`
}

// PublicKeyHint identifies the signing key without embedding it.
type PublicKeyHint struct {
	Hint string `json:"hint"`
}

// Envelope is a DSSE envelope.
type Envelope struct {
	Payload     string      `json:"payload"`
	PayloadType string      `json:"payloadType"`
	Signatures  []Signature `json:"signatures"`
}

// Signature is one DSSE signature.
type Signature struct {
	Sig   string `json:"sig"`
	KeyID string `json:"keyid,omitempty"`
}

// Statement is an in-toto statement v1.
type Statement struct {
	Type          string          `json:"_type"`
	Subject       []Subject       `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

// Subject is what a statement is about: a name and its digests by
// algorithm ("sha256" → hex).
type Subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// KeyHint is the hint bakery puts in a bundle for a public key: the
// base64 SHA-256 of its PKIX DER encoding.
func KeyHint(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encode public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return base64.StdEncoding.EncodeToString(sum[:]), nil
}

// PAE is the DSSE v1 pre-authentication encoding of a payload: the bytes
// that are actually signed.
func PAE(payloadType string, payload []byte) []byte {
	var b bytes.Buffer
	b.WriteString("DSSEv1 ")
	b.WriteString(strconv.Itoa(len(payloadType)))
	b.WriteByte(' ')
	b.WriteString(payloadType)
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(len(payload)))
	b.WriteByte(' ')
	b.Write(payload)
	return b.Bytes()
}

// splitDigest turns "sha256:<64 hex>" into its hex part.
func splitDigest(digest string) (string, error) {
	hexPart, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(hexPart) != sha256.Size*2 {
		return "", fmt.Errorf("digest %q: want sha256:<64 hex digits>", digest)
	}
	if _, err := hex.DecodeString(hexPart); err != nil {
		return "", fmt.Errorf("digest %q: %w", digest, err)
	}
	return hexPart, nil
}

// SignDigest signs the statement "name (digest) is signed" with key and
// returns the Sigstore bundle as JSON. digest is "sha256:<hex>".
func SignDigest(key crypto.Signer, name, digest string) ([]byte, error) {
	hexPart, err := splitDigest(digest)
	if err != nil {
		return nil, err
	}
	payload, err := json.Marshal(Statement{
		Type:          StatementType,
		Subject:       []Subject{{Name: name, Digest: map[string]string{"sha256": hexPart}}},
		PredicateType: PredicateType,
		Predicate:     json.RawMessage("{}"),
	})
	if err != nil {
		return nil, err
	}
	sig, err := signMessage(key, PAE(InTotoPayloadType, payload))
	if err != nil {
		return nil, err
	}
	hint, err := KeyHint(key.Public())
	if err != nil {
		return nil, err
	}
	return json.Marshal(Bundle{
		MediaType:            BundleMediaType,
		VerificationMaterial: VerificationMaterial{PublicKey: &PublicKeyHint{Hint: hint}},
		DSSEEnvelope: &Envelope{
			Payload:     base64.StdEncoding.EncodeToString(payload),
			PayloadType: InTotoPayloadType,
			Signatures:  []Signature{{Sig: base64.StdEncoding.EncodeToString(sig)}},
		},
	})
}

// signMessage signs msg: ECDSA over its SHA-256 (ASN.1 signature), Ed25519
// over the message itself, as Sigstore verifiers expect.
func signMessage(key crypto.Signer, msg []byte) ([]byte, error) {
	if err := checkKeyType(key.Public()); err != nil {
		return nil, err
	}
	if _, ok := key.Public().(ed25519.PublicKey); ok {
		return key.Sign(rand.Reader, msg, crypto.Hash(0))
	}
	sum := sha256.Sum256(msg)
	return key.Sign(rand.Reader, sum[:], crypto.SHA256)
}

// verifyMessage checks sig over msg with pub (see signMessage).
func verifyMessage(pub crypto.PublicKey, msg, sig []byte) bool {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		sum := sha256.Sum256(msg)
		return ecdsa.VerifyASN1(k, sum[:], sig)
	case ed25519.PublicKey:
		return ed25519.Verify(k, msg, sig)
	}
	return false
}

// VerifyBundle checks that bundle (JSON) is a Sigstore bundle whose DSSE
// envelope is signed by one of keys and whose in-toto statement is an
// image signature with digest ("sha256:<hex>") among its subjects. It
// returns the verified statement.
func VerifyBundle(bundle []byte, keys []crypto.PublicKey, digest string) (*Statement, error) {
	want, err := splitDigest(digest)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, errors.New("no trusted public keys given (pass --key K.pub)")
	}
	var b Bundle
	if err := json.Unmarshal(bundle, &b); err != nil {
		return nil, fmt.Errorf("parse Sigstore bundle: %w", err)
	}
	if b.MediaType != BundleMediaType && b.MediaType != "application/vnd.dev.sigstore.bundle+json;version=0.3" {
		return nil, fmt.Errorf("bundle media type %q: want %s", b.MediaType, BundleMediaType)
	}
	if b.DSSEEnvelope == nil {
		if len(b.MessageSignature) > 0 {
			return nil, errors.New("bundle holds a messageSignature (a blob signature), not a DSSE envelope over a statement naming the artifact")
		}
		return nil, errors.New("bundle has no dsseEnvelope")
	}
	env := b.DSSEEnvelope
	if env.PayloadType != InTotoPayloadType {
		return nil, fmt.Errorf("DSSE payloadType %q: want %s", env.PayloadType, InTotoPayloadType)
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return nil, fmt.Errorf("DSSE payload: %w", err)
	}
	if !envelopeVerifies(env, payload, keys) {
		return nil, ErrBadSignature
	}
	var st Statement
	if err := json.Unmarshal(payload, &st); err != nil {
		return nil, fmt.Errorf("signed in-toto statement: %w", err)
	}
	if st.Type != StatementType {
		return nil, fmt.Errorf("statement _type %q: want %s", st.Type, StatementType)
	}
	if st.PredicateType != PredicateType {
		return nil, fmt.Errorf("statement predicateType %q: want %s (an image signature, not an attestation)", st.PredicateType, PredicateType)
	}
	for _, s := range st.Subject {
		if strings.EqualFold(s.Digest["sha256"], want) {
			return &st, nil
		}
	}
	return nil, fmt.Errorf("%w: want %s", ErrWrongSubject, digest)
}

// envelopeVerifies reports whether any signature of env verifies with any key.
func envelopeVerifies(env *Envelope, payload []byte, keys []crypto.PublicKey) bool {
	msg := PAE(env.PayloadType, payload)
	for _, s := range env.Signatures {
		sig, err := base64.StdEncoding.DecodeString(s.Sig)
		if err != nil {
			continue
		}
		for _, k := range keys {
			if verifyMessage(k, msg, sig) {
				return true
			}
		}
	}
	return false
}
