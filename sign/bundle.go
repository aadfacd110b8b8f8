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
	// PredicateType marks bakery's statements, whose predicate is Claims.
	PredicateType = "https://github.com/sysext-bakery/bakery/signature/v1"
	// CosignPredicateType marks a plain image signature as cosign sign
	// writes it: it names the digest and nothing else.
	CosignPredicateType = "https://sigstore.dev/cosign/sign/v1"
)

// Errors a verification can be checked against with errors.Is.
var (
	// ErrBadSignature means no trusted key verifies the envelope.
	ErrBadSignature = errors.New("signature does not verify with any trusted key")
	// ErrWrongSubject means the signed statement is about another digest.
	ErrWrongSubject = errors.New("signed statement is about another digest")
	// ErrWrongClaims means the signature is valid but names another
	// artifact (kind, extension or version) than the one asked for.
	ErrWrongClaims = errors.New("signature is for another artifact")
)

// Claims is what a bakery signature says about the digest it signs: which
// artifact it is. A verifier compares them with what it asked for, so that
// a valid signature cannot be moved to another extension, version or kind
// of artifact (copying a signed index and its signature to another
// repository keeps the signature valid, and the claims unchanged).
type Claims struct {
	// Kind is the kind of artifact: "sysext", "confext" or "catalog".
	Kind string `json:"kind"`
	// Name is the extension's name, or the namespace of a catalog.
	Name string `json:"name"`
	// Version is the extension's version, or the sequence number of a
	// catalog.
	Version string `json:"version"`
}

// Check compares c with want, field by field, skipping the fields want
// leaves empty; the error wraps ErrWrongClaims and names the field.
func (c Claims) Check(want Claims) error {
	for _, f := range []struct{ field, got, want string }{
		{"kind", c.Kind, want.Kind}, {"name", c.Name, want.Name}, {"version", c.Version, want.Version},
	} {
		if f.want != "" && f.got != f.want {
			return fmt.Errorf("%w: it is signed as %s %q, not %q", ErrWrongClaims, f.field, f.got, f.want)
		}
	}
	return nil
}

// Verified is a bundle that verified: its statement, the claims it makes
// and the key that signed it.
type Verified struct {
	Statement Statement
	// Claims are the statement's bakery claims; nil for a plain image
	// signature (CosignPredicateType), which names only the digest.
	Claims *Claims
	// KeyHint identifies the trusted key that verified it (see KeyHint).
	KeyHint string
}

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

// Sign signs the statement "digest, known as subjectName, is the artifact
// claims describes" with key and returns the Sigstore bundle as JSON.
// digest is "sha256:<hex>"; claims must name a kind and a name.
func Sign(key crypto.Signer, subjectName, digest string, claims Claims) ([]byte, error) {
	hexPart, err := splitDigest(digest)
	if err != nil {
		return nil, err
	}
	if claims.Kind == "" || claims.Name == "" {
		return nil, errors.New("signature claims need a kind and a name")
	}
	predicate, err := json.Marshal(claims)
	if err != nil {
		return nil, err
	}
	payload, err := json.Marshal(Statement{
		Type:          StatementType,
		Subject:       []Subject{{Name: subjectName, Digest: map[string]string{"sha256": hexPart}}},
		PredicateType: PredicateType,
		Predicate:     predicate,
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
// envelope is signed by one of keys and whose in-toto statement has digest
// ("sha256:<hex>") among its subjects and is either bakery's
// (PredicateType, with Claims naming a kind and a name) or a plain image
// signature (CosignPredicateType). It returns what verified; the caller
// checks the claims against what it asked for (Claims.Check).
func VerifyBundle(bundle []byte, keys []crypto.PublicKey, digest string) (*Verified, error) {
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
	signer := envelopeSigner(env, payload, keys)
	if signer == nil {
		return nil, ErrBadSignature
	}
	v := &Verified{}
	if v.KeyHint, err = KeyHint(signer); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(payload, &v.Statement); err != nil {
		return nil, fmt.Errorf("signed in-toto statement: %w", err)
	}
	st := &v.Statement
	if st.Type != StatementType {
		return nil, fmt.Errorf("statement _type %q: want %s", st.Type, StatementType)
	}
	switch st.PredicateType {
	case PredicateType:
		var c Claims
		if err := json.Unmarshal(st.Predicate, &c); err != nil || c.Kind == "" || c.Name == "" {
			return nil, fmt.Errorf("statement predicate: want bakery claims with a kind and a name (%s)", PredicateType)
		}
		v.Claims = &c
	case CosignPredicateType:
	default:
		return nil, fmt.Errorf("statement predicateType %q: want %s or %s (an image signature, not an attestation)", st.PredicateType, PredicateType, CosignPredicateType)
	}
	for _, s := range st.Subject {
		if strings.EqualFold(s.Digest["sha256"], want) {
			return v, nil
		}
	}
	return nil, fmt.Errorf("%w: want %s", ErrWrongSubject, digest)
}

// envelopeSigner returns the key among keys that verifies a signature of
// env, or nil when none does.
func envelopeSigner(env *Envelope, payload []byte, keys []crypto.PublicKey) crypto.PublicKey {
	msg := PAE(env.PayloadType, payload)
	for _, s := range env.Signatures {
		sig, err := base64.StdEncoding.DecodeString(s.Sig)
		if err != nil {
			continue
		}
		for _, k := range keys {
			if verifyMessage(k, msg, sig) {
				return k
			}
		}
	}
	return nil
}
