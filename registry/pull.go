package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sysext-bakery/bakery/internal/atomicfile"

	"github.com/sysext-bakery/bakery/sysext"
)

// PullResult is what Pull wrote and what it checked.
type PullResult struct {
	Path string `json:"path"`
	// Class is the image class: sysext or confext.
	Class          string `json:"class"`
	Name           string `json:"name"`
	Version        string `json:"version"`
	Arch           string `json:"arch"`
	Digest         string `json:"digest"` // of the image file (the layer)
	Size           int64  `json:"size"`
	ManifestDigest string `json:"manifestDigest"`
	IndexDigest    string `json:"indexDigest"` // "" when ref names a single manifest
	// Verified is true when a trusted key's signature was checked.
	Verified  bool   `json:"verified"`
	Signature string `json:"signature,omitempty"`
	// Key is the hint of the trusted key that signed (sign.KeyHint).
	Key string `json:"key,omitempty"`
	// Unchanged is true when the image had the WithHave digest: nothing
	// was downloaded or written.
	Unchanged bool `json:"unchanged,omitempty"`
}

// manifestBlob is a manifest or index fetched from a registry, checked
// against its digest.
type manifestBlob struct {
	raw    []byte
	mt     types.MediaType
	digest v1.Hash
}

// fetchManifest gets ref and checks its bytes against the digest it was
// asked by (or the digest the registry claims, for a tag).
func fetchManifest(ref name.Reference, ropts []remote.Option) (*manifestBlob, error) {
	d, err := remote.Get(ref, ropts...)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", ref, err)
	}
	h, _, err := v1.SHA256(bytes.NewReader(d.Manifest))
	if err != nil {
		return nil, err
	}
	want := d.Digest
	if dg, ok := ref.(name.Digest); ok {
		if want, err = v1.NewHash(dg.DigestStr()); err != nil {
			return nil, err
		}
	}
	if h != want {
		return nil, fmt.Errorf("get %s: content has digest %s, want %s", ref, h, want)
	}
	return &manifestBlob{raw: d.Manifest, mt: d.MediaType, digest: h}, nil
}

// resolved is a pulled reference down to one arch's manifest.
type resolved struct {
	repo      name.Repository
	top       *manifestBlob // what ref names: an index or a manifest
	index     *v1.IndexManifest
	entry     v1.Descriptor // the chosen index entry (zero without index)
	manifest  *v1.Manifest
	mdigest   v1.Hash
	published published
	signature *signature // nil without keys
}

// resolve fetches ref, checks that it is the extension (and version) asked
// for and, when keys are set, signed for exactly that by a trusted key,
// then picks and fetches the manifest for arch if ref is an index.
func resolve(ctx context.Context, ref string, arch sysext.Arch, o *options) (*resolved, error) {
	res, err := resolveTop(ctx, ref, o)
	if err != nil || res.index == nil {
		return res, err
	}
	if res.entry, err = selectArch(res.index, arch); err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	mb, err := fetchManifest(res.repo.Digest(res.entry.Digest.String()), o.remoteOptions(ctx))
	if err != nil {
		return nil, err
	}
	if res.manifest, err = parseImageManifest(mb); err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	if p := publishedAs(res.manifest.Annotations); p != res.published {
		return nil, fmt.Errorf("%w: %s: manifest %s is %s %s, its index %s %s", ErrSubstituted, ref, mb.digest, p.name, p.version, res.published.name, res.published.version)
	}
	res.mdigest = mb.digest
	return res, nil
}

