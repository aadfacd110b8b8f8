// Package pgp makes OpenPGP keys and detached signatures: the
// SHA256SUMS.gpg of a release directory, which systemd-sysupdate checks
// with gpg against the node's keyring (/etc/systemd/import-pubring.gpg).
//
// Keys are OpenPGP v4 with an EdDSA (Ed25519) primary key, which gpg 2.2
// and later verify. Private keys are ASCII-armored and not encrypted, like
// bakery's PEM keys; public keys are read armored or binary and written in
// both forms, since gpg reads a --keyring only in binary.
package pgp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/sysext-bakery/bakery/internal/atomicfile"
)

// maxKeySize bounds what is read as a key or keyring file.
const maxKeySize = 1 << 20

// PrivateKey is an OpenPGP signing key.
type PrivateKey struct {
	entity *openpgp.Entity
}

// Generate makes a new signing key whose user ID is name (no "()<>"),
// created at created.
func Generate(name string, created time.Time) (*PrivateKey, error) {
	cfg := &packet.Config{
		Algorithm: packet.PubKeyAlgoEdDSA,
		Time:      func() time.Time { return created },
	}
	e, err := openpgp.NewEntity(name, "", "", cfg)
	if err != nil {
		return nil, fmt.Errorf("generate OpenPGP key: %w", err)
	}
	return &PrivateKey{entity: e}, nil
}

// ParsePrivateKey reads one armored or binary OpenPGP private key, as
// written by bakery keygen --gpg or gpg --export-secret-keys. A key
// protected by a passphrase is refused: bakery signs unattended.
func ParsePrivateKey(data []byte) (*PrivateKey, error) {
	list, err := readEntities(data)
	if err != nil {
		return nil, err
	}
	if len(list) != 1 {
		return nil, fmt.Errorf("holds %d keys: give a file with one OpenPGP private key", len(list))
	}
	e := list[0]
	if e.PrivateKey == nil {
		return nil, errors.New("is an OpenPGP public key: give the private key (PREFIX.key of bakery keygen --gpg)")
	}
	if e.PrivateKey.Encrypted {
		return nil, errors.New("is protected by a passphrase: export it without one (gpg --export-secret-keys after gpg --passwd with an empty passphrase), or make one with bakery keygen --gpg")
	}
	if _, ok := e.SigningKey(time.Now()); !ok {
		return nil, errors.New("has no usable signing key (expired or revoked?)")
	}
	return &PrivateKey{entity: e}, nil
}

// LoadPrivateKey reads a private key file.
func LoadPrivateKey(path string) (*PrivateKey, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("read OpenPGP private key: %w", err)
	}
	k, err := ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("OpenPGP private key %s: %w", path, err)
	}
	return k, nil
}

// Fingerprint is the key's fingerprint in upper-case hex, as gpg shows it.
func (k *PrivateKey) Fingerprint() string {
	return fmt.Sprintf("%X", k.entity.PrimaryKey.Fingerprint)
}

// Created is when the key was made; no signature of it may be older.
func (k *PrivateKey) Created() time.Time { return k.entity.PrimaryKey.CreationTime }

// Public is the key's public half, as a keyring of one key.
func (k *PrivateKey) Public() Keyring {
	return Keyring{entities: openpgp.EntityList{k.entity}}
}

