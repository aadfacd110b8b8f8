package sources

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/sysext-bakery/bakery/internal/atomicfile"
	"github.com/sysext-bakery/bakery/internal/download"
	"github.com/sysext-bakery/bakery/recipes"
	"github.com/sysext-bakery/bakery/stage"
)

// maxOCIDocument bounds an image index, manifest or config: real ones are
// a few KiB.
const maxOCIDocument = 4 << 20

// ociLayerTypes are the layer media types an oci source unpacks: tar,
// tar+gzip and tar+zstd, in their OCI and Docker spellings. Foreign
// (non-distributable) layers, whose content lives elsewhere, are refused.
var ociLayerTypes = []types.MediaType{
	types.OCILayer, types.OCILayerZStd, types.OCIUncompressedLayer,
	types.DockerLayer, types.DockerUncompressedLayer,
}

// ociSource is the files of a container image pinned by digest: the
// image for the build's platform (linux/GOARCH), chosen from an index
// when the digest names one, its layers applied in order with whiteouts.
// Every document and layer is verified against its digest and kept in
// the cache, so a rebuild makes no request at all.
type ociSource struct {
	f      *Fetcher
	src    recipes.BuildSource
	pinned v1.Hash     // the digest the recipe names
	from   name.Digest // where it is fetched from: the recipe's reference, mirrored
	layers []string    // the cached layer blobs, lowest first, once fetched
}

// openOCI opens an oci source, applying the Fetcher's mirrors to the
// reference's registry prefix (a mirror TO starting with http:// names a
// plain-http registry).
func openOCI(f *Fetcher, _ string, src recipes.BuildSource) (Source, error) {
	ref, err := name.NewDigest(src.OCI, name.StrictValidation)
	if err != nil {
		return nil, keyErr("oci", fmt.Errorf("%q: %w", src.OCI, err))
	}
	pinned, err := v1.NewHash(ref.DigestStr())
	if err == nil && pinned.Algorithm != "sha256" {
		err = fmt.Errorf("digest algorithm %s: pin the image by its sha256 digest", pinned.Algorithm)
	}
	if err != nil {
		return nil, keyErr("oci", fmt.Errorf("%s: %w", src.OCI, err))
	}
	s := &ociSource{f: f, src: src, pinned: pinned, from: ref}
	if m, ok := f.mirror(src.OCI); ok {
		var opts []name.Option
		if plain, ok := strings.CutPrefix(m, "http://"); ok {
			m, opts = plain, []name.Option{name.Insecure}
		}
		s.from, err = name.NewDigest(m, opts...)
		if err == nil && s.from.DigestStr() != ref.DigestStr() {
			err = errors.New("the digest changed")
		}
		if err != nil {
			return nil, keyErr("oci", fmt.Errorf("--mirror turns %s into %q, not a reference to the same digest (%v): a mirror of an image reference replaces its registry prefix, e.g. registry.example/=127.0.0.1:5000/", src.OCI, m, err))
		}
	}
	return s, nil
}

// Resolve is the pinned digest: nothing is fetched.
func (s *ociSource) Resolve(context.Context) (v1.Hash, error) { return s.pinned, nil }

// Fetch brings the image's manifest, config and layers for the build's
// platform into the cache, unless they are there, checking each against
// its digest.
func (s *ociSource) Fetch(ctx context.Context) error {
	want := v1.Platform{OS: "linux", Architecture: s.src.GoArch}
	opts := s.f.remoteOptions(ctx)
	puller, err := remote.NewPuller(opts...) // one ping and token for every request
	if err != nil {
		return keyErr("oci", err)
	}
	opts = append(opts, remote.Reuse(puller))
	doc, err := s.document(ctx, s.pinned, opts)
	if err != nil {
		return keyErr("oci", err)
	}
	pinnedIndex := doc.isIndex()
	if pinnedIndex {
		d, err := doc.platform(want)
		if err != nil {
			return keyErr("oci", fmt.Errorf("%s: %w", s.src.OCI, err))
		}
		if d.Size > maxOCIDocument {
			return keyErr("oci", fmt.Errorf("%s: the %s manifest has %d bytes, more than the %d bakery reads", s.src.OCI, want, d.Size, maxOCIDocument))
		}
		if doc, err = s.document(ctx, d.Digest, opts); err != nil {
			return keyErr("oci", err)
		}
	}
	if !doc.isImage() {
		return keyErr("oci", fmt.Errorf("%s: %s is neither an image index nor an image manifest (media type %q); pin a container image", s.src.OCI, doc.digest, doc.MediaType))
	}
	if err := s.checkConfig(ctx, doc, want, pinnedIndex, opts); err != nil {
		return keyErr("oci", err)
	}
	paths, err := s.fetchLayers(ctx, doc, opts)
	if err != nil {
		return keyErr("oci", err)
	}
	s.layers = paths
	return nil
}

