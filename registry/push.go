package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/sysext-bakery/bakery/sysext"
)

// Config is the per-arch config blob of a published image.
type Config struct {
	Name         string            `json:"name"`
	Version      string            `json:"version"`
	Architecture string            `json:"architecture"`
	FSType       string            `json:"fstype"`
	Release      map[string]string `json:"release"`
	// Provenance holds what the publisher said about the inputs: the
	// annotations given with WithAnnotations (source, revision,
	// inputs-digest, …).
	Provenance map[string]string `json:"provenance,omitempty"`
}

// PushResult is what Push published.
type PushResult struct {
	Repository  string        `json:"repository"`
	Name        string        `json:"name"`
	Version     string        `json:"version"`
	Tags        []string      `json:"tags"`
	IndexDigest string        `json:"indexDigest"`
	Images      []PushedImage `json:"images"`
	// Kept are the moving tags left where they were because they point at
	// a newer version.
	Kept []KeptTag `json:"kept,omitempty"`
	// Signature is the digest of the signature referrer, "" if unsigned.
	Signature string `json:"signature,omitempty"`
	// Catalog is the digest of the updated catalog manifest, "" if none.
	Catalog string `json:"catalog,omitempty"`
}

// KeptTag is a moving tag Push did not move backwards.
type KeptTag struct {
	Tag string `json:"tag"`
	// Version is the newer version the tag still points at.
	Version string `json:"version"`
}

// PushedImage is one per-arch manifest of a push.
type PushedImage struct {
	Arch           string `json:"arch"`
	File           string `json:"file"`
	ManifestDigest string `json:"manifestDigest"`
	LayerDigest    string `json:"layerDigest"`
	Size           int64  `json:"size"`
	// InputsDigest is what the image was baked from, when known.
	InputsDigest string `json:"inputsDigest,omitempty"`
}

// rawManifest is a manifest or index to PUT, as bytes.
type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.raw, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }

// descriptor describes r as an index or manifest entry.
func (r rawManifest) descriptor() v1.Descriptor {
	h, n, _ := v1.SHA256(bytes.NewReader(r.raw))
	return v1.Descriptor{MediaType: r.mt, Digest: h, Size: n}
}

// newRawManifest encodes m with its media type.
func newRawManifest(m any, mt types.MediaType) (rawManifest, error) {
	raw, err := json.Marshal(m)
	return rawManifest{raw: raw, mt: mt}, err
}

// tagRE is a valid tag in the OCI distribution specification.
var tagRE = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)

// checkTag reports whether tag can be pushed.
func CheckTag(tag string) error {
	if !tagRE.MatchString(tag) {
		return fmt.Errorf("tag %q is not a valid OCI tag: use letters, digits, '_', '.' and '-', at most 128, not starting with '.' or '-'", tag)
	}
	return nil
}

// parseTarget splits REF = host/ns/name[:tag] into the repository and the
// tag the user named ("" when none).
func parseTarget(ref string, o *options) (name.Repository, string, error) {
	repoPart, tag := ref, ""
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		repoPart, tag = ref[:i], ref[i+1:]
	}
	if strings.Contains(ref, "@") {
		return name.Repository{}, "", fmt.Errorf("reference %q: push takes a tag, not a digest (host/ns/name[:tag])", ref)
	}
	repo, err := name.NewRepository(repoPart, append(o.nameOptions(), name.StrictValidation)...)
	if err != nil {
		return name.Repository{}, "", fmt.Errorf("reference %q: %w (want host[:port]/ns/name[:tag])", ref, err)
	}
	if tag != "" {
		if err := CheckTag(tag); err != nil {
			return name.Repository{}, "", fmt.Errorf("reference %q: %w", ref, err)
		}
	}
	return repo, tag, nil
}

// tagPlan is what Push will do with tags, decided before anything is
// written.
type tagPlan struct {
	move []string  // tags to point at the new index
	kept []KeptTag // moving tags left on a newer version
}

