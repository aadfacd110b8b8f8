package registry

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/sysext-bakery/bakery/sign"
)

// ErrNoSignature means a manifest has no signature by a trusted key.
var ErrNoSignature = errors.New("no valid signature by a trusted key")

// maxBundleSize bounds how much of a referrer's bundle blob is read.
const maxBundleSize = 1 << 20

// emptyJSON is the content of the OCI empty descriptor.
var emptyJSON = []byte("{}")

// signManifest signs subject (an index or manifest in repo) with the
// claims that say what it is, and pushes the Sigstore bundle as its
// referrer; go-containerregistry maintains the sha256-<hex> fallback tag on
// registries without the referrers API. It returns the referrer's digest.
func signManifest(ctx context.Context, repo name.Repository, subject v1.Descriptor, claims sign.Claims, o *options) (v1.Hash, error) {
	bundle, err := sign.Sign(o.signer, repo.Name(), subject.Digest.String(), claims)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("sign %s@%s: %w", repo.Name(), subject.Digest, err)
	}
	return pushBundle(ctx, repo, subject, bundle, o)
}

// pushBundle pushes a Sigstore bundle as a referrer of subject.
func pushBundle(ctx context.Context, repo name.Repository, subject v1.Descriptor, bundle []byte, o *options) (v1.Hash, error) {
	emptyLayer := static.NewLayer(emptyJSON, emptyMediaType)
	bundleLayer := static.NewLayer(bundle, sign.BundleMediaType)
	for _, l := range []v1.Layer{emptyLayer, bundleLayer} {
		if err := remote.WriteLayer(repo, l, o.remoteOptions(ctx)...); err != nil {
			return v1.Hash{}, fmt.Errorf("push signature of %s@%s: %w", repo.Name(), subject.Digest, err)
		}
	}
	emptyDigest, _ := emptyLayer.Digest()
	bundleDigest, _ := bundleLayer.Digest()
	subj := v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
	m, err := newRawManifest(v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  sign.BundleMediaType,
		Config:        v1.Descriptor{MediaType: emptyMediaType, Digest: emptyDigest, Size: int64(len(emptyJSON))},
		Layers:        []v1.Descriptor{{MediaType: sign.BundleMediaType, Digest: bundleDigest, Size: int64(len(bundle))}},
		Subject:       &subj,
		Annotations: map[string]string{
			"dev.sigstore.bundle.content":       "dsse-envelope",
			"dev.sigstore.bundle.predicateType": sign.PredicateType,
			AnnotationCreated:                   time.Now().UTC().Format(time.RFC3339),
		},
	}, types.OCIManifestSchema1)
	if err != nil {
		return v1.Hash{}, err
	}
	d := m.descriptor().Digest
	if err := remote.Put(repo.Digest(d.String()), m, o.remoteOptions(ctx)...); err != nil {
		return v1.Hash{}, fmt.Errorf("push signature of %s@%s: %w", repo.Name(), subject.Digest, err)
	}
	return d, nil
}

// signature is a verified signature of a manifest: the referrer holding
// it and what verified.
type signature struct {
	referrer v1.Hash
	*sign.Verified
}

// verifySignature finds a referrer of digest in repo holding a Sigstore
// bundle that one of o.keys verifies for digest and whose claims (when it
// has any: a plain cosign signature has none) are want. Every candidate's
// failure is reported when none verifies.
func verifySignature(ctx context.Context, repo name.Repository, digest v1.Hash, want sign.Claims, o *options) (*signature, error) {
	ropts := o.remoteOptions(ctx)
	idx, err := remote.Referrers(repo.Digest(digest.String()), ropts...)
	if err != nil {
		return nil, fmt.Errorf("list signatures of %s@%s: %w", repo.Name(), digest, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("list signatures of %s@%s: %w", repo.Name(), digest, err)
	}
	var errs []error
	substituted := false
	for i := len(im.Manifests) - 1; i >= 0 && i >= len(im.Manifests)-maxSignatureCandidates; i-- { // newest referrers last in fallback indexes
		d := im.Manifests[i]
		if !maybeBundle(d) {
			continue
		}
		v, err := checkBundleReferrer(repo, d.Digest, digest, o.keys, ropts)
		if err == nil && v.Claims != nil {
			err = v.Claims.Check(want)
		}
		if err != nil {
			substituted = substituted || errors.Is(err, sign.ErrWrongClaims)
			errs = append(errs, fmt.Errorf("signature %s: %w", d.Digest, err))
			continue
		}
		return &signature{referrer: d.Digest, Verified: v}, nil
	}
	switch {
	case len(errs) == 0:
		return nil, fmt.Errorf("%s@%s: %w: it has no signature (push it with --key)", repo.Name(), digest, ErrNoSignature)
	case substituted:
		return nil, fmt.Errorf("%s@%s: %w: %w", repo.Name(), digest, ErrSubstituted, errors.Join(errs...))
	}
	return nil, fmt.Errorf("%s@%s: %w: %w", repo.Name(), digest, ErrNoSignature, errors.Join(errs...))
}

// maxSignatureCandidates bounds how many referrers are tried, newest
// first: a registry could list thousands to make a verifier fetch them all.
const maxSignatureCandidates = 16

// maybeBundle tells referrers that may carry a Sigstore bundle. Some
// registries (go-containerregistry's) list a referrer's config media type
// as its artifactType, so the empty config's type is a candidate too.
func maybeBundle(d v1.Descriptor) bool {
	return d.ArtifactType == sign.BundleMediaType || d.ArtifactType == string(emptyMediaType) || d.ArtifactType == ""
}

// checkBundleReferrer fetches one signature referrer and verifies its
// bundle for subject.
func checkBundleReferrer(repo name.Repository, ref, subject v1.Hash, keys []crypto.PublicKey, ropts []remote.Option) (*sign.Verified, error) {
	img, err := remote.Image(repo.Digest(ref.String()), ropts...)
	if err != nil {
		return nil, err
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	if m.Subject == nil || m.Subject.Digest != subject {
		return nil, fmt.Errorf("referrer's subject is not %s", subject)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != sign.BundleMediaType || m.Layers[0].Size > maxBundleSize {
		return nil, fmt.Errorf("want one %s layer of at most %d bytes", sign.BundleMediaType, maxBundleSize)
	}
	l, err := img.LayerByDigest(m.Layers[0].Digest)
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxBundleSize+1))
	if err != nil {
		return nil, err
	}
	return sign.VerifyBundle(data, keys, subject.String())
}
