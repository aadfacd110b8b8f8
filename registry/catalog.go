package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
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

// CatalogDoc is the catalog artifact's content: every extension published
// in a namespace.
type CatalogDoc struct {
	Namespace  string             `json:"namespace"`
	Updated    string             `json:"updated"`
	Extensions []CatalogExtension `json:"extensions"`
}

// CatalogExtension is one extension (repository) of a catalog.
type CatalogExtension struct {
	Name        string           `json:"name"`
	Repository  string           `json:"repository"`
	Description string           `json:"description,omitempty"`
	Versions    []CatalogVersion `json:"versions"`
}

// CatalogVersion is one published version.
type CatalogVersion struct {
	Version string `json:"version"`
	Tag     string `json:"tag"`
	Digest  string `json:"digest"`
	Signed  bool   `json:"signed"`
	// InputsDigest is the index's org.bakery.sysext.inputs-digest, if any.
	InputsDigest string        `json:"inputsDigest,omitempty"`
	Arches       []CatalogArch `json:"arches"`
}

// CatalogArch is one architecture's image of a version.
type CatalogArch struct {
	Arch   string `json:"arch"`
	Digest string `json:"digest"` // of the image file
	Size   int64  `json:"size"`
}

// CatalogResult is what Catalog found and how.
type CatalogResult struct {
	// Source is "artifact" (NAMESPACE/catalog:latest) or "listing"
	// (/v2/_catalog and tag lists).
	Source string `json:"source"`
	// Verified is true when the catalog artifact's signature was checked
	// with a trusted key.
	Verified bool       `json:"verified"`
	Catalog  CatalogDoc `json:"catalog"`
}

// catalogRepo is NAMESPACE/catalog of an extension repository.
func catalogRepo(repo name.Repository) name.Repository {
	p := repo.RepositoryStr()
	ns := ""
	if i := strings.LastIndex(p, "/"); i >= 0 {
		ns = p[:i+1]
	}
	return repo.Registry.Repo(ns + "catalog")
}

// readCatalog fetches NAMESPACE/catalog:latest; ok is false when there is
// none.
func readCatalog(ctx context.Context, crepo name.Repository, o *options) (doc CatalogDoc, mdigest v1.Hash, ok bool, err error) {
	ropts := o.remoteOptions(ctx)
	mb, err := fetchManifest(crepo.Tag("latest"), ropts)
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
		return doc, mdigest, false, nil
	}
	if err != nil {
		return doc, mdigest, false, err
	}
	var m v1.Manifest
	if err := json.Unmarshal(mb.raw, &m); err != nil {
		return doc, mdigest, false, fmt.Errorf("parse %s:latest: %w", crepo, err)
	}
	if m.ArtifactType != CatalogArtifactType || len(m.Layers) != 1 || m.Layers[0].MediaType != CatalogMediaType {
		return doc, mdigest, false, fmt.Errorf("%s:latest is not a bakery catalog (artifactType %q)", crepo, m.ArtifactType)
	}
	l, err := remote.Layer(crepo.Digest(m.Layers[0].Digest.String()), ropts...)
	if err != nil {
		return doc, mdigest, false, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return doc, mdigest, false, err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc) // verified against its digest by go-containerregistry
	if err != nil {
		return doc, mdigest, false, fmt.Errorf("read catalog %s: %w", crepo, err)
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return doc, mdigest, false, fmt.Errorf("parse catalog %s: %w", crepo, err)
	}
	return doc, mb.digest, true, nil
}

// mergeCatalog puts one pushed version into doc, replacing an older entry
// of the same version, and keeps the lists sorted.
func mergeCatalog(doc CatalogDoc, res PushResult, annotations map[string]string) CatalogDoc {
	description := annotations[AnnotationDescription]
	v := CatalogVersion{Version: res.Version, Tag: res.Tags[0], Digest: res.IndexDigest, Signed: res.Signature != "",
		InputsDigest: annotations[AnnotationInputsDigest]}
	for _, img := range res.Images {
		v.Arches = append(v.Arches, CatalogArch{Arch: img.Arch, Digest: img.LayerDigest, Size: img.Size})
	}
	i := sort.Search(len(doc.Extensions), func(i int) bool { return doc.Extensions[i].Name >= res.Name })
	if i == len(doc.Extensions) || doc.Extensions[i].Name != res.Name {
		doc.Extensions = append(doc.Extensions[:i], append([]CatalogExtension{{Name: res.Name}}, doc.Extensions[i:]...)...)
	}
	ext := &doc.Extensions[i]
	ext.Repository = res.Repository
	if description != "" {
		ext.Description = description
	}
	vs := ext.Versions[:0]
	for _, old := range ext.Versions {
		if old.Version != v.Version {
			vs = append(vs, old)
		}
	}
	ext.Versions = append(vs, v)
	sort.Slice(ext.Versions, func(a, b int) bool {
		return sysext.CompareVersions(ext.Versions[a].Version, ext.Versions[b].Version) < 0
	})
	return doc
}

