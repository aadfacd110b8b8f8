package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/sysext-bakery/bakery/sign"
	"github.com/sysext-bakery/bakery/sysext"
)

// A namespace's catalog lives in the repository NAMESPACE/catalog:
//
//	catalog:latest    the catalog (CatalogDoc): every extension; signed; what readers use
//	catalog:ext.NAME  one extension's entry (CatalogExtension); signed
//
// Each push writes its extension's entry, then rebuilds latest from all
// entries (catalogbuild.go), so that concurrent pushes of different
// extensions cannot lose each other's versions.

// ErrCatalogExpired means a signed catalog is past its expiry: a registry
// may be serving an old one to hide newer versions (a freeze attack), or
// the publisher stopped re-signing it (bakery catalog --sign).
var ErrCatalogExpired = errors.New("the signed catalog has expired")

// CatalogDoc is the catalog artifact's content: every extension published
// in a namespace.
type CatalogDoc struct {
	Namespace string `json:"namespace"`
	// Sequence grows with every update of the catalog, so that a reader
	// that remembers it can refuse an older catalog (a replay). It is
	// signed: the signature's claims carry it.
	Sequence int64  `json:"sequence"`
	Updated  string `json:"updated"`
	// Expires is when the catalog stops being valid (RFC 3339); the
	// publisher re-signs it before then (bakery catalog --sign), so that a
	// registry serving a stale catalog is noticed.
	Expires    string             `json:"expires,omitempty"`
	Extensions []CatalogExtension `json:"extensions"`
}

// CatalogExtension is one extension (repository) of a catalog.
type CatalogExtension struct {
	Name string `json:"name"`
	// Class is the image class: sysext or confext.
	Class string `json:"class"`
	// License is the SPDX expression of the newest version's content.
	License     string `json:"license,omitempty"`
	Repository  string `json:"repository"`
	Description string `json:"description,omitempty"`
	// Tags maps the moving tags (latest, channels such as stable) to the
	// versions they pointed at when the entry was written.
	Tags     map[string]string `json:"tags,omitempty"`
	Versions []CatalogVersion  `json:"versions"`
	// Entry is the digest of the extension's entry manifest
	// (catalog:ext.NAME) that the catalog was built from.
	Entry string `json:"entry,omitempty"`
}

// CatalogVersion is one published version.
type CatalogVersion struct {
	Version string `json:"version"`
	Tag     string `json:"tag"`
	Digest  string `json:"digest"`
	// Signed is true when the index's signature, claiming this extension
	// and version, verified with the key that signed the catalog when the
	// entry was written. Trust it as far as the catalog's own signature
	// (CatalogResult.Verified).
	Signed bool `json:"signed"`
	// SignatureAttached, in a registry listing only, says that a
	// signature referrer exists; nothing checked it.
	SignatureAttached bool `json:"signatureAttached,omitempty"`
	// InputsDigest is the index's org.bakery.sysext.inputs-digest, if any:
	// the version's, made of its arches' (see CatalogArch).
	InputsDigest string `json:"inputsDigest,omitempty"`
	// Created is the index's org.opencontainers.image.created.
	Created string `json:"created,omitempty"`
	// Release holds the extension-release fields a host is matched on:
	// ID, VERSION_ID, the level and the scope (SYSEXT_LEVEL, …).
	Release map[string]string `json:"release,omitempty"`
	// Sources are the recipe's source URLs (AnnotationSources).
	Sources []string      `json:"sources,omitempty"`
	Arches  []CatalogArch `json:"arches"`
}

// SignatureState says how far v's signature can be trusted, in a catalog
// whose own signature verified (catalogVerified) or not: "yes" (checked
// when the entry was written, and the catalog vouches for it), "claimed"
// (the catalog says so, but nothing checked the catalog), "unchecked" (a
// registry listing found a signature and checked nothing) or "no".
func (v CatalogVersion) SignatureState(catalogVerified bool) string {
	switch {
	case v.Signed && catalogVerified:
		return "yes"
	case v.Signed:
		return "claimed"
	case v.SignatureAttached:
		return "unchecked"
	}
	return "no"
}

// versionFromAnnotations is the catalog version an index's annotations
// describe (without its digest and arches).
func versionFromAnnotations(ann map[string]string) CatalogVersion {
	p := publishedAs(ann)
	v := CatalogVersion{Version: p.version, Tag: tagSafe(p.version), InputsDigest: ann[AnnotationInputsDigest], Created: ann[AnnotationCreated],
		Sources: strings.Fields(ann[AnnotationSources])}
	if c, err := sysext.ClassByName(p.class); err == nil {
		for field, key := range map[string]string{"ID": AnnotationID, "VERSION_ID": AnnotationVersionID, c.LevelField: levelAnnotation(c), c.ScopeField: AnnotationScope} {
			if val := ann[key]; val != "" {
				if v.Release == nil {
					v.Release = map[string]string{}
				}
				v.Release[field] = val
			}
		}
	}
	return v
}