// planTags decides the tags of a push of version to repo: the tag-safe
// version, latest, and the tag the user named. A user tag that spells a
// version must be this version's. A moving tag (latest, or a channel such
// as stable) that points at a newer version of the extension is not moved
// backwards: latest is kept where it is, a named channel is an error;
// WithForce moves both.
func planTags(ctx context.Context, repo name.Repository, ext, version, userTag string, o *options) (tagPlan, error) {
	vt := tagSafe(version)
	if err := CheckTag(vt); err != nil {
		return tagPlan{}, fmt.Errorf("version %q: %w", version, err)
	}
	if userTag != "" && isVersionTag(userTag) && userTag != vt {
		return tagPlan{}, fmt.Errorf("tag %s names a version, but the images are version %s: push to %s:%s, or name a channel such as :stable", userTag, version, repo.Name(), vt)
	}
	plan := tagPlan{move: []string{vt}}
	moving := []string{"latest"}
	if userTag != "" && userTag != vt && userTag != "latest" {
		moving = append(moving, userTag)
	}
	for _, t := range moving {
		cur, err := taggedVersion(ctx, repo.Tag(t), ext, o)
		if err != nil {
			return tagPlan{}, err
		}
		if cur == "" || o.force || sysext.CompareVersions(version, cur) >= 0 {
			plan.move = append(plan.move, t)
			continue
		}
		if t != "latest" {
			return tagPlan{}, fmt.Errorf("%s:%s points at %s, newer than %s: a moving tag only moves forward (push with --force to move it back)", repo.Name(), t, cur, version)
		}
		plan.kept = append(plan.kept, KeptTag{Tag: t, Version: cur})
	}
	return plan, nil
}

// taggedVersion is the version of extension ext that tag points at, or ""
// when the tag does not exist or holds something else.
func taggedVersion(ctx context.Context, tag name.Tag, ext string, o *options) (string, error) {
	mb, err := fetchManifest(tag, o.remoteOptions(ctx))
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s before moving it: %w", tag, err)
	}
	var m struct {
		Annotations map[string]string `json:"annotations"`
	}
	if json.Unmarshal(mb.raw, &m) != nil {
		return "", nil
	}
	if p := publishedAs(m.Annotations); p.name == ext {
		return p.version, nil
	}
	return "", nil
}

// Push publishes the images (image files, or directories of them, all of
// one extension version) to ref = host/ns/name[:tag] as one index, tagged
// with the version, latest and ref's tag (moving tags only forward, see
// planTags). The repository's last path element must be the extension's
// name. Every tag is checked before the first write. With WithSigner it
// signs the index, claiming its name and version; unless WithoutCatalog,
// it then updates host/ns/catalog:latest.
func Push(ctx context.Context, ref string, images []string, opts ...Option) (PushResult, error) {
	o := makeOptions(opts)
	if err := o.reuseConnections(ctx); err != nil {
		return PushResult{}, err
	}
	repo, userTag, err := parseTarget(ref, o)
	if err != nil {
		return PushResult{}, err
	}
	imgs, err := loadImages(images, o)
	if err != nil {
		return PushResult{}, err
	}
	ext := imgs[0].name
	if base := repoBase(repo); base != ext {
		return PushResult{}, fmt.Errorf("repository %s ends in %q, but the images are extension %s: push to %s/%s (nodes refuse an extension under another name)",
			repo.Name(), base, ext, strings.TrimSuffix(repo.Name(), "/"+base), ext)
	}
	res := PushResult{Repository: repo.Name(), Name: ext, Version: imgs[0].version}
	plan, err := planTags(ctx, repo, ext, res.Version, userTag, o)
	if err != nil {
		return PushResult{}, err
	}
	ropts := o.remoteOptions(ctx)
	common := indexAnnotations(imgs, o.annotations)

	var entries []v1.Descriptor
	for _, img := range imgs {
		m, err := pushImage(ctx, repo, img, common, o)
		if err != nil {
			return res, err
		}
		d := m.descriptor()
		d.ArtifactType = img.class.ArtifactType
		d.Platform = &v1.Platform{OS: "linux", Architecture: img.arch.GoArch}
		d.Annotations = entryAnnotations(img, common)
		entries = append(entries, d)
		res.Images = append(res.Images, PushedImage{Arch: img.arch.Name, File: img.title,
			ManifestDigest: d.Digest.String(), LayerDigest: img.digest.String(), Size: img.size, InputsDigest: img.inputs})
	}
	index, err := newRawManifest(v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		ArtifactType:  imgs[0].class.ArtifactType,
		Manifests:     entries,
		Annotations:   common,
	}, types.OCIImageIndex)
	if err != nil {
		return res, err
	}
	indexDesc := index.descriptor()
	res.IndexDigest = indexDesc.Digest.String()
	if err := remote.Put(repo.Digest(res.IndexDigest), index, ropts...); err != nil {
		return res, fmt.Errorf("push index to %s: %w", repo.Name(), err)
	}
	// Sign before tagging: a tag never points at an index whose signature
	// is still missing.
	if o.signer != nil {
		sig, err := signManifest(ctx, repo, indexDesc, publishedAs(common).claims(), o)
		if err != nil {
			return res, err
		}
		res.Signature = sig.String()
	}
	res.Tags, res.Kept = plan.move, plan.kept
	for _, t := range res.Tags {
		if err := remote.Put(repo.Tag(t), index, ropts...); err != nil {
			return res, fmt.Errorf("tag %s:%s: %w", repo.Name(), t, err)
		}
	}
	if o.catalog {
		d, err := updateCatalog(ctx, repo, res, common, o)
		if err != nil {
			return res, fmt.Errorf("pushed %s@%s, but updating the catalog failed: %w", repo.Name(), res.IndexDigest, err)
		}
		res.Catalog = d.String()
	}
	return res, nil
}