// checkConfig refuses an image whose config names another platform than
// want: a digest pinning a single image must be for the build's arch.
func (s *ociSource) checkConfig(ctx context.Context, m *ociDocument, want v1.Platform, pinnedIndex bool, opts []remote.Option) error {
	if m.Config.Size > maxOCIDocument {
		return fmt.Errorf("%s: config of %d bytes, more than the %d bakery reads", s.src.OCI, m.Config.Size, maxOCIDocument)
	}
	p, err := s.blob(ctx, m.Config, opts)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	var cfg v1.ConfigFile
	if err := json.Unmarshal(data, &cfg); err != nil {
		return fmt.Errorf("%s: config %s: %w", s.src.OCI, m.Config.Digest, err)
	}
	if have := (v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture}); !have.Satisfies(want) {
		fix := "pin the image index (the multi-platform digest) instead, or leave the arch out of the recipe's arches"
		if pinnedIndex {
			fix = "the index's platform entry does not match its image; use another image"
		}
		return fmt.Errorf("%s: the image is for %s, the build for %s: %s", s.src.OCI, have, want, fix)
	}
	return nil
}

// fetchLayers fetches the layers of manifest m into the cache and returns
// their paths, lowest first, after checking their number, types and sizes.
func (s *ociSource) fetchLayers(ctx context.Context, m *ociDocument, opts []remote.Option) ([]string, error) {
	switch {
	case len(m.Layers) == 0:
		return nil, fmt.Errorf("%s: the image has no layers", s.src.OCI)
	case len(m.Layers) > stage.MaxLayers:
		return nil, fmt.Errorf("%s: %d layers, more than the %d bakery applies", s.src.OCI, len(m.Layers), stage.MaxLayers)
	}
	var total int64
	for i, l := range m.Layers {
		if !slices.Contains(ociLayerTypes, l.MediaType) {
			return nil, fmt.Errorf("%s: layer %d has media type %q; bakery unpacks tar, tar+gzip and tar+zstd layers (foreign layers, whose content lives elsewhere, are refused)", s.src.OCI, i+1, l.MediaType)
		}
		if total += l.Size; l.Size < 0 || total > s.f.maxSize() {
			return nil, &errTooLarge{Max: s.f.maxSize(), Declared: total, Advice: "if the image really is that large, raise bake --max-source-size"}
		}
	}
	paths := make([]string, len(m.Layers))
	for i, l := range m.Layers {
		p, err := s.blob(ctx, l, opts)
		if err != nil {
			return nil, fmt.Errorf("layer %d of %d: %w", i+1, len(m.Layers), err)
		}
		paths[i] = p
	}
	return paths, nil
}

// Stage applies the layers into root: whiteouts remove what lower layers
// wrote, then extract's include, strip-components and to apply.
func (s *ociSource) Stage(ctx context.Context, root *os.Root, maxEntries int) error {
	files := make([]*os.File, 0, len(s.layers))
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for _, p := range s.layers {
		f, err := os.Open(p)
		if err != nil {
			return keyErr("oci", err)
		}
		files = append(files, f)
	}
	x := s.src.Extract
	_, err := stage.Layers(ctx, root, files, stage.Options{
		Origin:          fmt.Sprintf("%s (linux/%s)", s.src.OCI, s.src.GoArch),
		MaxEntries:      maxEntries,
		StripComponents: x.StripComponents,
		Include:         x.Include,
		To:              x.To,
		Mode:            x.Mode,
	})
	return keyErr("extract", err)
}

// ociDocument is an image index or an image manifest, as far as bakery
// reads them.
type ociDocument struct {
	digest    v1.Hash
	MediaType types.MediaType `json:"mediaType"`
	Manifests []v1.Descriptor `json:"manifests"`
	Config    v1.Descriptor   `json:"config"`
	Layers    []v1.Descriptor `json:"layers"`
}