// CatalogArch is one architecture's image of a version.
type CatalogArch struct {
	Arch   string `json:"arch"`
	Digest string `json:"digest"` // of the image file
	Size   int64  `json:"size"`
	// InputsDigest is what the image was baked from (its index entry's
	// org.bakery.sysext.inputs-digest), if known.
	InputsDigest string `json:"inputsDigest,omitempty"`
}

// Published finds the version of extension name whose image for arch
// was baked from inputs (an inputs digest): a build with these inputs
// would give that image again.
func (d CatalogDoc) Published(name, arch, inputs string) (CatalogVersion, bool) {
	for _, e := range d.Extensions {
		if e.Name != name {
			continue
		}
		for _, v := range e.Versions {
			for _, a := range v.Arches {
				if a.Arch == arch && a.InputsDigest == inputs && inputs != "" {
					return v, true
				}
			}
		}
	}
	return CatalogVersion{}, false
}

// CatalogResult is what Catalog found and how.
type CatalogResult struct {
	// Source is "artifact" (NAMESPACE/catalog:latest), "listing"
	// (/v2/_catalog and tag lists) or, with WithoutListing, "none".
	Source string `json:"source"`
	// Verified is true when the catalog artifact's signature was checked
	// with a trusted key, for this namespace and sequence, and it has not
	// expired.
	Verified bool `json:"verified"`
	// Key is the hint of the trusted key that signed it (sign.KeyHint).
	Key     string     `json:"key,omitempty"`
	Digest  string     `json:"digest,omitempty"` // of the catalog manifest
	Catalog CatalogDoc `json:"catalog"`
}

// Catalog artifact kinds, names and bounds.
const (
	// CatalogEntryArtifactType marks an extension's entry manifest.
	CatalogEntryArtifactType = "application/vnd.bakery.catalog.entry.v1"
	// CatalogEntryMediaType is an entry's single layer (CatalogExtension).
	CatalogEntryMediaType types.MediaType = "application/vnd.bakery.catalog.entry.v1+json"
	// DefaultCatalogValidity is how long a signed catalog stays valid
	// unless WithCatalogValidity says otherwise.
	DefaultCatalogValidity = 30 * 24 * time.Hour
	// catalogKind and entryKind are the signature claims' kinds.
	catalogKind = "catalog"
	entryKind   = "catalog-entry"
	// entryTagPrefix + NAME is the tag of an extension's entry.
	entryTagPrefix = "ext."
	// maxCatalogSize bounds a catalog or entry document.
	maxCatalogSize = 64 << 20
)

// catalogRepo is NAMESPACE/catalog of an extension repository.
func catalogRepo(repo name.Repository) name.Repository {
	p := repo.RepositoryStr()
	ns := ""
	if i := strings.LastIndex(p, "/"); i >= 0 {
		ns = p[:i+1]
	}
	return repo.Registry.Repo(ns + "catalog")
}

// catalogClaims are the signature claims of a catalog with sequence seq.
func catalogClaims(crepo name.Repository, seq int64) sign.Claims {
	return sign.Claims{Kind: catalogKind, Name: crepo.RepositoryStr(), Version: strconv.FormatInt(seq, 10)}
}

// entryClaims are the signature claims of extension ext's entry.
func entryClaims(ext string) sign.Claims { return sign.Claims{Kind: entryKind, Name: ext} }

// artifact is a catalog document read from the registry.
type artifact struct {
	data   []byte
	digest v1.Hash
	sig    *signature // nil when not checked
}

