package recipes

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"text/template"
	"text/template/parse"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/sysext-bakery/bakery/sysext"
)

// Build is a recipe expanded for one version and architecture (and, for
// a kernel-bound recipe, one OS release): every template filled in and
// every value checked.
type Build struct {
	Recipe *Recipe
	// Version is the version built; Arch its systemd ARCHITECTURE name,
	// GoArch the matching GOARCH and UnameArch the kernel's name (uname -m).
	Version, Arch, GoArch, UnameArch string
	// OS is the OS release a kernel-bound recipe is built for; zero for
	// the others.
	OS OS
	// ImageVersion is the version the image is published as (its file
	// name, SYSEXT_VERSION_ID, its registry tag): Version, or for a
	// kernel-bound recipe VERSION-OSID-OSVERSION, so that the images of
	// one version for several OS releases do not take each other's name
	// (as Talos names its kernel-module extensions).
	ImageVersion string
	// Release is the recipe's release section with its templates filled.
	Release Release
	Sources []BuildSource
}

// OS is the OS release a kernel-bound recipe is built for (bake --os ID
// --os-version V): {{.OSID}} and {{.OSVersion}} in its templates. Such an
// image matches that release only (its release.id and version-id name it).
type OS struct {
	ID, Version string
}

// Target says what one Build is for.
type Target struct {
	// Version is the version to build; "" means the recipe's own.
	Version string
	// Arch is a systemd architecture name from the recipe's arches.
	Arch string
	// OS is required by kernel-bound recipes and refused by the others.
	OS OS
}

// BuildSource is one source of a Build, ready to fetch.
type BuildSource struct {
	Kind SourceKind
	URL  string
	// SHA256 is the lowercase hex sha256 of the file at URL for this arch,
	// or "" when SHA256URL names a file holding it (see ParseSHA256File).
	SHA256    string
	SHA256URL string
	// OCI is a container image reference pinned by digest.
	OCI string
	// FilesDir is the absolute folder of a files source, inside the
	// recipe's folder; for a recipe with an FS it only says where the tree
	// lives in bakery's source, for messages, and FilesFS holds the tree.
	FilesDir string
	FilesFS  fs.FS
	Install  *Install
	Extract  *Extract
	// Line is where the source starts in the recipe file; Index is its
	// 0-based position in Recipe.Sources (messages count from 1).
	Line  int
	Index int
	// GoArch is the build's: an oci source takes the image for the
	// platform linux/GoArch.
	GoArch string
}

// templateVars are the only names a template may use; osVars are those
// that make a recipe kernel-bound.
var (
	templateVars = []string{"Version", "Arch", "GoArch", "UnameArch", "OSID", "OSVersion"}
	osVars       = []string{"OSID", "OSVersion"}
)

// Expand fills in the recipe's templates for one version and arch (a
// systemd name from the recipe's arches) and checks the results. An empty
// version means the recipe's own; with neither it is an error. A
// kernel-bound recipe needs ExpandFor.
func (r *Recipe) Expand(version, arch string) (*Build, error) {
	return r.ExpandFor(Target{Version: version, Arch: arch})
}

// ExpandFor is Expand for a target that may name an OS release.
func (r *Recipe) ExpandFor(t Target) (*Build, error) {
	version, arch := t.Version, t.Arch
	switch bound := r.KernelBound(); {
	case bound && (t.OS.ID == "" || t.OS.Version == ""):
		return nil, &Error{Path: r.Path, Err: errors.New("the recipe is kernel-bound (it uses {{.OSID}} or {{.OSVersion}}): pass --os ID --os-version VERSION, e.g. --os flatcar --os-version 4081.2.0")}
	case !bound && t.OS != (OS{}):
		return nil, &Error{Path: r.Path, Err: errors.New("--os and --os-version are for kernel-bound recipes; this one uses neither {{.OSID}} nor {{.OSVersion}}")}
	}
	for _, v := range []string{t.OS.ID, t.OS.Version} {
		if v != "" {
			if err := checkOSReleaseValue(v); err != nil {
				return nil, &Error{Path: r.Path, Err: fmt.Errorf("--os/--os-version: %w", err)}
			}
		}
	}
	if version == "" {
		version = r.Version
	}
	if version == "" {
		return nil, &Error{Path: r.Path, Err: errors.New("no version: the recipe has no version: key and none was given; pass --version")}
	}
	if err := checkVersion(version); err != nil {
		return nil, &Error{Path: r.Path, Err: fmt.Errorf("version: %w", err)}
	}
	a, err := lookupArch(arch)
	if err != nil {
		return nil, &Error{Path: r.Path, Err: err}
	}
	if !slices.Contains(r.Arches, arch) {
		return nil, &Error{Path: r.Path, Err: fmt.Errorf("the recipe does not build for %s (arches: %s); add it to arches", arch, strings.Join(r.Arches, ", "))}
	}
	dir, err := filepath.Abs(r.Dir())
	if err != nil {
		return nil, &Error{Path: r.Path, Err: fmt.Errorf("find the recipe's folder: %w", err)}
	}
	b, errs := r.expand(dir, version, a, t.OS)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return b, nil
}

