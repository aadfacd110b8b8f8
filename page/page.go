// Package page renders a namespace's catalog as a web page: a listing of
// every extension (filtered by name and architecture on the server, so it
// works without JavaScript) and a page per extension with its versions,
// digests, provenance, extension-release fields and what a node needs to
// use it. It reads the signed catalog artifact through the registry API
// only (package registry), so it works in front of any registry, and it
// says whether the catalog's signature verified and with which key. It is
// served beside the registry (Handler, bakery registry serve) or written
// as static files (Export, bakery catalog --html) for any web host; it
// loads nothing from elsewhere, so it works air-gapped.
//
// A listing and its pages lay out alike served and exported: index.html,
// ext/NAME.html and assets/ in one directory, linked relatively.
package page

import (
	"cmp"
	"context"
	"crypto"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sysext-bakery/bakery/internal/bytesize"
	"github.com/sysext-bakery/bakery/merge"
	"github.com/sysext-bakery/bakery/registry"
	"github.com/sysext-bakery/bakery/sysext"
)

//go:embed templates/*.html assets/*
var files embed.FS

// templates are the page's views: listing.html, detail.html and
// namespaces.html, sharing layout.html.
var templates = template.Must(template.New("").Funcs(template.FuncMap{
	"size": bytesize.Human,
	"view": func(c *Catalog, title, root string) frame {
		return frame{Title: title, Root: root, Namespace: c.Namespace, Static: c.Static}
	},
}).ParseFS(files, "templates/*.html"))

// Source says where a page's catalog comes from.
type Source struct {
	// Namespace is host[:port]/ns, as bakery catalog takes it.
	Namespace string
	// Keys are the trusted public keys: the catalog is shown as verified
	// when one of them signed it.
	Keys []crypto.PublicKey
	// Options are the registry client's options (e.g. WithInsecure).
	Options []registry.Option
}

// Catalog is a namespace's catalog as the page shows it.
type Catalog struct {
	// Namespace is host[:port]/ns, as nodes reach it (snippets use it).
	Namespace string
	// Insecure is true when nodes reach the registry over plain http.
	Insecure bool
	// Verified is true when a trusted key's signature of the catalog
	// checked out (for this namespace, not expired); Key names the key.
	Verified bool
	Key      string
	// Warning, when set, says why the catalog is not shown as verified.
	Warning string
	// Listing is true when the registry has no catalog artifact and the
	// catalog was made from the registry's listing.
	Listing bool
	// Sequence, Updated and Expires are the signed catalog's.
	Sequence         int64
	Updated, Expires string
	// Extensions are sorted by name.
	Extensions []Extension
	// Arches are every architecture of any version, for the filter.
	Arches []string
	// Generated is when the page was made.
	Generated string
	// Static is true in exported files (the listing filters in the
	// browser only).
	Static bool
	// Query and Arch are the listing's filter; Shown counts the
	// extensions it lets through.
	Query, Arch string
	Shown       int
}

// Extension is one extension of the catalog.
type Extension struct {
	Name, Class, Description, License, Repository string
	// Latest is the newest version (systemd's version order).
	Latest Version
	// Versions are all versions, newest first.
	Versions []Version
	// Hidden is true when the listing's filter leaves it out.
	Hidden bool
}

// Version is one published version.
type Version struct {
	registry.CatalogVersion
	// ArchNames are the architectures it has images for.
	ArchNames []string
	// Size is the size of its images, summed.
	Size int64
	// Signed is CatalogVersion.SignatureState in this catalog.
	Signed string
	// ReleaseFields are the extension-release fields a host is matched
	// on (ID, VERSION_ID, the level and scope), sorted by key.
	ReleaseFields []Field
}

// Field is one KEY=VALUE of an extension-release file.
type Field struct{ Key, Value string }

// Load reads the catalog of src and checks its signature with src.Keys.
// When that fails, or no key is given, the catalog is still read,
// unverified, and Warning says why; a namespace without catalog artifact
// is listed from the registry.
func Load(ctx context.Context, src Source) (*Catalog, error) {
	res, verr := registry.Catalog(ctx, src.Namespace, append(slices.Clone(src.Options), registry.WithKeys(src.Keys...))...)
	warning := ""
	switch {
	case verr != nil && len(src.Keys) == 0:
		return nil, verr
	case verr != nil:
		var err error
		if res, err = registry.Catalog(ctx, src.Namespace, src.Options...); err != nil {
			return nil, errors.Join(verr, err)
		}
		warning = "This catalog's signature does not verify with the trusted keys, so nothing on this page is vouched for: " + verr.Error()
	case res.Source == "listing":
		warning = "This registry has no catalog artifact: the page lists its repositories, and no signature was checked."
	case len(src.Keys) == 0:
		warning = "No trusted key was given, so the catalog's signature was not checked."
	}
	return newCatalog(src.Namespace, res, warning), nil
}

