package registry

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/sysext-bakery/bakery/sign"
)

// Building a catalog, lock-free. A registry offers no compare-and-swap,
// so a read-modify-write of one catalog document would let concurrent
// pushes lose each other's entries. Instead every extension has its own
// entry (catalog:ext.NAME), rewritten only by pushes of that extension,
// and catalog:latest is rebuilt from all entries. After writing, a builder
// lists the entries again and rebuilds when one changed meanwhile: of any
// two concurrent pushes, the one that writes latest last saw both entries,
// or sees them on its check and writes again. An entry converges the same
// way with its extension's repository, whose version tags are the truth.
//
// When the pusher signs, everything it reads back (the previous catalog,
// the entries, the versions' signatures) is verified with its own key:
// what does not verify is rebuilt from the repositories, so a signed
// catalog never vouches for content someone else wrote.

// maxConvergeRounds bounds the rebuilds of one update.
const maxConvergeRounds = 8

// builder holds what one catalog update needs.
type builder struct {
	crepo name.Repository
	o     *options
	// verify holds the signer's own public key when signing: what is read
	// back must carry its signature.
	verify *options
}

// newBuilder prepares an update of crepo.
func newBuilder(crepo name.Repository, o *options) *builder {
	b := &builder{crepo: crepo, o: o}
	if o.signer != nil {
		v := *o
		v.keys = []crypto.PublicKey{o.signer.Public()}
		b.verify = &v
	}
	return b
}

// signing tells whether the update signs what it writes.
func (b *builder) signing() bool { return b.verify != nil }

// readOptions are the options reads go with: the signer's key when signing.
func (b *builder) readOptions() *options {
	if b.verify != nil {
		return b.verify
	}
	return b.o
}

// updateCatalog records a push in NAMESPACE/catalog: it rewrites the
// extension's entry with the pushed version, then rebuilds catalog:latest
// from every entry. It returns the new catalog manifest's digest.
func updateCatalog(ctx context.Context, repo name.Repository, res PushResult, ann map[string]string, o *options) (v1.Hash, error) {
	b := newBuilder(catalogRepo(repo), o)
	if err := b.updateEntry(ctx, repo, publishedAs(ann).class, pushedVersion(res, ann), ann[AnnotationDescription], ann[AnnotationLicenses]); err != nil {
		return v1.Hash{}, err
	}
	_, d, err := b.rebuild(ctx)
	return d, err
}

// RefreshCatalog rebuilds target's (host[:port][/ns]) catalog:latest from
// its entries with a new sequence and expiry and, with WithSigner, signs
// it: what a publisher runs regularly (bakery catalog --sign) so that
// nodes requiring a fresh catalog keep accepting it.
func RefreshCatalog(ctx context.Context, target string, opts ...Option) (CatalogResult, error) {
	o := makeOptions(opts)
	if err := o.reuseConnections(ctx); err != nil {
		return CatalogResult{}, err
	}
	reg, ns, err := parseNamespace(target, o)
	if err != nil {
		return CatalogResult{}, err
	}
	b := newBuilder(reg.Repo(strings.TrimPrefix(ns+"/catalog", "/")), o)
	doc, d, err := b.rebuild(ctx)
	if err != nil {
		return CatalogResult{}, err
	}
	res := CatalogResult{Source: "artifact", Digest: d.String(), Catalog: doc}
	if b.signing() {
		res.Verified = true
		res.Key, _ = sign.KeyHint(o.signer.Public())
	}
	return res, nil
}

// pushedVersion is the catalog version of a push.
func pushedVersion(res PushResult, ann map[string]string) CatalogVersion {
	v := versionFromAnnotations(ann)
	v.Digest, v.Signed = res.IndexDigest, res.Signature != ""
	for _, img := range res.Images {
		v.Arches = append(v.Arches, CatalogArch{Arch: img.Arch, Digest: img.LayerDigest, Size: img.Size, InputsDigest: img.InputsDigest})
	}
	return v
}

// nsPrefix is the namespace's repository path with a trailing slash, or
// "" for the registry's root: "sysext/" for sysext/catalog.
func (b *builder) nsPrefix() string { return strings.TrimSuffix(b.crepo.RepositoryStr(), "catalog") }

// entryTag is the tag of extension ext's entry.
func (b *builder) entryTag(ext string) name.Tag { return b.crepo.Tag(entryTagPrefix + ext) }

