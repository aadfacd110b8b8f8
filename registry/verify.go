package registry

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// VerifyResult is the chain Verify checked.
type VerifyResult struct {
	Reference string          `json:"reference"`
	Name      string          `json:"name"`
	Version   string          `json:"version"`
	Digest    string          `json:"digest"` // of the signed index (or manifest)
	Signature string          `json:"signature"`
	Key       string          `json:"key"` // hint of the key that signed (sign.KeyHint)
	Manifests []VerifiedImage `json:"manifests"`
}

// VerifiedImage is one arch's manifest and image whose digests Verify checked.
type VerifiedImage struct {
	Arch           string `json:"arch"`
	ManifestDigest string `json:"manifestDigest"`
	LayerDigest    string `json:"layerDigest"`
	Size           int64  `json:"size"`
}

// Verify checks ref against the trusted keys (WithKeys, required): ref
// holds the extension asked for (WithName, else the repository's last
// path element) at the version its tag names, a signature by a trusted key
// names the index digest and that extension and version, the index's bytes
// have that digest, each manifest and each image blob has the digest its
// parent names. It needs the registry only, no transparency log.
func Verify(ctx context.Context, ref string, opts ...Option) (VerifyResult, error) {
	o := makeOptions(opts)
	if err := o.reuseConnections(ctx); err != nil {
		return VerifyResult{}, err
	}
	if len(o.keys) == 0 {
		return VerifyResult{}, errors.New("verify needs trusted public keys (--key K.pub)")
	}
	r, err := resolveTop(ctx, ref, o)
	if err != nil {
		return VerifyResult{}, err
	}
	ropts := o.remoteOptions(ctx)
	res := VerifyResult{Reference: ref, Name: r.published.name, Version: r.published.version, Digest: r.top.digest.String(),
		Signature: r.signature.referrer.String(), Key: r.signature.KeyHint}
	manifests := []*manifestBlob{r.top}
	if r.index != nil {
		manifests = manifests[:0]
		for _, d := range r.index.Manifests {
			mb, err := fetchManifest(r.repo.Digest(d.Digest.String()), ropts)
			if err != nil {
				return res, err
			}
			manifests = append(manifests, mb)
		}
	}
	for _, mb := range manifests {
		m, err := parseImageManifest(mb)
		if err != nil {
			return res, fmt.Errorf("%s: %w", ref, err)
		}
		if p := publishedAs(m.Annotations); p != r.published {
			return res, fmt.Errorf("%w: %s: manifest %s is %s %s, its index %s %s", ErrSubstituted, ref, mb.digest, p.name, p.version, r.published.name, r.published.version)
		}
		for _, blob := range []v1.Descriptor{m.Config, m.Layers[0]} {
			if err := checkBlob(r.repo, blob, ropts); err != nil {
				return res, fmt.Errorf("%s: manifest %s: %w", ref, mb.digest, err)
			}
		}
		res.Manifests = append(res.Manifests, VerifiedImage{Arch: m.Annotations[AnnotationArchitecture],
			ManifestDigest: mb.digest.String(), LayerDigest: m.Layers[0].Digest.String(), Size: m.Layers[0].Size})
	}
	return res, nil
}

// checkBlob reads blob d of repo and checks its size and sha256.
func checkBlob(repo name.Repository, d v1.Descriptor, ropts []remote.Option) error {
	l, err := remote.Layer(repo.Digest(d.Digest.String()), ropts...)
	if err != nil {
		return fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	defer rc.Close()
	got, n, err := v1.SHA256(rc)
	if err != nil {
		return fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	if got != d.Digest || n != d.Size {
		return fmt.Errorf("blob %s: registry served %d bytes with %s, want %d bytes", d.Digest, n, got, d.Size)
	}
	return nil
}