// updateCatalog adds a push to NAMESPACE/catalog:latest, signing the new
// catalog manifest when a signer is set. Concurrent pushes to one
// namespace may lose each other's entry; the last writer wins.
func updateCatalog(ctx context.Context, repo name.Repository, res PushResult, annotations map[string]string, o *options) (v1.Hash, error) {
	crepo := catalogRepo(repo)
	doc, _, _, err := readCatalog(ctx, crepo, o)
	if err != nil {
		return v1.Hash{}, err
	}
	doc = mergeCatalog(doc, res, annotations)
	doc.Namespace = strings.TrimSuffix(crepo.Name(), "/catalog")
	doc.Updated = time.Now().UTC().Format(time.RFC3339)
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return v1.Hash{}, err
	}
	ropts := o.remoteOptions(ctx)
	emptyLayer := static.NewLayer(emptyJSON, emptyMediaType)
	docLayer := static.NewLayer(data, CatalogMediaType)
	for _, l := range []v1.Layer{emptyLayer, docLayer} {
		if err := remote.WriteLayer(crepo, l, ropts...); err != nil {
			return v1.Hash{}, fmt.Errorf("push catalog %s: %w", crepo, err)
		}
	}
	emptyDigest, _ := emptyLayer.Digest()
	docDigest, _ := docLayer.Digest()
	m, err := newRawManifest(v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  CatalogArtifactType,
		Config:        v1.Descriptor{MediaType: emptyMediaType, Digest: emptyDigest, Size: int64(len(emptyJSON))},
		Layers:        []v1.Descriptor{{MediaType: CatalogMediaType, Digest: docDigest, Size: int64(len(data))}},
		Annotations:   map[string]string{AnnotationCreated: doc.Updated},
	}, types.OCIManifestSchema1)
	if err != nil {
		return v1.Hash{}, err
	}
	desc := m.descriptor()
	if err := remote.Put(crepo.Digest(desc.Digest.String()), m, ropts...); err != nil {
		return v1.Hash{}, fmt.Errorf("push catalog %s: %w", crepo, err)
	}
	if o.signer != nil {
		if _, err := signManifest(ctx, crepo, desc, o); err != nil {
			return v1.Hash{}, err
		}
	}
	if err := remote.Put(crepo.Tag("latest"), m, ropts...); err != nil {
		return v1.Hash{}, fmt.Errorf("tag %s:latest: %w", crepo, err)
	}
	return desc.Digest, nil
}

// Catalog lists the extensions published under target = host[:port][/ns]:
// from the catalog artifact ns/catalog:latest (its signature checked when
// WithKeys is given), else from the registry's /v2/_catalog and tag lists.
func Catalog(ctx context.Context, target string, opts ...Option) (CatalogResult, error) {
	o := makeOptions(opts)
	if err := o.reuseConnections(ctx); err != nil {
		return CatalogResult{}, err
	}
	host, ns, _ := strings.Cut(strings.TrimSuffix(target, "/"), "/")
	reg, err := name.NewRegistry(host, o.nameOptions()...)
	if err != nil {
		return CatalogResult{}, fmt.Errorf("registry %q: %w (want host[:port][/namespace])", target, err)
	}
	crepoName := "catalog"
	if ns != "" {
		crepoName = ns + "/catalog"
	}
	crepo := reg.Repo(crepoName)
	doc, d, ok, err := readCatalog(ctx, crepo, o)
	if err != nil {
		return CatalogResult{}, err
	}
	if ok {
		res := CatalogResult{Source: "artifact", Catalog: doc}
		if len(o.keys) > 0 {
			if _, err := verifySignature(ctx, crepo, d, o); err != nil {
				return CatalogResult{}, fmt.Errorf("catalog %s: %w", crepo, err)
			}
			res.Verified = true
		}
		return res, nil
	}
	doc, err = listNamespace(ctx, reg, ns, o)
	if err != nil {
		return CatalogResult{}, fmt.Errorf("no catalog artifact at %s:latest, and listing the registry failed: %w", crepo, err)
	}
	return CatalogResult{Source: "listing", Catalog: doc}, nil
}