// readEntry reads extension ext's entry; ok is false when there is none,
// or, when signing, when it does not carry the signer's signature.
func (b *builder) readEntry(ctx context.Context, ext string) (CatalogExtension, v1.Hash, bool, error) {
	a, ok, err := readArtifact(ctx, b.entryTag(ext), CatalogEntryArtifactType, CatalogEntryMediaType, b.signing(),
		func([]byte) (sign.Claims, error) { return entryClaims(ext), nil }, b.readOptions())
	if errors.Is(err, ErrNoSignature) || errors.Is(err, ErrSubstituted) {
		return CatalogExtension{}, v1.Hash{}, false, nil // rebuilt from the repository
	}
	if err != nil || !ok {
		return CatalogExtension{}, v1.Hash{}, false, err
	}
	var e CatalogExtension
	if err := json.Unmarshal(a.data, &e); err != nil || e.Name != ext {
		return CatalogExtension{}, v1.Hash{}, false, nil
	}
	return e, a.digest, true, nil
}

// updateEntry adds v (when set) to extension repo's entry (of image class
// class, when known) and writes it, then converges with the repository's
// tags: versions tagged by concurrent pushes are added, and the moving
// tags recorded.
func (b *builder) updateEntry(ctx context.Context, repo name.Repository, class string, v CatalogVersion, description, license string) error {
	ext := repoBase(repo)
	e, _, ok, err := b.readEntry(ctx, ext)
	if err != nil {
		return err
	}
	if !ok {
		e = CatalogExtension{Name: ext}
	}
	e.Repository = repo.Name()
	if class != "" {
		e.Class = class
	}
	if description != "" {
		e.Description = description
	}
	if license != "" {
		e.License = license
	}
	if v.Digest != "" {
		e.addVersion(v)
	}
	for round := 0; round < maxConvergeRounds; round++ {
		changed, err := b.converge(ctx, repo, &e)
		if err != nil {
			return err
		}
		if round > 0 && !changed {
			return nil
		}
		if _, err := b.write(ctx, b.entryTag(ext), CatalogEntryArtifactType, CatalogEntryMediaType, e, entryClaims(ext)); err != nil {
			return err
		}
	}
	return fmt.Errorf("catalog entry of %s: the repository kept changing while it was written; push again", ext)
}

// addVersion puts v into e, replacing the same version, in version order.
func (e *CatalogExtension) addVersion(v CatalogVersion) {
	vs := e.Versions[:0:0]
	for _, old := range e.Versions {
		if old.Version != v.Version {
			vs = append(vs, old)
		}
	}
	e.Versions = append(vs, v)
	sortVersions(e.Versions)
}

// converge brings e up to date with repo's tags: version tags it does not
// list yet are read (and their signatures checked when signing), moving
// tags are pointed at the versions they hold. It tells whether e changed.
func (b *builder) converge(ctx context.Context, repo name.Repository, e *CatalogExtension) (bool, error) {
	p, err := remote.NewPuller(b.o.remoteOptions(ctx)...)
	if err != nil {
		return false, err
	}
	tags, err := listTags(ctx, p, repo, maxListedTags)
	if err != nil {
		return false, fmt.Errorf("list tags of %s: %w", repo, err)
	}
	byTag := map[string]bool{}
	byDigest := map[string]string{}
	for _, v := range e.Versions {
		byTag[v.Tag], byDigest[v.Digest] = true, v.Version
	}
	ropts := b.o.remoteOptions(ctx)
	changed := false
	moving := map[string]string{}
	for _, t := range tags {
		if byTag[t] || strings.HasPrefix(t, "sha256-") {
			continue
		}
		tag := repo.Tag(t)
		mb, err := fetchManifest(tag, ropts)
		if err != nil {
			continue // deleted meanwhile, or not a manifest
		}
		if version, ok := byDigest[mb.digest.String()]; ok {
			if _, known := e.Tags[t]; known || t == "latest" || !isVersionTag(t) {
				moving[t] = version
			}
			continue
		}
		v, info, err := versionOf(ctx, repo, mb, ropts)
		if err != nil || info.name != e.Name || tagSafe(info.version) != t {
			continue // a channel at a version not listed, or not a bakery index of this extension
		}
		v.Tag = t
		e.Class = info.class
		if info.license != "" {
			e.License = info.license
		}
		if b.signing() {
			_, err := verifySignature(ctx, repo, mb.digest, info.claims(), b.verify)
			v.Signed = err == nil
		}
		e.addVersion(v)
		byTag[t], byDigest[v.Digest] = true, v.Version
		changed = true
	}
	if len(moving) == 0 {
		moving = nil
	}
	if !maps.Equal(moving, e.Tags) {
		e.Tags, changed = moving, true
	}
	return changed, nil
}