// readArtifact fetches the document of kind artifactType under tag; ok is
// false when the tag does not exist. With keys it requires a signature by
// one of them whose claims pass want (a nil want skips the check).
func readArtifact(ctx context.Context, tag name.Tag, artifactType string, mediaType types.MediaType, keys bool, want func(data []byte) (sign.Claims, error), o *options) (a artifact, ok bool, err error) {
	ropts := o.remoteOptions(ctx)
	mb, err := fetchManifest(tag, ropts)
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
		return a, false, nil
	}
	if err != nil {
		return a, false, err
	}
	var m v1.Manifest
	if err := json.Unmarshal(mb.raw, &m); err != nil {
		return a, false, fmt.Errorf("parse %s: %w", tag, err)
	}
	if m.ArtifactType != artifactType || len(m.Layers) != 1 || m.Layers[0].MediaType != mediaType {
		return a, false, fmt.Errorf("%s is not a bakery %s (artifactType %q)", tag, artifactType, m.ArtifactType)
	}
	if m.Layers[0].Size > maxCatalogSize {
		return a, false, fmt.Errorf("%s: document of %d bytes, more than the %d a catalog may have", tag, m.Layers[0].Size, maxCatalogSize)
	}
	l, err := remote.Layer(tag.Context().Digest(m.Layers[0].Digest.String()), ropts...)
	if err != nil {
		return a, false, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return a, false, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxCatalogSize+1)) // go-containerregistry checks the digest at EOF
	if err != nil {
		return a, false, fmt.Errorf("read %s: %w", tag, err)
	}
	a = artifact{data: data, digest: mb.digest}
	if keys {
		claims, err := want(data)
		if err != nil {
			return a, false, fmt.Errorf("%s: %w", tag, err)
		}
		if a.sig, err = verifySignature(ctx, tag.Context(), mb.digest, claims, o); err != nil {
			return a, false, err
		}
	}
	return a, true, nil
}

// readCatalogDoc reads NAMESPACE/catalog:latest; with keys (or, when
// keys is false, nothing) it verifies the signature for crepo and the
// document's own sequence.
func readCatalogDoc(ctx context.Context, crepo name.Repository, keys bool, o *options) (CatalogDoc, artifact, bool, error) {
	var doc CatalogDoc
	a, ok, err := readArtifact(ctx, crepo.Tag("latest"), CatalogArtifactType, CatalogMediaType, keys, func(data []byte) (sign.Claims, error) {
		if err := json.Unmarshal(data, &doc); err != nil {
			return sign.Claims{}, fmt.Errorf("parse catalog: %w", err)
		}
		return catalogClaims(crepo, doc.Sequence), nil
	}, o)
	if err != nil || !ok {
		return CatalogDoc{}, a, ok, err
	}
	if err := json.Unmarshal(a.data, &doc); err != nil {
		return CatalogDoc{}, a, false, fmt.Errorf("parse catalog %s: %w", crepo, err)
	}
	return doc, a, true, nil
}

// Catalog lists the extensions published under target = host[:port][/ns].
// With WithKeys it reads only the signed catalog artifact
// NS/catalog:latest: the signature must verify for this namespace and the
// catalog's sequence, and the catalog must not have expired. Without keys
// it reads the artifact unchecked, or else lists the registry's
// /v2/_catalog and tag lists (GHCR and Docker Hub do not serve it).
func Catalog(ctx context.Context, target string, opts ...Option) (CatalogResult, error) {
	o := makeOptions(opts)
	if err := o.reuseConnections(ctx); err != nil {
		return CatalogResult{}, err
	}
	reg, ns, err := parseNamespace(target, o)
	if err != nil {
		return CatalogResult{}, err
	}
	crepo := reg.Repo(strings.TrimPrefix(ns+"/catalog", "/"))
	keys := len(o.keys) > 0
	doc, a, ok, err := readCatalogDoc(ctx, crepo, keys, o)
	if err != nil {
		return CatalogResult{}, fmt.Errorf("catalog %s: %w", crepo, err)
	}
	switch {
	case ok:
		res := CatalogResult{Source: "artifact", Digest: a.digest.String(), Catalog: doc}
		if keys {
			if err := checkExpiry(doc, time.Now()); err != nil {
				return CatalogResult{}, fmt.Errorf("catalog %s: %w", crepo, err)
			}
			res.Verified, res.Key = true, a.sig.KeyHint
		}
		if res.Catalog.Extensions == nil {
			res.Catalog.Extensions = []CatalogExtension{}
		}
		return res, nil
	case keys:
		return CatalogResult{}, fmt.Errorf("catalog %s: %w: there is no catalog artifact %s:latest, and --key asks for a signed one (push with --key, or run bakery catalog --sign)", crepo, ErrNoSignature, crepo)
	case o.noListing:
		return CatalogResult{Source: "none", Catalog: CatalogDoc{Namespace: strings.TrimSuffix(reg.Name()+"/"+ns, "/"), Extensions: []CatalogExtension{}}}, nil
	}
	doc, err = listNamespace(ctx, reg, ns, o)
	if err != nil {
		return CatalogResult{}, fmt.Errorf("no catalog artifact at %s:latest, and listing the registry failed: %w", crepo, err)
	}
	return CatalogResult{Source: "listing", Catalog: doc}, nil
}