// expand fills in the templates of the release section and of every
// source, recipeDir being the recipe's folder made absolute, and returns
// the problems found.
func (r *Recipe) expand(recipeDir, version string, arch sysext.Arch, os OS) (*Build, []error) {
	uname := arch.Uname
	x := expander{r: r, dir: recipeDir, vars: map[string]string{"Version": version, "Arch": arch.Name, "GoArch": arch.GoArch,
		"UnameArch": uname, "OSID": os.ID, "OSVersion": os.Version}}
	b := &Build{Recipe: r, Version: version, ImageVersion: version, Arch: arch.Name, GoArch: arch.GoArch, UnameArch: uname, OS: os, Release: x.release()}
	if os != (OS{}) {
		b.ImageVersion = version + "-" + os.ID + "-" + os.Version
	}
	for i := range r.Sources {
		b.Sources = append(b.Sources, x.source(&r.Sources[i], i))
	}
	return b, x.errs
}

// release fills in the templates of the release section.
func (x *expander) release() Release {
	rel := x.r.Release
	for _, f := range []struct {
		key string
		v   *string
	}{{"id", &rel.ID}, {"version-id", &rel.VersionID}, {x.r.ImageClass().Name + "-level", &rel.Level}} {
		if *f.v == "" {
			continue
		}
		v, err := fill("release."+f.key, *f.v, x.vars)
		if err == nil {
			err = checkOSReleaseValue(v)
		}
		if err != nil {
			x.errs = append(x.errs, &Error{Path: x.r.Path, Line: x.r.ReleaseLine, Err: fmt.Errorf("release.%s: %w", f.key, err)})
		}
		*f.v = v
	}
	return rel
}

// KernelBound tells whether the recipe names an OS release in a template
// ({{.OSID}}, {{.OSVersion}}): its images then match that release only.
func (r *Recipe) KernelBound() bool {
	fields := []string{r.Release.ID, r.Release.VersionID, r.Release.Level}
	for _, s := range r.Sources {
		fields = append(fields, s.URL, s.SHA256URL, s.OCI)
	}
	for _, f := range fields {
		for _, v := range osVars {
			if strings.Contains(f, "."+v) && strings.Contains(f, "{{") {
				return true
			}
		}
	}
	return false
}

// expander expands the sources of one recipe for one set of template
// variables, collecting every problem.
type expander struct {
	r    *Recipe
	dir  string // the recipe's folder, absolute
	vars map[string]string
	errs []error
}

// source expands source i.
func (x *expander) source(s *Source, i int) BuildSource {
	b := BuildSource{Kind: s.Kind(), Line: s.Line, Index: i, GoArch: x.vars["GoArch"]}
	where := fmt.Sprintf("source %d", i+1)
	// get expands the template text of the field key (lineKey locates it)
	// and checks the result; it returns "" after recording a problem.
	get := func(key, lineKey, text string, check func(string) error) string {
		if text == "" {
			return ""
		}
		v, err := fill(key, text, x.vars)
		if err == nil && check != nil {
			err = check(v)
		}
		if err != nil {
			x.errs = append(x.errs, &Error{Path: x.r.Path, Line: s.KeyLine(lineKey), Err: fmt.Errorf("%s %s: %w", where, key, err)})
			return ""
		}
		return v
	}
	b.URL = get("url", "url", s.URL, checkURL)
	b.SHA256URL = get("sha256-url", "sha256-url", s.SHA256URL, checkURL)
	b.OCI = get("oci", "oci", s.OCI, checkOCI)
	if rel := get("files", "files", s.Files, checkLocal); rel != "" {
		b.FilesDir = filepath.Join(x.dir, rel)
		if x.r.FS != nil {
			b.FilesDir = filepath.Join(x.r.Dir(), rel)
			sub, err := fs.Sub(x.r.FS, path.Clean(filepath.ToSlash(rel)))
			if err != nil {
				x.errs = append(x.errs, &Error{Path: x.r.Path, Line: s.KeyLine("files"), Err: fmt.Errorf("%s files: %w", where, err)})
			}
			b.FilesFS = sub
		}
	}
	if s.SHA256 != nil {
		arch := x.vars["Arch"]
		h, ok := s.SHA256[arch]
		if !ok {
			h, ok = s.SHA256["*"]
		}
		if !ok {
			x.errs = append(x.errs, &Error{Path: x.r.Path, Line: s.KeyLine("sha256"), Err: missingHash(where+" sha256", arch)})
		}
		b.SHA256 = h
	}
	if s.Install != nil {
		b.Install = &Install{Mode: s.Install.Mode, To: get("install.to", "install.to", s.Install.To, func(v string) error { return checkPath(x.r.ImageClass(), v, false) })}
	}
	if s.Extract != nil {
		b.Extract = &Extract{StripComponents: s.Extract.StripComponents, Mode: s.Extract.Mode, To: get("extract.to", "extract.to", s.Extract.To, func(v string) error { return checkPath(x.r.ImageClass(), v, true) })}
		for j, p := range s.Extract.Include {
			b.Extract.Include = append(b.Extract.Include, get("extract.include", fmt.Sprintf("extract.include.%d", j), p, checkPattern))
		}
	}
	if b.Kind == 0 {
		x.errs = append(x.errs, &Error{Path: x.r.Path, Line: s.Line, Err: fmt.Errorf("%s has none of url, oci or files", where)})
	}
	return b
}