// MarshalArmored encodes the private key ASCII-armored.
func (k *PrivateKey) MarshalArmored() ([]byte, error) {
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PrivateKeyType, nil)
	if err != nil {
		return nil, err
	}
	if err := k.entity.SerializePrivateWithoutSigning(w, nil); err != nil {
		return nil, fmt.Errorf("encode OpenPGP private key: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Sign makes a binary detached signature of msg (what gpg --detach-sign
// writes), dated at; a date before the key was made is moved to the key's
// creation, since gpg refuses a signature older than its key. Signatures
// carry a random salt (go-crypto's default, which keeps a fault during
// signing from leaking the Ed25519 key), so two signatures of the same
// message differ; callers that want a stable directory keep a signature
// that still verifies.
func (k *PrivateKey) Sign(msg []byte, at time.Time) ([]byte, error) {
	if at.Before(k.Created()) {
		at = k.Created()
	}
	var b bytes.Buffer
	cfg := &packet.Config{Time: func() time.Time { return at }}
	if err := openpgp.DetachSign(&b, k.entity, bytes.NewReader(msg), cfg); err != nil {
		return nil, fmt.Errorf("OpenPGP signature: %w", err)
	}
	return b.Bytes(), nil
}

// Keyring is a set of OpenPGP public keys.
type Keyring struct {
	entities openpgp.EntityList
}

// ParseKeyring reads armored or binary OpenPGP public keys. Private key
// material is refused, so that a private key given by mistake is never
// copied into a node's configuration.
func ParseKeyring(data []byte) (Keyring, error) {
	list, err := readEntities(data)
	if err != nil {
		return Keyring{}, err
	}
	if len(list) == 0 {
		return Keyring{}, errors.New("holds no OpenPGP public key")
	}
	for _, e := range list {
		if e.PrivateKey != nil {
			return Keyring{}, errors.New("holds an OpenPGP private key: give the public key (PREFIX.pub of bakery keygen --gpg)")
		}
	}
	return Keyring{entities: list}, nil
}

// LoadKeyring reads a public key or keyring file.
func LoadKeyring(path string) (Keyring, error) {
	data, err := readFile(path)
	if err != nil {
		return Keyring{}, fmt.Errorf("read OpenPGP public key: %w", err)
	}
	k, err := ParseKeyring(data)
	if err != nil {
		return Keyring{}, fmt.Errorf("OpenPGP public key %s: %w", path, err)
	}
	return k, nil
}

// Fingerprints lists the keys' fingerprints, as gpg shows them.
func (kr Keyring) Fingerprints() []string {
	out := make([]string, len(kr.entities))
	for i, e := range kr.entities {
		out[i] = fmt.Sprintf("%X", e.PrimaryKey.Fingerprint)
	}
	return out
}

// Binary encodes the public keys as a binary keyring: what gpg --keyring
// reads, and so what /etc/systemd/import-pubring.gpg must hold.
func (kr Keyring) Binary() ([]byte, error) {
	var b bytes.Buffer
	for _, e := range kr.entities {
		if err := e.Serialize(&b); err != nil {
			return nil, fmt.Errorf("encode OpenPGP public key: %w", err)
		}
	}
	return b.Bytes(), nil
}

// Armored encodes the public keys ASCII-armored, for gpg --import and for
// publishing.
func (kr Keyring) Armored() ([]byte, error) {
	bin, err := kr.Binary()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PublicKeyType, nil)
	if err != nil {
		return nil, err
	}
	w.Write(bin)
	if err := w.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Verify checks a binary or armored detached signature of msg by one of
// the keys and returns that key's fingerprint.
func (kr Keyring) Verify(msg, sig []byte) (string, error) {
	if block, err := armor.Decode(bytes.NewReader(sig)); err == nil {
		if sig, err = io.ReadAll(block.Body); err != nil {
			return "", fmt.Errorf("signature: %w", err)
		}
	}
	signer, err := openpgp.CheckDetachedSignature(kr.entities, bytes.NewReader(msg), bytes.NewReader(sig), nil)
	if err != nil {
		return "", fmt.Errorf("no valid OpenPGP signature by the trusted keys (%s): %w", strings.Join(kr.Fingerprints(), ", "), err)
	}
	return fmt.Sprintf("%X", signer.PrimaryKey.Fingerprint), nil
}

// WriteKeyFiles writes PREFIX.key (the private key, armored, mode 0600),
// PREFIX.pub (the public key, armored) and PREFIX.pubring.gpg (the public
// key as a binary keyring: a node's /etc/systemd/import-pubring.gpg as is).
// Each file is written whole or not at all; an existing PREFIX.key is never
// overwritten.
func WriteKeyFiles(prefix string, k *PrivateKey) (keyPath, pubPath, keyringPath string, err error) {
	priv, err := k.MarshalArmored()
	if err != nil {
		return "", "", "", err
	}
	pub, err := k.Public().Armored()
	if err != nil {
		return "", "", "", err
	}
	ring, err := k.Public().Binary()
	if err != nil {
		return "", "", "", err
	}
	keyPath, pubPath, keyringPath = prefix+".key", prefix+".pub", prefix+".pubring.gpg"
	if _, err := os.Lstat(keyPath); err == nil {
		return "", "", "", fmt.Errorf("%s already exists: remove it or choose another --out prefix", keyPath)
	}
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{keyPath, priv, 0o600}, {pubPath, pub, 0o644}, {keyringPath, ring, 0o644}} {
		if err := atomicfile.WriteFile(f.path, f.data, f.mode); err != nil {
			return "", "", "", err
		}
	}
	return keyPath, pubPath, keyringPath, nil
}

// readEntities reads armored or binary OpenPGP keys.
func readEntities(data []byte) (openpgp.EntityList, error) {
	if block, err := armor.Decode(bytes.NewReader(data)); err == nil {
		if block.Type != openpgp.PublicKeyType && block.Type != openpgp.PrivateKeyType {
			return nil, fmt.Errorf("holds %q, not an OpenPGP key (make one with bakery keygen --gpg)", block.Type)
		}
		list, err := openpgp.ReadKeyRing(block.Body)
		if err != nil {
			return nil, fmt.Errorf("not an OpenPGP key: %w", err)
		}
		return list, nil
	}
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN")) {
		return nil, errors.New("is PEM, not an OpenPGP key: make one with bakery keygen --gpg")
	}
	list, err := openpgp.ReadKeyRing(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("not an OpenPGP key: %w", err)
	}
	return list, nil
}

// readFile reads at most maxKeySize bytes of a regular file.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeySize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxKeySize {
		return nil, fmt.Errorf("%s: larger than %d bytes, not a key", path, maxKeySize)
	}
	return data, nil
}