// checkExpiry refuses a catalog past its expiry, or one without any.
func checkExpiry(doc CatalogDoc, now time.Time) error {
	if doc.Expires == "" {
		return fmt.Errorf("%w: it has no expiry (written by an older bakery): re-sign it with bakery catalog --sign", ErrCatalogExpired)
	}
	exp, err := time.Parse(time.RFC3339, doc.Expires)
	if err != nil {
		return fmt.Errorf("expiry %q is not an RFC 3339 time", doc.Expires)
	}
	if now.After(exp) {
		return fmt.Errorf("%w: it expired at %s (sequence %d, updated %s): the registry may be hiding newer versions, or the publisher must re-sign it (bakery catalog --sign)",
			ErrCatalogExpired, doc.Expires, doc.Sequence, doc.Updated)
	}
	return nil
}

// CheckNamespace reports whether target is a registry namespace,
// host[:port][/ns], as Catalog and RefreshCatalog take it, without
// contacting the registry.
func CheckNamespace(target string) error {
	_, _, err := parseNamespace(target, &options{})
	return err
}

// parseNamespace splits target = host[:port][/ns] into the registry and
// the namespace ("" for the registry's root).
func parseNamespace(target string, o *options) (name.Registry, string, error) {
	host, ns, _ := strings.Cut(strings.TrimSuffix(target, "/"), "/")
	reg, err := name.NewRegistry(host, o.nameOptions()...)
	if err != nil {
		return name.Registry{}, "", fmt.Errorf("registry %q: %w (want host[:port][/namespace])", target, err)
	}
	if ns != "" {
		if _, err := name.NewRepository(host+"/"+ns+"/catalog", append(o.nameOptions(), name.StrictValidation)...); err != nil {
			return name.Registry{}, "", fmt.Errorf("namespace %q: %w", ns, err)
		}
	}
	return reg, ns, nil
}

// Namespaces lists the namespaces of the registry at host[:port] that hold
// a catalog artifact (a repository NS/catalog, or catalog for the root),
// from its /v2/_catalog: what a page can show.
func Namespaces(ctx context.Context, host string, opts ...Option) ([]string, error) {
	o := makeOptions(opts)
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	reg, err := name.NewRegistry(host, o.nameOptions()...)
	if err != nil {
		return nil, fmt.Errorf("registry %q: %w (want host[:port])", host, err)
	}
	p, err := remote.NewPuller(o.remoteOptions(ctx)...)
	if err != nil {
		return nil, err
	}
	repos, err := listRepositories(ctx, p, reg)
	if err != nil {
		return nil, fmt.Errorf("list repositories of %s: %w", host, err)
	}
	var out []string
	for _, r := range repos {
		if ns, ok := strings.CutSuffix(r, "catalog"); ok && (ns == "" || strings.HasSuffix(ns, "/")) {
			out = append(out, strings.TrimSuffix(ns, "/"))
		}
	}
	return out, nil
}

// Bounds of a registry listing: a hostile registry can page forever.
const (
	maxListedRepositories = 100_000
	maxListedTags         = 100_000
	listTimeout           = 5 * time.Minute
)

// listNamespace builds a catalog from /v2/_catalog, tag lists and the
// indexes: every repository below ns (every one with ns ""), its version
// tags and their per-arch images. Signatures are not checked here: a
// version only says whether one is attached.
func listNamespace(ctx context.Context, reg name.Registry, ns string, o *options) (CatalogDoc, error) {
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	p, err := remote.NewPuller(o.remoteOptions(ctx)...)
	if err != nil {
		return CatalogDoc{}, err
	}
	repos, err := listRepositories(ctx, p, reg)
	if err != nil {
		return CatalogDoc{}, fmt.Errorf("list repositories: %w", err)
	}
	doc := CatalogDoc{Namespace: strings.TrimSuffix(reg.Name()+"/"+ns, "/"), Extensions: []CatalogExtension{}}
	ropts := o.remoteOptions(ctx)
	tagsLeft := maxListedTags
	for _, r := range repos {
		if ns != "" && !strings.HasPrefix(r, ns+"/") {
			continue
		}
		repo := reg.Repo(r)
		tags, err := listTags(ctx, p, repo, tagsLeft)
		if err != nil {
			return doc, fmt.Errorf("list tags of %s: %w", repo, err)
		}
		tagsLeft -= len(tags)
		ext := CatalogExtension{Repository: repo.Name(), Versions: []CatalogVersion{}}
		for _, t := range tags {
			if t == "latest" || strings.HasPrefix(t, "sha256-") {
				continue
			}
			v, p, err := versionFromIndex(ctx, repo.Tag(t), ropts)
			if err != nil || p.name != repoBase(repo) || tagSafe(p.version) != t {
				continue // not a bakery version tag of this extension
			}
			ext.Name, ext.Class, ext.Description, ext.License = p.name, p.class, p.description, p.license
			ext.Versions = append(ext.Versions, v)
		}
		if len(ext.Versions) > 0 {
			sortVersions(ext.Versions)
			doc.Extensions = append(doc.Extensions, ext)
		}
	}
	return doc, nil
}

