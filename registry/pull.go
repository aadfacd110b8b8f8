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
	Path           string `json:"path"`
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
	signature v1.Hash
}

// resolve fetches ref, checks its signature when keys are set, and, if it
// is an index, picks and fetches the manifest for arch.
func resolve(ctx context.Context, ref string, arch sysext.Arch, o *options) (*resolved, error) {
	r, err := name.ParseReference(ref, o.nameOptions()...)
	if err != nil {
		return nil, fmt.Errorf("reference %q: %w (want host[:port]/ns/name:tag or @sha256:…)", ref, err)
	}
	ropts := o.remoteOptions(ctx)
	res := &resolved{repo: r.Context()}
	if res.top, err = fetchManifest(r, ropts); err != nil {
		return nil, err
	}
	if len(o.keys) > 0 {
		if res.signature, err = verifySignature(ctx, res.repo, res.top.digest, o); err != nil {
			return nil, err
		}
	}
	mb := res.top
	if res.top.mt.IsIndex() {
		if res.index, err = v1.ParseIndexManifest(bytes.NewReader(res.top.raw)); err != nil {
			return nil, fmt.Errorf("%s: parse index: %w", ref, err)
		}
		if res.entry, err = selectArch(res.index, arch); err != nil {
			return nil, fmt.Errorf("%s: %w", ref, err)
		}
		if mb, err = fetchManifest(res.repo.Digest(res.entry.Digest.String()), ropts); err != nil {
			return nil, err
		}
	}
	if res.manifest, err = parseImageManifest(mb); err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	res.mdigest = mb.digest
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
		return nil, fmt.Errorf("manifest %s: want exactly one sysext image layer (%s…), it has %d layers: not a bakery extension", mb.digest, LayerMediaTypePrefix, len(m.Layers))
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
// architecture. With WithKeys it first checks the signature; every digest
// on the way (index, manifest, image) is checked before the file is
// renamed into place, so a failed pull writes nothing.
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
	ann := r.manifest.Annotations
	res := PullResult{
		Name: ann[AnnotationName], Version: ann[AnnotationVersion], Arch: ann[AnnotationArchitecture],
		Digest: layer.Digest.String(), Size: layer.Size, ManifestDigest: r.mdigest.String(),
		Verified: len(o.keys) > 0,
	}
	if res.Arch == "" {
		res.Arch = arch.Name
	}
	if r.index != nil {
		res.IndexDigest = r.top.digest.String()
	}
	if res.Verified {
		res.Signature = r.signature.String()
	}
	res.Path = o.dest
	if res.Path == "" {
		title := layer.Annotations[AnnotationTitle]
		if title == "" {
			title = r.repo.RepositoryStr()[strings.LastIndex(r.repo.RepositoryStr(), "/")+1:] + ".raw"
		}
		res.Path = filepath.Join(o.outDir, title)
	}
	if err := pullToFile(ctx, r.repo, layer, res.Path, o); err != nil {
		return PullResult{}, err
	}
	return res, nil
}

// pullToFile downloads layer into a temp file beside path, syncs it and
// renames it to path; on any failure the temp file is removed.
func pullToFile(ctx context.Context, repo name.Repository, layer v1.Descriptor, path string, o *options) error {
	f, err := atomicfile.Create(path)
	if err != nil {
		return fmt.Errorf("pull into %s: %w", filepath.Dir(path), err)
	}
	defer f.Abort()
	if err := downloadBlob(ctx, repo, layer.Digest, layer.Size, f.File, filepath.Base(path), o); err != nil {
		return fmt.Errorf("pull %s@%s: %w", repo.Name(), layer.Digest, err)
	}
	return f.Commit(0o644)
}