// rebuild writes catalog:latest from every entry, and again while entries
// change under it; it returns the catalog written and its digest.
func (b *builder) rebuild(ctx context.Context) (CatalogDoc, v1.Hash, error) {
	prev, _, ok, err := readCatalogDoc(ctx, b.crepo, b.signing(), b.readOptions())
	if err != nil && !errors.Is(err, ErrNoSignature) && !errors.Is(err, ErrSubstituted) {
		return CatalogDoc{}, v1.Hash{}, fmt.Errorf("catalog %s: %w", b.crepo, err)
	}
	if !ok || err != nil {
		prev = CatalogDoc{} // missing, or not ours to trust: everything is read again
	}
	if err := b.migrate(ctx, prev); err != nil {
		return CatalogDoc{}, v1.Hash{}, err
	}
	for round := 0; round < maxConvergeRounds; round++ {
		if round > 0 { // let a concurrent builder finish its write
			time.Sleep(time.Duration(50+rand.IntN(200)) * time.Millisecond)
		}
		seen, err := b.entryDigests(ctx)
		if err != nil {
			return CatalogDoc{}, v1.Hash{}, err
		}
		doc, err := b.collect(ctx, prev, seen)
		if err != nil {
			return CatalogDoc{}, v1.Hash{}, err
		}
		d, err := b.write(ctx, b.crepo.Tag("latest"), CatalogArtifactType, CatalogMediaType, doc, catalogClaims(b.crepo, doc.Sequence))
		if err != nil {
			return CatalogDoc{}, v1.Hash{}, err
		}
		now, err := b.entryDigests(ctx)
		if err != nil {
			return CatalogDoc{}, v1.Hash{}, err
		}
		if maps.Equal(now, seen) {
			return doc, d, nil
		}
		prev = doc
	}
	return CatalogDoc{}, v1.Hash{}, fmt.Errorf("catalog %s kept changing while it was rebuilt; run bakery catalog --sign again", b.crepo)
}

// migrate writes entries for the extensions of a catalog made before
// entries existed, so that rebuilding from entries keeps them.
func (b *builder) migrate(ctx context.Context, prev CatalogDoc) error {
	for _, e := range prev.Extensions {
		if e.Entry != "" {
			continue
		}
		repo, err := name.NewRepository(e.Repository, b.o.nameOptions()...)
		if err != nil || repoBase(repo) != e.Name {
			continue
		}
		if _, _, ok, err := b.readEntry(ctx, e.Name); err != nil || ok {
			continue
		}
		if err := b.updateEntry(ctx, repo, e.Class, CatalogVersion{}, e.Description, e.License); err != nil {
			return fmt.Errorf("migrate the catalog entry of %s: %w", e.Name, err)
		}
	}
	return nil
}

// entryDigests lists the entry tags and the manifest digest each holds.
func (b *builder) entryDigests(ctx context.Context) (map[string]string, error) {
	p, err := remote.NewPuller(b.o.remoteOptions(ctx)...)
	if err != nil {
		return nil, err
	}
	tags, err := listTags(ctx, p, b.crepo, maxListedTags)
	if err != nil {
		return nil, fmt.Errorf("list the entries of %s: %w", b.crepo, err)
	}
	out := map[string]string{}
	ropts := b.o.remoteOptions(ctx)
	for _, t := range tags {
		ext, ok := strings.CutPrefix(t, entryTagPrefix)
		if !ok {
			continue
		}
		d, err := remote.Head(b.crepo.Tag(t), ropts...)
		if err != nil {
			continue // removed meanwhile
		}
		out[ext] = d.Digest.String()
	}
	return out, nil
}