// listRepositories pages /v2/_catalog with go-containerregistry's
// Catalogger, at most maxListedRepositories names.
func listRepositories(ctx context.Context, p *remote.Puller, reg name.Registry) ([]string, error) {
	c, err := p.Catalogger(ctx, reg)
	if err != nil {
		return nil, err
	}
	var out []string
	for c.HasNext() {
		page, err := c.Next(ctx)
		if err != nil {
			return nil, err
		}
		if out = append(out, page.Repos...); len(out) > maxListedRepositories {
			return nil, fmt.Errorf("the registry lists more than %d repositories: give a namespace, or publish a catalog artifact", maxListedRepositories)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// listTags pages the tags of repo with go-containerregistry's Lister, at
// most limit of them.
func listTags(ctx context.Context, p *remote.Puller, repo name.Repository, limit int) ([]string, error) {
	l, err := p.Lister(ctx, repo)
	if err != nil {
		return nil, err
	}
	var out []string
	for l.HasNext() {
		page, err := l.Next(ctx)
		if err != nil {
			return nil, err
		}
		if out = append(out, page.Tags...); len(out) > limit {
			return nil, fmt.Errorf("more than %d tags", maxListedTags)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// indexInfo is what versionFromIndex learns about an index besides the
// version.
type indexInfo struct {
	published
	description, license string
}

// versionFromIndex reads one tag's bakery index as a catalog version: the
// image digest and size of each arch (from its manifest), and whether a
// signature is attached (not checked).
func versionFromIndex(ctx context.Context, tag name.Tag, ropts []remote.Option) (CatalogVersion, indexInfo, error) {
	mb, err := fetchManifest(tag, ropts)
	if err != nil {
		return CatalogVersion{}, indexInfo{}, err
	}
	v, info, err := versionOf(ctx, tag.Context(), mb, ropts)
	if err != nil {
		return CatalogVersion{}, indexInfo{}, err
	}
	v.Tag = tag.TagStr()
	if refs, err := remote.Referrers(tag.Context().Digest(mb.digest.String()), ropts...); err == nil {
		if im, err := refs.IndexManifest(); err == nil {
			v.SignatureAttached = slices.ContainsFunc(im.Manifests, maybeBundle)
		}
	}
	return v, info, nil
}

// versionOf reads a fetched bakery index as a catalog version, fetching
// each arch's manifest for its image digest and size.
func versionOf(ctx context.Context, repo name.Repository, mb *manifestBlob, ropts []remote.Option) (CatalogVersion, indexInfo, error) {
	if !mb.mt.IsIndex() {
		return CatalogVersion{}, indexInfo{}, fmt.Errorf("%s is not an index", mb.digest)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(mb.raw, &idx); err != nil {
		return CatalogVersion{}, indexInfo{}, fmt.Errorf("%s is not a bakery extension index", mb.digest)
	}
	if _, ok := classOfArtifact(idx.ArtifactType); !ok {
		return CatalogVersion{}, indexInfo{}, fmt.Errorf("%s is not a bakery extension index", mb.digest)
	}
	info := indexInfo{published: publishedAs(idx.Annotations), description: idx.Annotations[AnnotationDescription], license: idx.Annotations[AnnotationLicenses]}
	v := versionFromAnnotations(idx.Annotations)
	v.Digest = mb.digest.String()
	for _, d := range idx.Manifests {
		m, err := fetchManifest(repo.Digest(d.Digest.String()), ropts)
		if err != nil {
			return CatalogVersion{}, indexInfo{}, err
		}
		im, err := parseImageManifest(m)
		if err != nil {
			return CatalogVersion{}, indexInfo{}, err
		}
		v.Arches = append(v.Arches, CatalogArch{Arch: d.Annotations[AnnotationArchitecture], Digest: im.Layers[0].Digest.String(), Size: im.Layers[0].Size,
			InputsDigest: d.Annotations[AnnotationInputsDigest]})
	}
	return v, info, nil
}

// sortVersions orders versions the way systemd compares them, oldest first.
func sortVersions(vs []CatalogVersion) {
	slices.SortStableFunc(vs, func(a, b CatalogVersion) int { return sysext.CompareVersions(a.Version, b.Version) })
}