// loadImages inspects the images of a push and checks they form one
// version of one extension, one image per arch.
func loadImages(args []string, o *options) ([]*localImage, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("no images to push: give a bake output directory or NAME-VERSION-ARCH.raw files")
	}
	paths, sums, inputs, err := expandImages(args)
	if err != nil {
		return nil, err
	}
	var imgs []*localImage
	seen := map[string]string{}
	for _, p := range paths {
		img, err := inspectImage(p, sums[p], o.readRelease)
		if err != nil {
			return nil, err
		}
		img.inputs = inputs[p]
		if d, ok := o.inputs[img.arch.Name]; ok {
			img.inputs = d
		}
		if first := imgs; len(first) > 0 && (first[0].name != img.name || first[0].version != img.version) {
			return nil, fmt.Errorf("image %s is %s %s, but %s is %s %s: push one version of one extension at a time",
				p, img.name, img.version, first[0].path, first[0].name, first[0].version)
		}
		if other, dup := seen[img.arch.Name]; dup {
			return nil, fmt.Errorf("images %s and %s are both for %s: one image per architecture", other, p, img.arch.Name)
		}
		seen[img.arch.Name] = p
		imgs = append(imgs, img)
	}
	sort.Slice(imgs, func(i, j int) bool { return imgs[i].arch.Name < imgs[j].arch.Name })
	return imgs, nil
}

// indexAnnotations are the annotations of the index, also copied onto each
// entry: from the extension-release, then the caller's.
func indexAnnotations(imgs []*localImage, extra map[string]string) map[string]string {
	img := imgs[0]
	newest := time.Unix(0, 0)
	for _, i := range imgs {
		if fi, err := os.Stat(i.path); err == nil && fi.ModTime().After(newest) {
			newest = fi.ModTime()
		}
	}
	a := map[string]string{
		AnnotationTitle:   img.name,
		AnnotationVersion: img.version,
		// The newest image's mtime, so pushing the same files again gives
		// the same index.
		AnnotationCreated: newest.UTC().Format(time.RFC3339),
		AnnotationName:    img.name,
		AnnotationClass:   img.class.Name,
	}
	for key, field := range map[string]string{AnnotationID: "ID", levelAnnotation(img.class): img.class.LevelField,
		AnnotationVersionID: "VERSION_ID", AnnotationScope: img.class.ScopeField} {
		if v := img.release[field]; v != "" {
			a[key] = v
		}
	}
	if d := versionInputs(imgs); d != "" {
		a[AnnotationInputsDigest] = d
	}
	for k, v := range extra {
		a[k] = v
	}
	return a
}

// versionInputs is the inputs digest of a version: the sha256 of the lines
// "ARCH INPUTS-DIGEST\n" of its images, sorted by arch; "" unless every
// image's inputs digest is known.
func versionInputs(imgs []*localImage) string {
	lines := make([]string, len(imgs))
	for i, img := range imgs {
		if img.inputs == "" {
			return ""
		}
		lines[i] = img.arch.Name + " " + img.inputs + "\n"
	}
	sort.Strings(lines)
	h, _, _ := v1.SHA256(strings.NewReader(strings.Join(lines, "")))
	return h.String()
}

// entryAnnotations are an index entry's: the index's plus the arch's own,
// its inputs digest among them.
func entryAnnotations(img *localImage, common map[string]string) map[string]string {
	a := make(map[string]string, len(common)+4)
	for k, v := range common {
		a[k] = v
	}
	a[AnnotationTitle] = img.title
	a[AnnotationArchitecture] = img.arch.Name
	a[AnnotationFSType] = img.fstype
	if img.inputs != "" {
		a[AnnotationInputsDigest] = img.inputs
	}
	return a
}