// KeyLine returns the line of key's value in the recipe file ("url",
// "sha256-url", "install.to", "extract.include.0", …), or where the source
// starts when the key is absent.
func (s *Source) KeyLine(key string) int {
	if l := s.lines[key]; l != 0 {
		return l
	}
	return s.Line
}

// fill executes one template field, which may only print templateVars.
func fill(field, text string, vars map[string]string) (string, error) {
	t, err := template.New(field).Option("missingkey=error").Parse(text)
	if err != nil {
		return "", err
	}
	for _, n := range t.Root.Nodes {
		if err := checkTemplateNode(n); err != nil {
			return "", err
		}
	}
	var out strings.Builder
	if err := t.Execute(&out, vars); err != nil {
		return "", err
	}
	return out.String(), nil
}

// checkTemplateNode allows text and actions that print one variable.
func checkTemplateNode(n parse.Node) error {
	switch n := n.(type) {
	case *parse.TextNode:
		return nil
	case *parse.ActionNode:
		if len(n.Pipe.Decl) == 0 && len(n.Pipe.Cmds) == 1 && len(n.Pipe.Cmds[0].Args) == 1 {
			if f, ok := n.Pipe.Cmds[0].Args[0].(*parse.FieldNode); ok && len(f.Ident) == 1 {
				if slices.Contains(templateVars, f.Ident[0]) {
					return nil
				}
				return fmt.Errorf("unknown variable {{.%s}}; the variables are {{.Version}}, {{.Arch}}, {{.GoArch}}, {{.UnameArch}}, {{.OSID}} and {{.OSVersion}}", f.Ident[0])
			}
		}
	}
	return fmt.Errorf("%q is not supported: templates only print {{.Version}}, {{.Arch}}, {{.GoArch}}, {{.UnameArch}}, {{.OSID}} or {{.OSVersion}}", n.String())
}

// checkURL reports whether u is an http, https or file URL bakery can fetch.
func checkURL(u string) error {
	p, err := url.Parse(u)
	if err != nil {
		return err
	}
	switch p.Scheme {
	case "http", "https":
		if p.Host == "" {
			return fmt.Errorf("%q has no host", u)
		}
	case "file":
		if p.Host != "" && p.Host != "localhost" || !path.IsAbs(p.Path) {
			return fmt.Errorf("%q is not a file:///absolute/path URL", u)
		}
	default:
		return fmt.Errorf("%q is not an http, https or file URL", u)
	}
	return nil
}

// checkPath reports whether p is a clean absolute path in one of class c's
// hierarchies (/usr, /opt; /etc); with dir, "/" and the hierarchies
// themselves are allowed too.
func checkPath(c sysext.Class, p string, dir bool) error {
	if !path.IsAbs(p) || path.Clean(p) != p {
		return fmt.Errorf("%q must be a clean absolute path (no \"..\", \".\", \"//\" or trailing \"/\"); it resolves to %s", p, path.Clean("/"+p))
	}
	rel := strings.TrimPrefix(p, "/")
	if dir && (rel == "" || slices.Contains(c.Hierarchies, rel)) {
		return nil
	}
	if !c.InHierarchy(rel) || slices.Contains(c.Hierarchies, rel) {
		return fmt.Errorf("%q is not under %s, the only trees a %s can hold", p, c.HierarchyList(), c.Noun)
	}
	return nil
}

// checkPattern reports whether p is a path.Match pattern that can match a
// relative member path.
func checkPattern(p string) error {
	if _, err := path.Match(p, ""); err != nil {
		return fmt.Errorf("%q is not a valid pattern (path.Match syntax): %w", p, err)
	}
	if path.IsAbs(p) || path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../") {
		return fmt.Errorf("%q must be a clean relative member path such as \"bin/tool\" or \"*.so\" (matched after strip-components)", p)
	}
	return nil
}

// checkOCI reports whether ref is a container image reference pinned by
// digest, with an explicit registry.
func checkOCI(ref string) error {
	if _, err := name.NewDigest(ref, name.StrictValidation); err != nil {
		return fmt.Errorf("%q is not an image reference pinned by digest (registry/repository@sha256:<hex>): %w", ref, err)
	}
	return nil
}

// checkLocal reports whether the folder of a files source stays inside
// the recipe's folder.
func checkLocal(files string) error {
	if !filepath.IsLocal(files) {
		return fmt.Errorf("%q must be a folder inside the recipe's folder (relative, without \"..\" leaving it)", files)
	}
	return nil
}