// collect makes the catalog of the entries in seen (extension → entry
// digest), reusing prev's copy of an entry whose digest did not change.
// An entry that cannot be read (or, when signing, verified) is rebuilt
// from its extension's repository.
func (b *builder) collect(ctx context.Context, prev CatalogDoc, seen map[string]string) (CatalogDoc, error) {
	known := map[string]CatalogExtension{}
	for _, e := range prev.Extensions {
		known[e.Name] = e
	}
	doc := CatalogDoc{
		Namespace:  strings.TrimSuffix(b.crepo.Registry.Name()+"/"+b.nsPrefix(), "/"),
		Sequence:   max(prev.Sequence+1, time.Now().Unix()),
		Extensions: []CatalogExtension{},
	}
	now := time.Now().UTC()
	doc.Updated = now.Format(time.RFC3339)
	doc.Expires = now.Add(b.o.catalogValidity).Format(time.RFC3339)
	for _, ext := range slices.Sorted(maps.Keys(seen)) {
		if e, ok := known[ext]; ok && e.Entry == seen[ext] {
			doc.Extensions = append(doc.Extensions, e)
			continue
		}
		e, d, ok, err := b.readEntry(ctx, ext)
		if err != nil {
			return CatalogDoc{}, err
		}
		if !ok {
			repo := b.crepo.Registry.Repo(b.nsPrefix() + ext)
			if err := b.updateEntry(ctx, repo, "", CatalogVersion{}, "", ""); err != nil {
				return CatalogDoc{}, err
			}
			if e, d, ok, err = b.readEntry(ctx, ext); err != nil || !ok {
				return CatalogDoc{}, errors.Join(err, fmt.Errorf("catalog entry of %s could not be rebuilt", ext))
			}
		}
		if len(e.Versions) == 0 {
			continue
		}
		e.Entry = d.String()
		doc.Extensions = append(doc.Extensions, e)
	}
	return doc, nil
}

// write pushes doc as a one-layer artifact under tag, signed with claims
// when signing (before the tag moves), and returns its manifest digest.
// Concurrent builders may upload the same blob at once (equal documents);
// some registries (distribution 2.8) then lose it and refuse the manifest,
// so the write is tried again.
func (b *builder) write(ctx context.Context, tag name.Tag, artifactType string, mediaType types.MediaType, doc any, claims sign.Claims) (v1.Hash, error) {
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return v1.Hash{}, err
	}
	var d v1.Hash
	for attempt := 0; ; attempt++ {
		d, err = b.writeOnce(ctx, tag, artifactType, mediaType, data, claims)
		var te *transport.Error
		if err == nil || attempt == 2 || !errors.As(err, &te) || te.StatusCode != http.StatusBadRequest {
			return d, err
		}
		time.Sleep(time.Duration(50+rand.IntN(200)) * time.Millisecond)
	}
}

// writeOnce makes one attempt of write.
func (b *builder) writeOnce(ctx context.Context, tag name.Tag, artifactType string, mediaType types.MediaType, data []byte, claims sign.Claims) (v1.Hash, error) {
	repo, ropts := tag.Context(), b.o.remoteOptions(ctx)
	emptyLayer := static.NewLayer(emptyJSON, emptyMediaType)
	docLayer := static.NewLayer(data, mediaType)
	for _, l := range []v1.Layer{emptyLayer, docLayer} {
		if err := remote.WriteLayer(repo, l, ropts...); err != nil {
			return v1.Hash{}, fmt.Errorf("push %s: %w", tag, err)
		}
	}
	emptyDigest, _ := emptyLayer.Digest()
	docDigest, _ := docLayer.Digest()
	m, err := newRawManifest(v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  artifactType,
		Config:        v1.Descriptor{MediaType: emptyMediaType, Digest: emptyDigest, Size: int64(len(emptyJSON))},
		Layers:        []v1.Descriptor{{MediaType: mediaType, Digest: docDigest, Size: int64(len(data))}},
		Annotations:   map[string]string{AnnotationCreated: time.Now().UTC().Format(time.RFC3339)},
	}, types.OCIManifestSchema1)
	if err != nil {
		return v1.Hash{}, err
	}
	desc := m.descriptor()
	if err := remote.Put(repo.Digest(desc.Digest.String()), m, ropts...); err != nil {
		return v1.Hash{}, fmt.Errorf("push %s: %w", tag, err)
	}
	if b.signing() {
		if _, err := signManifest(ctx, repo, desc, claims, b.o); err != nil {
			return v1.Hash{}, err
		}
	}
	if err := remote.Put(tag, m, ropts...); err != nil {
		return v1.Hash{}, fmt.Errorf("tag %s: %w", tag, err)
	}
	return desc.Digest, nil
}