// pushImage uploads one image's layer and config (skipping blobs the
// registry has) and its manifest, which it returns.
func pushImage(ctx context.Context, repo name.Repository, img *localImage, common map[string]string, o *options) (rawManifest, error) {
	provenance := maps.Clone(o.annotations)
	if img.inputs != "" {
		if provenance == nil {
			provenance = map[string]string{}
		}
		provenance[AnnotationInputsDigest] = img.inputs
	}
	cfg, err := json.Marshal(Config{Name: img.name, Version: img.version, Architecture: img.arch.Name,
		FSType: img.fstype, Release: img.release, Provenance: provenance})
	if err != nil {
		return rawManifest{}, err
	}
	cfgLayer := static.NewLayer(cfg, configMediaType(img.class))
	layer := &fileLayer{img: img}
	for _, l := range []v1.Layer{cfgLayer, layer} {
		if err := writeBlob(ctx, repo, l, img.title, o); err != nil {
			return rawManifest{}, fmt.Errorf("push %s to %s: %w", img.path, repo.Name(), err)
		}
	}
	cfgDigest, _ := cfgLayer.Digest()
	m, err := newRawManifest(v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  img.class.ArtifactType,
		Config:        v1.Descriptor{MediaType: configMediaType(img.class), Digest: cfgDigest, Size: int64(len(cfg))},
		Layers: []v1.Descriptor{{MediaType: img.layerMT, Digest: img.digest, Size: img.size,
			Annotations: map[string]string{AnnotationTitle: img.title}}},
		Annotations: entryAnnotations(img, common),
	}, types.OCIManifestSchema1)
	if err != nil {
		return rawManifest{}, err
	}
	if err := remote.Put(repo.Digest(m.descriptor().Digest.String()), m, o.remoteOptions(ctx)...); err != nil {
		return rawManifest{}, fmt.Errorf("push manifest of %s to %s: %w", img.path, repo.Name(), err)
	}
	return m, nil
}

// writeBlob uploads l unless the registry has it, reporting progress as
// file.
func writeBlob(ctx context.Context, repo name.Repository, l v1.Layer, file string, o *options) error {
	ropts := o.remoteOptions(ctx)
	if o.progress == nil {
		return remote.WriteLayer(repo, l, ropts...)
	}
	updates := make(chan v1.Update, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for u := range updates {
			o.progress(file, u.Complete, u.Total)
		}
	}()
	err := remote.WriteLayer(repo, l, append(ropts, remote.WithProgress(updates))...)
	<-done
	return err
}

// fileLayer is an image file as an uncompressed OCI layer: its digest is
// the file's sha256, and each upload attempt reopens the file.
type fileLayer struct{ img *localImage }

func (l *fileLayer) Digest() (v1.Hash, error)             { return l.img.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)             { return l.img.digest, nil }
func (l *fileLayer) Size() (int64, error)                 { return l.img.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error)  { return l.img.layerMT, nil }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) { return l.Compressed() }

// Compressed opens the file; when its digest came from SHA256SUMS, reading
// it to the end checks that digest, so a changed file fails the upload.
func (l *fileLayer) Compressed() (io.ReadCloser, error) {
	f, err := os.Open(l.img.path)
	if err != nil || !l.img.checkOnRead {
		return f, err
	}
	return &checkedReader{f: f, img: l.img, h: sha256.New()}, nil
}

// checkedReader hashes a file as it is read and fails at its end when the
// content is not what SHA256SUMS says.
type checkedReader struct {
	f   *os.File
	img *localImage
	h   hash.Hash
	n   int64
}

func (r *checkedReader) Read(b []byte) (int, error) {
	n, err := r.f.Read(b)
	r.h.Write(b[:n])
	r.n += int64(n)
	if err == io.EOF {
		if got := hex.EncodeToString(r.h.Sum(nil)); got != r.img.digest.Hex || r.n != r.img.size {
			return n, fmt.Errorf("image %s: sha256 %s, but SHA256SUMS says %s: the file changed after baking; bake again", r.img.path, got, r.img.digest.Hex)
		}
	}
	return n, err
}

func (r *checkedReader) Close() error { return r.f.Close() }
