package main

import (
	"context"
	"os"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/sysext-bakery/bakery/sign"
	"github.com/sysext-bakery/bakery/sign/pgp"
)

func keygenCommand() *cli.Command {
	return &cli.Command{
		Name:  "keygen",
		Usage: "make a signing key pair: PREFIX.key (private, 0600) and PREFIX.pub",
		Description: `Keys are PEM: PKCS#8 private, PKIX public (what cosign verify --key reads).
With --x509 a self-signed certificate PREFIX.crt is written too (ten years, no
extended key usage, as mkosi genkey makes it), for signing dm-verity root hashes
(bake --format ddi --key PREFIX.key --cert PREFIX.crt); nodes trust it in
/etc/verity.d/PREFIX.crt. --x509 needs ecdsa-p256: the kernel and systemd check
PKCS#7 signatures by RSA and ECDSA keys, not Ed25519. The same key signs
pushes (push --key PREFIX.key).

With --gpg the pair is OpenPGP instead (Ed25519), for signing release
directories (bakery release --gpg-key PREFIX.key): PREFIX.key and PREFIX.pub
are ASCII-armored, and PREFIX.pubring.gpg holds the public key as the binary
keyring gpg and so systemd-sysupdate read: a node's
/etc/systemd/import-pubring.gpg as is.

Examples:
  bakery keygen --out bakery
  bakery keygen --out release --algorithm ed25519 --json
  bakery keygen --out release --gpg
  bakery keygen --out release --x509`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Usage: "path prefix of the files to write", Required: true},
			&cli.StringFlag{Name: "algorithm", Value: string(sign.ECDSAP256), Usage: "ecdsa-p256 or ed25519"},
			&cli.BoolFlag{Name: "x509", Usage: "also write a self-signed certificate PREFIX.crt"},
			&cli.BoolFlag{Name: "gpg", Usage: "make an OpenPGP key pair (and PREFIX.pubring.gpg) for signing release directories"},
			jsonFlag,
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.NArg() != 0 {
				return usagef("keygen takes no arguments, only --out PREFIX (see bakery keygen --help)")
			}
			if cmd.Bool("gpg") {
				return keygenGPG(cmd)
			}
			alg := sign.Algorithm(cmd.String("algorithm"))
			if alg != sign.ECDSAP256 && alg != sign.Ed25519 {
				return usagef("--algorithm %q: use ecdsa-p256 or ed25519", alg)
			}
			if cmd.Bool("x509") && alg != sign.ECDSAP256 {
				return usagef("--x509 --algorithm %s: certificates for dm-verity signatures need ecdsa-p256 (the kernel and systemd do not check Ed25519 PKCS#7 signatures)", alg)
			}
			key, err := sign.GenerateKey(alg)
			if err != nil {
				return err
			}
			prefix := cmd.String("out")
			res := struct {
				Key         string `json:"key"`
				Public      string `json:"public"`
				Certificate string `json:"certificate,omitempty"`
				Algorithm   string `json:"algorithm"`
			}{Algorithm: string(alg)}
			if res.Key, res.Public, err = sign.WriteKeyPair(prefix, key); err != nil {
				return err
			}
			if cmd.Bool("x509") {
				if res.Certificate, err = sign.WriteSelfSignedCert(prefix+".crt", key, "bakery"); err != nil {
					return err
				}
			}
			if cmd.Bool("json") {
				return printJSON(os.Stdout, res)
			}
			stderrf("wrote %s (keep it secret) and %s\n", res.Key, res.Public)
			if res.Certificate != "" {
				stderrf("wrote %s\n", res.Certificate)
			}
			return nil
		},
	}
}

// keygenGPG writes an OpenPGP key pair and its binary keyring.
func keygenGPG(cmd *cli.Command) error {
	if cmd.Bool("x509") || cmd.IsSet("algorithm") {
		return usagef("--gpg makes an Ed25519 OpenPGP key: it takes neither --x509 nor --algorithm")
	}
	key, err := pgp.Generate("bakery release signing key", time.Now())
	if err != nil {
		return err
	}
	res := struct {
		Key         string `json:"key"`
		Public      string `json:"public"`
		Keyring     string `json:"keyring"`
		Fingerprint string `json:"fingerprint"`
	}{Fingerprint: key.Fingerprint()}
	if res.Key, res.Public, res.Keyring, err = pgp.WriteKeyFiles(cmd.String("out"), key); err != nil {
		return err
	}
	if cmd.Bool("json") {
		return printJSON(os.Stdout, res)
	}
	stderrf("wrote %s (keep it secret), %s and %s (install as /etc/systemd/import-pubring.gpg on nodes)\nfingerprint %s\n", res.Key, res.Public, res.Keyring, res.Fingerprint)
	return nil
}