// listNamespace builds a catalog from /v2/_catalog, tag lists and index
// annotations; GHCR and Docker Hub do not serve _catalog.
func listNamespace(ctx context.Context, reg name.Registry, ns string, o *options) (CatalogDoc, error) {
	c, err := o.client(ctx, reg, "registry:catalog:*")
	if err != nil {
		return CatalogDoc{}, err
	}
	repos, err := listPaged(ctx, c, registryURL(reg, "/v2/_catalog?n=100"), "repositories")
	if err != nil {
		return CatalogDoc{}, fmt.Errorf("list repositories: %w", err)
	}
	doc := CatalogDoc{Namespace: strings.TrimSuffix(reg.Name()+"/"+ns, "/")}
	ropts := o.remoteOptions(ctx)
	for _, r := range repos {
		if ns != "" && !strings.HasPrefix(r, ns+"/") || strings.Contains(strings.TrimPrefix(r, ns+"/"), "/") {
			continue
		}
		repo := reg.Repo(r)
		tc, err := o.client(ctx, reg, repo.Scope(transport.PullScope))
		if err != nil {
			return doc, err
		}
		tags, err := listPaged(ctx, tc, registryURL(reg, "/v2/"+r+"/tags/list?n=100"), "tags")
		if err != nil {
			return doc, fmt.Errorf("list tags of %s: %w", repo, err)
		}
		ext := CatalogExtension{Repository: repo.Name()}
		for _, t := range tags {
			if t == "latest" || strings.HasPrefix(t, "sha256-") {
				continue
			}
			v, desc, ok := versionFromIndex(repo.Tag(t), ropts)
			if !ok {
				continue
			}
			ext.Name, ext.Description = desc[AnnotationName], desc[AnnotationDescription]
			ext.Versions = append(ext.Versions, v)
		}
		if len(ext.Versions) > 0 {
			doc.Extensions = append(doc.Extensions, ext)
		}
	}
	return doc, nil
}

// versionFromIndex reads one tag's index as a catalog version; ok is
// false when the tag is not a bakery extension index.
func versionFromIndex(tag name.Tag, ropts []remote.Option) (CatalogVersion, map[string]string, bool) {
	mb, err := fetchManifest(tag, ropts)
	if err != nil || !mb.mt.IsIndex() {
		return CatalogVersion{}, nil, false
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(mb.raw))
	if err != nil || idx.ArtifactType != ArtifactType {
		return CatalogVersion{}, nil, false
	}
	v := CatalogVersion{Version: idx.Annotations[AnnotationVersion], Tag: tag.TagStr(), Digest: mb.digest.String(),
		InputsDigest: idx.Annotations[AnnotationInputsDigest]}
	for _, d := range idx.Manifests {
		v.Arches = append(v.Arches, CatalogArch{Arch: d.Annotations[AnnotationArchitecture], Size: d.Size, Digest: d.Digest.String()})
	}
	if refs, err := remote.Referrers(tag.Context().Digest(mb.digest.String()), ropts...); err == nil {
		if im, err := refs.IndexManifest(); err == nil {
			for _, r := range im.Manifests {
				v.Signed = v.Signed || maybeBundle(r)
			}
		}
	}
	return v, idx.Annotations, true
}

// linkNextRE finds the next page in a Link header.
var linkNextRE = regexp.MustCompile(`<([^>]+)>\s*;\s*rel="?next"?`)

// maxPages bounds a paged listing.
const maxPages = 10000

// listPaged GETs a distribution-spec list (/v2/_catalog, tags/list) and
// follows its Link headers, returning the union of the JSON array field.
// Servers that ignore n (one big page) or last (the same page again) end
// the listing instead of looping.
func listPaged(ctx context.Context, c *http.Client, first, field string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	next := first
	for page := 0; next != "" && page < maxPages; page++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, next, nil)
		if err != nil {
			return nil, err
		}
		resp, err := c.Do(req)
		if err != nil {
			return nil, err
		}
		var body map[string]json.RawMessage
		err = transport.CheckError(resp, http.StatusOK)
		if err == nil {
			err = json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&body)
		}
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("GET %s: %w", next, err)
		}
		var items []string
		if raw, ok := body[field]; ok && string(raw) != "null" {
			if err := json.Unmarshal(raw, &items); err != nil {
				return nil, fmt.Errorf("GET %s: field %q: %w", next, field, err)
			}
		}
		added := 0
		for _, it := range items {
			if !seen[it] {
				seen[it] = true
				out = append(out, it)
				added++
			}
		}
		next = ""
		if m := linkNextRE.FindStringSubmatch(resp.Header.Get("Link")); m != nil && added > 0 {
			u, err := url.Parse(m[1])
			if err != nil {
				return nil, fmt.Errorf("GET %s: Link header: %w", req.URL, err)
			}
			next = req.URL.ResolveReference(u).String()
		}
	}
	sort.Strings(out)
	return out, nil
}
