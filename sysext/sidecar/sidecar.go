// Package sidecar writes the files systemd looks for beside a plain
// (squashfs or erofs) image to protect it with dm-verity, as a DDI's
// partitions do: for NAME.raw, NAME.verity (the hash device, package
// sysext/verity), NAME.roothash (the root hash in hex) and
// NAME.roothash.p7s (its PKCS#7 signature, package sysext/veritysig).
// Installed beside the image on a node, with the certificate in
// /etc/verity.d/, they let systemd-sysext check the image.
package sidecar

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/sysext-bakery/bakery/internal/atomicfile"
	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/verity"
	"github.com/sysext-bakery/bakery/sysext/veritysig"
)

// The suffixes of the sidecar files, in place of an image's ".raw".
const (
	VeritySuffix    = ".verity"
	RootHashSuffix  = ".roothash"
	SignatureSuffix = ".roothash.p7s"
)

// Base is an image path without its ".raw", to which the suffixes are
// added.
func Base(image string) string { return strings.TrimSuffix(image, ".raw") }

// Create computes the hash tree of the image read from r (size bytes, a
// multiple of 4096), signs its root hash with s, and writes the three
// sidecars of the image dst to temporary files beside it, which the
// caller commits with the image, or aborts. It returns them and the root
// hash.
func Create(ctx context.Context, r io.ReaderAt, size int64, dst string, s *sysext.Signing) ([]*atomicfile.File, []byte, error) {
	var files []*atomicfile.File
	fail := func(err error) ([]*atomicfile.File, []byte, error) {
		for _, f := range files {
			f.Abort()
		}
		return nil, nil, fmt.Errorf("sidecars of %s: %w", dst, err)
	}
	create := func(suffix string) (*atomicfile.File, error) {
		f, err := atomicfile.Create(Base(dst) + suffix)
		if err == nil {
			files = append(files, f)
		}
		return f, err
	}
	hash, err := create(VeritySuffix)
	if err != nil {
		return fail(err)
	}
	tree, err := verity.Format(ctx, r, size, hash, verity.Options{})
	if err != nil {
		return fail(err)
	}
	sig, err := veritysig.Sign(tree.RootHash, s.Key, s.Cert)
	if err != nil {
		return fail(err)
	}
	for suffix, data := range map[string][]byte{RootHashSuffix: []byte(hex.EncodeToString(tree.RootHash) + "\n"), SignatureSuffix: sig} {
		f, err := create(suffix)
		if err != nil {
			return fail(err)
		}
		if _, err := f.Write(data); err != nil {
			return fail(err)
		}
	}
	return files, tree.RootHash, nil
}