// isIndex tells an image index (or Docker manifest list), by its media
// type or, where the optional mediaType is missing, by its fields.
func (d *ociDocument) isIndex() bool {
	return d.MediaType.IsIndex() || d.MediaType == "" && d.Manifests != nil
}

// isImage tells an image manifest the same way.
func (d *ociDocument) isImage() bool {
	return d.MediaType.IsImage() || d.MediaType == "" && d.Manifests == nil && d.Config.Digest.Hex != ""
}

// platform picks the index's first image manifest for want, as
// go-containerregistry's remote.Image does with remote.WithPlatform.
func (d *ociDocument) platform(want v1.Platform) (v1.Descriptor, error) {
	var have []string
	for _, m := range d.Manifests {
		if m.Platform == nil || !m.MediaType.IsImage() {
			continue
		}
		if m.Platform.Satisfies(want) {
			return m, nil
		}
		have = append(have, m.Platform.String())
	}
	list := "no image with a platform"
	if len(have) > 0 {
		list = strings.Join(have, ", ")
	}
	return v1.Descriptor{}, fmt.Errorf("the image index has no image for %s (it has %s): drop the arch from the recipe's arches, or use an image built for it", want, list)
}

// document returns the index or manifest with digest d, from the cache
// or, verified, from the registry.
func (s *ociSource) document(ctx context.Context, d v1.Hash, opts []remote.Option) (*ociDocument, error) {
	path := s.f.Cache.blob(d.Hex)
	raw, err := readBounded(path, maxOCIDocument)
	if err != nil || !hasDigest(raw, d) {
		desc, err := remote.Get(s.from.Context().Digest(d.String()), opts...)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.from.Context().Digest(d.String()), err)
		}
		if raw = desc.Manifest; len(raw) > maxOCIDocument {
			return nil, fmt.Errorf("%s: manifest of %d bytes, more than the %d bakery reads", d, len(raw), maxOCIDocument)
		}
		if !hasDigest(raw, d) {
			return nil, fmt.Errorf("%s: %w: the registry's manifest is not the one pinned", s.from.Context().Digest(d.String()), ErrDigestMismatch)
		}
		if err := atomicfile.WriteFile(path, raw, 0o644); err != nil {
			return nil, fmt.Errorf("cache: %w", err)
		}
	}
	doc := &ociDocument{digest: d}
	if err := json.Unmarshal(raw, doc); err != nil {
		return nil, fmt.Errorf("%s: manifest %s: %w", s.src.OCI, d, err)
	}
	return doc, nil
}

// blob returns the cached copy of the blob d describes, downloading it
// unless it is there: exactly d.Size bytes with d.Digest.
func (s *ociSource) blob(ctx context.Context, d v1.Descriptor, opts []remote.Option) (string, error) {
	if d.Digest.Algorithm != "sha256" {
		return "", fmt.Errorf("%s: blob digest %s: only sha256 is supported", s.src.OCI, d.Digest)
	}
	path := s.f.Cache.blob(d.Digest.Hex)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	ref := s.from.Context().Digest(d.Digest.String())
	l, err := remote.Layer(ref, opts...)
	if err != nil {
		return "", fmt.Errorf("%s: %w", ref, err)
	}
	body, err := l.Compressed()
	if err != nil {
		return "", fmt.Errorf("%s: %w", ref, err)
	}
	defer body.Close()
	tmp, err := atomicfile.Create(path)
	if err != nil {
		return "", fmt.Errorf("cache: %w", err)
	}
	defer tmp.Abort()
	// Exactly the declared size is read and hashed here (go-containerregistry
	// would check the digest only at the end of the stream).
	sum := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(tmp.File, sum), download.ContextReader(ctx, body), d.Size); err != nil {
		return "", fmt.Errorf("%s: %w", ref, err)
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != d.Digest.Hex {
		return "", fmt.Errorf("%s: %w: the registry sent content with sha256:%s; the image is corrupt or was tampered with", ref, ErrDigestMismatch, got)
	}
	if err := tmp.Commit(0o644); err != nil {
		return "", fmt.Errorf("cache: %w", err)
	}
	return path, nil
}

// hasDigest tells whether data has digest d.
func hasDigest(data []byte, d v1.Hash) bool {
	h, _, err := v1.SHA256(bytes.NewReader(data))
	return err == nil && h == d
}

// readBounded reads the file at path if it has at most limit bytes.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err == nil && int64(len(data)) > limit {
		err = fmt.Errorf("%s: more than %d bytes", path, limit)
	}
	return data, err
}