// resolveTop fetches what ref names (an index or a single manifest),
// checks that it is the extension and version asked for and, with keys,
// that a trusted key signed it as that.
func resolveTop(ctx context.Context, ref string, o *options) (*resolved, error) {
	r, err := name.ParseReference(ref, o.nameOptions()...)
	if err != nil {
		return nil, fmt.Errorf("reference %q: %w (want host[:port]/ns/name:tag or @sha256:…)", ref, err)
	}
	res := &resolved{repo: r.Context()}
	if res.top, err = fetchManifest(r, o.remoteOptions(ctx)); err != nil {
		return nil, err
	}
	if res.top.mt.IsIndex() {
		if res.index, err = v1.ParseIndexManifest(bytes.NewReader(res.top.raw)); err != nil {
			return nil, fmt.Errorf("%s: parse index: %w", ref, err)
		}
		res.published = publishedAs(res.index.Annotations)
		err = checkArtifactType(ref, res.index.ArtifactType, res.published)
	} else {
		if res.manifest, err = parseImageManifest(res.top); err != nil {
			return nil, fmt.Errorf("%s: %w", ref, err)
		}
		res.published, res.mdigest = publishedAs(res.manifest.Annotations), res.top.digest
		err = checkArtifactType(ref, res.manifest.ArtifactType, res.published)
	}
	if err == nil {
		err = expect(r, o).check(ref, res.published)
	}
	if err != nil {
		return nil, err
	}
	if len(o.keys) > 0 {
		if res.signature, err = verifySignature(ctx, res.repo, res.top.digest, res.published.claims(), o); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// selectArch picks the index entry for arch.
func selectArch(idx *v1.IndexManifest, arch sysext.Arch) (v1.Descriptor, error) {
	var have []string
	for _, d := range idx.Manifests {
		if d.Platform == nil {
			continue
		}
		if d.Platform.OS == "linux" && d.Platform.Architecture == arch.GoArch {
			return d, nil
		}
		have = append(have, d.Platform.Architecture)
	}
	return v1.Descriptor{}, fmt.Errorf("no image for %s (%s) in the index, it has [%s]: pick one with --arch", arch.Name, arch.GoArch, strings.Join(have, " "))
}

// MaxImageSize bounds the image a manifest may declare: a pull never
// writes more to disk.
const MaxImageSize int64 = 64 << 30

// parseImageManifest parses a per-arch manifest and checks it has exactly
// one sysext image layer with a safe file name.
func parseImageManifest(mb *manifestBlob) (*v1.Manifest, error) {
	if !mb.mt.IsImage() {
		return nil, fmt.Errorf("manifest %s has media type %s, not an OCI image manifest", mb.digest, mb.mt)
	}
	var m v1.Manifest
	if err := json.Unmarshal(mb.raw, &m); err != nil {
		return nil, fmt.Errorf("parse manifest %s: %w", mb.digest, err)
	}
	if len(m.Layers) != 1 || !isImageLayer(m.Layers[0].MediaType) {
		return nil, fmt.Errorf("manifest %s: want exactly one extension image layer (%s…), it has %d layers: not a bakery extension", mb.digest, layerMediaType(sysext.Sysext, "FORMAT"), len(m.Layers))
	}
	if size := m.Layers[0].Size; size <= 0 || size > MaxImageSize {
		return nil, fmt.Errorf("manifest %s: image of %d bytes: an extension image has 1 byte to %d GiB", mb.digest, size, MaxImageSize>>30)
	}
	title := m.Layers[0].Annotations[AnnotationTitle]
	if title != "" && (title != filepath.Base(title) || title == "." || title == ".." || strings.ContainsAny(title, "/\\\x00")) {
		return nil, fmt.Errorf("manifest %s: layer title %q is not a plain file name", mb.digest, title)
	}
	return &m, nil
}

// wantArch is the architecture to pull: o.arch or this machine's.
func wantArch(o *options) (sysext.Arch, error) {
	if o.arch == "" {
		a := sysext.HostArch()
		if a.Name == "" {
			return a, fmt.Errorf("this machine's GOARCH %s has no systemd architecture: pass --arch", a.GoArch)
		}
		return a, nil
	}
	return sysext.ArchByName(o.arch)
}

// Pull downloads the image of ref (host/ns/name:tag or @sha256:…) for one
// architecture. It checks that ref holds the extension asked for (see
// WithName) at the version its tag names, and with WithKeys that a trusted
// key signed it as exactly that; every digest on the way (index, manifest,
// image) is checked, and the image's own extension-release must name the
// same extension, version and architecture, before the file is renamed
// into place, so a failed pull writes nothing.
func Pull(ctx context.Context, ref string, opts ...Option) (PullResult, error) {
	o := makeOptions(opts)
	if err := o.reuseConnections(ctx); err != nil {
		return PullResult{}, err
	}
	arch, err := wantArch(o)
	if err != nil {
		return PullResult{}, err
	}
	r, err := resolve(ctx, ref, arch, o)
	if err != nil {
		return PullResult{}, err
	}
	layer := r.manifest.Layers[0]
	res := PullResult{
		Class: r.published.class, Name: r.published.name, Version: r.published.version, Arch: arch.Name,
		Digest: layer.Digest.String(), Size: layer.Size, ManifestDigest: r.mdigest.String(),
	}
	if a := r.manifest.Annotations[AnnotationArchitecture]; a != "" && a != arch.Name {
		return PullResult{}, fmt.Errorf("%w: %s: the %s entry of the index is for %s", ErrSubstituted, ref, arch.Name, a)
	}
	if r.index != nil {
		res.IndexDigest = r.top.digest.String()
	}
	if r.signature != nil {
		res.Verified, res.Signature, res.Key = true, r.signature.referrer.String(), r.signature.KeyHint
	}
	res.Path = o.dest
	if res.Path == "" {
		title := layer.Annotations[AnnotationTitle]
		if title == "" {
			title = res.Name + ".raw"
		}
		res.Path = filepath.Join(o.outDir, title)
	}
	if o.have != "" && o.have == res.Digest {
		res.Unchanged = true
		return res, nil
	}
	if err := pullToFile(ctx, r.repo, layer, res, o); err != nil {
		return PullResult{}, err
	}
	return res, nil
}

// pullToFile downloads layer into a temp file beside res.Path, checks the
// image says it is res's extension, syncs it and renames it to res.Path;
// on any failure the temp file is removed.
func pullToFile(ctx context.Context, repo name.Repository, layer v1.Descriptor, res PullResult, o *options) error {
	path := res.Path
	atomicfile.RemoveStale(path)
	f, err := atomicfile.Create(path)
	if err != nil {
		return fmt.Errorf("pull into %s: %w", filepath.Dir(path), err)
	}
	defer f.Abort()
	if err := downloadBlob(ctx, repo, layer.Digest, layer.Size, f.File, filepath.Base(path), o); err != nil {
		return fmt.Errorf("pull %s@%s: %w", repo.Name(), layer.Digest, err)
	}
	if err := checkImageRelease(f.Name(), res); err != nil {
		return fmt.Errorf("pull %s@%s: %w", repo.Name(), layer.Digest, err)
	}
	return f.Commit(0o644)
}

// checkImageRelease reads the extension-release of a downloaded image and
// checks that it is the extension, version and architecture the signed
// index names.
func checkImageRelease(path string, res PullResult) error {
	class, name, rel, err := readReleaseNative(path)
	if err != nil {
		return fmt.Errorf("the image's extension-release: %w", err)
	}
	switch v := rel[class.VersionField]; {
	case class.Name != res.Class:
		return fmt.Errorf("%w: the image is a %s, but the index names a %s", ErrSubstituted, class.Name, res.Class)
	case name != res.Name:
		return fmt.Errorf("%w: the image holds extension-release.%s, but the index names extension %s", ErrSubstituted, name, res.Name)
	case v != "" && v != res.Version:
		return fmt.Errorf("%w: the image is version %s, but the index names %s", ErrSubstituted, v, res.Version)
	case rel["ARCHITECTURE"] != "" && rel["ARCHITECTURE"] != "_any" && rel["ARCHITECTURE"] != res.Arch:
		return fmt.Errorf("%w: the image is for %s, not %s", ErrSubstituted, rel["ARCHITECTURE"], res.Arch)
	}
	return nil
}