// newCatalog turns a registry catalog into what the page shows.
// Extensions whose names systemd would not take are left out (a hostile
// catalog must not name files of an export), and the warning says so.
func newCatalog(namespace string, res registry.CatalogResult, warning string) *Catalog {
	doc := res.Catalog
	c := &Catalog{Namespace: namespace, Verified: res.Verified, Key: res.Key, Warning: warning, Listing: res.Source == "listing",
		Sequence: doc.Sequence, Updated: doc.Updated, Expires: doc.Expires, Generated: time.Now().UTC().Format(time.RFC3339)}
	arches := map[string]bool{}
	var dropped, badTags []string
	for _, e := range doc.Extensions {
		class := cmp.Or(e.Class, sysext.Sysext.Name)
		if _, err := sysext.ClassByName(class); sysext.CheckName(e.Name) != nil || err != nil {
			dropped = append(dropped, fmt.Sprintf("%q", e.Name))
			continue
		}
		x := Extension{Name: e.Name, Class: class, Description: e.Description, License: e.License, Repository: e.Repository}
		for _, cv := range e.Versions {
			if registry.CheckTag(cv.Tag) != nil {
				// The latest tag goes into a command to copy.
				badTags = append(badTags, fmt.Sprintf("%q", e.Name+":"+cv.Tag))
				continue
			}
			v := newVersion(cv, res.Verified)
			for _, a := range v.ArchNames {
				arches[a] = true
			}
			x.Versions = append(x.Versions, v)
		}
		slices.SortStableFunc(x.Versions, func(a, b Version) int { return sysext.CompareVersions(b.Version, a.Version) })
		if len(x.Versions) > 0 {
			x.Latest = x.Versions[0]
		}
		c.Extensions = append(c.Extensions, x)
	}
	if len(dropped) > 0 {
		c.Warning = strings.TrimSpace(c.Warning + " The catalog names extensions that are not valid extension names or of no known class, left out: " + strings.Join(dropped, ", ") + ".")
	}
	if len(badTags) > 0 {
		c.Warning = strings.TrimSpace(c.Warning + " The catalog lists versions under tags that are not valid OCI tags, left out: " + strings.Join(badTags, ", ") + ".")
	}
	slices.SortFunc(c.Extensions, func(a, b Extension) int { return strings.Compare(a.Name, b.Name) })
	c.Arches = slices.Sorted(maps.Keys(arches))
	c.Shown = len(c.Extensions)
	return c
}

// newVersion is a catalog version in a catalog whose signature verified
// or not.
func newVersion(v registry.CatalogVersion, verified bool) Version {
	out := Version{CatalogVersion: v, Signed: v.SignatureState(verified)}
	for _, a := range v.Arches {
		out.ArchNames = append(out.ArchNames, a.Arch)
		out.Size += a.Size
	}
	slices.Sort(out.ArchNames)
	for _, k := range slices.Sorted(maps.Keys(v.Release)) {
		out.ReleaseFields = append(out.ReleaseFields, Field{k, v.Release[k]})
	}
	return out
}

// Filter returns a copy of c whose listing shows only the extensions whose
// name or description holds query (in any case) and whose latest version
// has an image for arch ("" for any).
func (c *Catalog) Filter(query, arch string) *Catalog {
	f := *c
	f.Query, f.Arch, f.Shown = query, arch, 0
	f.Extensions = slices.Clone(c.Extensions)
	q := strings.ToLower(strings.TrimSpace(query))
	for i, e := range f.Extensions {
		match := q == "" || strings.Contains(strings.ToLower(e.Name), q) || strings.Contains(strings.ToLower(e.Description), q)
		if arch != "" {
			match = match && slices.Contains(e.Latest.ArchNames, arch)
		}
		f.Extensions[i].Hidden = !match
		if match {
			f.Shown++
		}
	}
	return &f
}

// Find returns the extension called name.
func (c *Catalog) Find(name string) (Extension, bool) {
	i := slices.IndexFunc(c.Extensions, func(e Extension) bool { return e.Name == name })
	if i < 0 {
		return Extension{}, false
	}
	return c.Extensions[i], true
}

// detail is what an extension's page renders.
type detail struct {
	*Catalog
	Ext      Extension
	Snippets []Snippet
}

// Snippet is a block a user copies to use an extension.
type Snippet struct {
	// ID names it in the page (an HTML id), Title says where it goes.
	ID, Title string
	// Text is what is copied.
	Text string
}

// Snippets are what a node needs to use e: a sync.yaml for it and a
// bakery pull command of its latest version. The sync.yaml is what bakery
// sync reads (merge.Config), with the catalog required when the page's
// catalog verified.
func (c *Catalog) Snippets(e Extension) []Snippet {
	cfg := merge.Config{Registry: c.Namespace, Keys: []string{"/etc/bakery/release.pub"}, Insecure: c.Insecure,
		Extensions: []merge.ConfigExtension{{Name: e.Name, Tag: "latest"}}}
	cfg.Policy.RequireSignature = true
	cfg.Policy.RequireCatalog = c.Verified
	if e.Class != sysext.Sysext.Name {
		cfg.Extensions[0].Class = e.Class
	}
	y, err := yaml.Marshal(cfg)
	if err != nil {
		panic(err) // a struct of strings and bools always marshals
	}
	pull := "bakery pull " + c.Namespace + "/" + e.Name + ":" + e.Latest.Tag + " --key release.pub"
	if e.Class != sysext.Sysext.Name {
		pull += " --class " + e.Class
	}
	if c.Insecure {
		pull += " --insecure"
	}
	return []Snippet{
		{ID: "sync-yaml", Title: "/etc/bakery/sync.yaml", Text: string(y)},
		{ID: "pull", Title: "bakery pull", Text: pull + "\n"},
	}
}

// RenderListing writes the listing page.
func (c *Catalog) RenderListing(w io.Writer) error {
	return templates.ExecuteTemplate(w, "listing.html", c)
}

// RenderDetail writes extension e's page.
func (c *Catalog) RenderDetail(w io.Writer, e Extension) error {
	return templates.ExecuteTemplate(w, "detail.html", detail{Catalog: c, Ext: e, Snippets: c.Snippets(e)})
}

// frame is what every page's head needs: its title, the way back to the
// listing's directory (Root: "" or "../"), the namespace, and whether the
// page is a static file.
type frame struct {
	Title, Root, Namespace string
	Static                 bool
}
