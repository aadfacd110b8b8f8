package recipes

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/sysext-bakery/bakery/internal/unixmode"
	"github.com/sysext-bakery/bakery/sysext"
)

// The keys each part of a recipe may hold, in the order messages list them.
var (
	recipeKeys     = []string{"name", "class", "description", "license", "homepage", "version", "arches", "release", "sources", "validate"}
	releaseKeys    = []string{"id", "sysext-level", "confext-level", "version-id", "scope", "reload-manager"}
	sourceKeys     = []string{"url", "sha256", "sha256-url", "install", "extract", "oci", "files"}
	installKeys    = []string{"to", "mode"}
	extractKeys    = []string{"strip-components", "include", "to", "mode"}
	validateKeys   = []string{"foreign-elf"}
	foreignELFKeys = []string{"path", "reason"}
	scopes         = []string{"system", "initrd", "portable"}
)

var (
	// versionRE is a version usable in NAME-VERSION-ARCH.raw and, with '+'
	// turned into '_', as an OCI tag.
	versionRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._+-]{0,127}$`)
	// osReleaseRE is an os-release ID, VERSION_ID or SYSEXT_LEVEL value.
	osReleaseRE = regexp.MustCompile(`^[a-z0-9._-]{1,64}$`)
	sha256RE    = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
	modeRE      = regexp.MustCompile(`^(?:0o)?[0-7]{3,4}$`)
	yamlErrRE   = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
)

// checkVersion reports whether version can be an extension version.
func checkVersion(version string) error {
	if !versionRE.MatchString(version) {
		return fmt.Errorf("%q is not usable in an image file name and OCI tag: use letters, digits, '.', '_', '+' and '-', at most 128, not starting with '.', '+' or '-'", version)
	}
	return nil
}

// checkOSReleaseTemplate reports whether v can be an os-release value, or
// a template of one (checked once filled in, when the recipe is expanded).
func checkOSReleaseTemplate(v string) error {
	if strings.Contains(v, "{{") {
		return nil
	}
	return checkOSReleaseValue(v)
}

// checkOSReleaseValue reports whether v can be an os-release ID, VERSION_ID
// or SYSEXT_LEVEL.
func checkOSReleaseValue(v string) error {
	if !osReleaseRE.MatchString(v) {
		return fmt.Errorf("%q is not an os-release value: use lower-case letters, digits, '.', '_' and '-'", v)
	}
	return nil
}

// checkHomepage reports whether u is an https URL with a host.
func checkHomepage(u string) error {
	p, err := url.Parse(u)
	if err != nil || p.Scheme != "https" || p.Host == "" {
		return fmt.Errorf("%q is not an https://host/… URL of the project's home page", u)
	}
	return nil
}

// decoder turns the YAML node tree of a recipe into a Recipe, collecting
// every problem as an *Error at its line.
type decoder struct {
	path  string
	class sysext.Class // the recipe's, decoded before what depends on it
	errs  []error
}

// errorf records a problem at line.
func (d *decoder) errorf(line int, format string, args ...any) {
	d.errs = append(d.errs, &Error{Path: d.path, Line: line, Err: fmt.Errorf(format, args...)})
}

// recipe decodes a whole recipe file.
func (d *decoder) recipe(data []byte) *Recipe {
	root := d.document(data)
	if root == nil {
		return nil
	}
	f := d.mapping(root, "recipe", recipeKeys)
	if f == nil {
		return nil
	}
	r := &Recipe{Path: d.path, Class: sysext.Sysext, Release: Release{ID: "_any"}}
	if _, ok := f["name"]; !ok {
		d.errorf(root.Line, "name is missing; add name: with the extension name")
	}
	if c := d.str(f, "class", "class", func(v string) error { _, err := sysext.ClassByName(v); return err }); c != "" {
		r.Class, _ = sysext.ClassByName(c)
	}
	d.class = r.Class
	r.Name = d.str(f, "name", "name", sysext.CheckName)
	r.Description = d.str(f, "description", "description", nil)
	r.License = d.str(f, "license", "license", nil)
	r.Homepage = d.str(f, "homepage", "homepage", checkHomepage)
	r.Version = d.str(f, "version", "version", checkVersion)
	r.Arches = slices.Clone(defaultArches)
	if n, ok := f["arches"]; ok {
		r.Arches = d.list(n, "arches", func(a string) error {
			_, err := lookupArch(a)
			return err
		})
	}
	if n, ok := f["release"]; ok {
		r.ReleaseLine = n.Line
		d.release(n, r.Class, &r.Release)
	}
	if n, ok := f["validate"]; ok {
		d.validation(n, &r.Validate)
	}
	n, ok := f["sources"]
	if !ok {
		d.errorf(root.Line, "sources is missing; add sources: with at least one url, oci or files source")
		return r
	}
	items := d.sequence(n, "sources")
	for i, item := range items {
		r.Sources = append(r.Sources, d.source(item, i, r.Arches))
	}
	return r
}

// document parses data as one YAML document and returns its root node.
func (d *decoder) document(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.errorf(0, "file is empty; a recipe needs at least name and sources")
		} else {
			d.yamlError(err)
		}
		return nil
	}
	if len(doc.Content) == 0 {
		d.errorf(0, "file is empty; a recipe needs at least name and sources")
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		d.yamlError(err)
		return nil
	default:
		d.errorf(next.Line, "a second YAML document (after ---); a recipe file holds one recipe")
		return nil
	}
	return doc.Content[0]
}

// yamlError records a YAML syntax error, moving its line into the Error.
func (d *decoder) yamlError(err error) {
	if m := yamlErrRE.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		d.errorf(line, "invalid YAML: %s", m[2])
		return
	}
	d.errorf(0, "invalid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
}

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// describe names what a node holds, for type errors.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "empty"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "an unsupported YAML node"
}

// mapping checks that n is a mapping whose keys are known and appear once,
// and returns the value node of each key present; nil when n is not a
// mapping.
func (d *decoder) mapping(n *yaml.Node, where string, known []string) map[string]*yaml.Node {
	line, n := n.Line, resolve(n)
	if n.Kind != yaml.MappingNode {
		d.errorf(line, "%s must be a mapping (key: value), not %s", where, describe(n))
		return nil
	}
	vals := make(map[string]*yaml.Node)
	first := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := resolve(n.Content[i])
		switch {
		case k.Kind != yaml.ScalarNode:
			d.errorf(k.Line, "%s: keys must be plain words, not %s", where, describe(k))
		case !slices.Contains(known, k.Value):
			d.errorf(k.Line, "unknown key %q in %s; known keys: %s", k.Value, where, strings.Join(known, ", "))
		case first[k.Value] != 0:
			d.errorf(k.Line, "key %q given twice in %s (first on line %d); keep one", k.Value, where, first[k.Value])
		default:
			first[k.Value] = k.Line
			vals[k.Value] = n.Content[i+1]
		}
	}
	return vals
}

// sequence checks that n is a non-empty list and returns its items.
func (d *decoder) sequence(n *yaml.Node, label string) []*yaml.Node {
	line, n := n.Line, resolve(n)
	switch {
	case n.Kind != yaml.SequenceNode:
		d.errorf(line, "%s must be a list, not %s", label, describe(n))
		return nil
	case len(n.Content) == 0:
		d.errorf(line, "%s is an empty list; give at least one item or leave the key out", label)
		return nil
	}
	return n.Content
}

// scalar returns the text of a string value; numbers keep their spelling
// (version: 1.10 is "1.10"), while null, booleans and empty strings are
// errors.
func (d *decoder) scalar(n *yaml.Node, label string, check func(string) error) (string, bool) {
	line, n := n.Line, resolve(n)
	switch {
	case n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null":
		d.errorf(line, "%s must be a string, not %s", label, describe(n))
		return "", false
	case n.ShortTag() == "!!bool":
		d.errorf(line, "%s must be a string, not the boolean %s; quote it", label, n.Value)
		return "", false
	case n.Value == "":
		d.errorf(line, "%s is empty; give a value or leave the key out", label)
		return "", false
	}
	if check != nil {
		if err := check(n.Value); err != nil {
			d.errorf(line, "%s: %v", label, err)
			return "", false
		}
	}
	return n.Value, true
}

// str returns the string value of key in f, "" when the key is absent.
func (d *decoder) str(f map[string]*yaml.Node, key, label string, check func(string) error) string {
	n, ok := f[key]
	if !ok {
		return ""
	}
	s, _ := d.scalar(n, label, check)
	return s
}

// list returns a non-empty list of distinct strings, each passing check.
func (d *decoder) list(n *yaml.Node, label string, check func(string) error) []string {
	var out []string
	for _, item := range d.sequence(n, label) {
		s, ok := d.scalar(item, label+" item", check)
		if !ok {
			continue
		}
		if slices.Contains(out, s) {
			d.errorf(item.Line, "%s lists %q twice", label, s)
			continue
		}
		out = append(out, s)
	}
	return out
}

// boolean returns a true/false value.
func (d *decoder) boolean(n *yaml.Node, label string) bool {
	line, n := n.Line, resolve(n)
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
		d.errorf(line, "%s must be true or false, not %s", label, describe(n))
		return false
	}
	b, _ := strconv.ParseBool(n.Value)
	return b
}

// mode returns a file mode written as octal digits ("0755", also unquoted),
// carrying setuid, setgid and sticky bits over to their fs.FileMode bits.
func (d *decoder) mode(n *yaml.Node, label string) fs.FileMode {
	line, n := n.Line, resolve(n)
	if n.Kind != yaml.ScalarNode || !modeRE.MatchString(n.Value) {
		d.errorf(line, "%s must be octal digits such as \"0755\", not %s", label, describe(n))
		return 0
	}
	u, _ := strconv.ParseUint(strings.TrimPrefix(n.Value, "0o"), 8, 32)
	if u&0o400 == 0 {
		d.errorf(line, "%s %s leaves the file unreadable to its owner; use e.g. \"0644\" or \"0755\"", label, n.Value)
		return 0
	}
	return unixmode.FileMode(uint32(u))
}

// release decodes the release mapping of a recipe of class c into rel.
func (d *decoder) release(n *yaml.Node, c sysext.Class, rel *Release) {
	f := d.mapping(n, "release", releaseKeys)
	if f == nil {
		return
	}
	if id := d.str(f, "id", "release.id", checkOSReleaseTemplate); id != "" {
		rel.ID = id
	}
	levelKey := c.Name + "-level"
	for _, k := range []string{"sysext-level", "confext-level"} {
		if v, ok := f[k]; ok && k != levelKey {
			d.errorf(v.Line, "release.%s is for another class: this %s recipe sets %s", k, c.Name, levelKey)
		}
	}
	rel.Level = d.str(f, levelKey, "release."+levelKey, checkOSReleaseTemplate)
	rel.VersionID = d.str(f, "version-id", "release.version-id", checkOSReleaseTemplate)
	if s, ok := f["scope"]; ok {
		rel.Scope = d.list(s, "release.scope", func(v string) error {
			if !slices.Contains(scopes, v) {
				return fmt.Errorf("unknown scope %q; known: %s", v, strings.Join(scopes, ", "))
			}
			return nil
		})
	}
	if b, ok := f["reload-manager"]; ok {
		rel.ReloadManager = d.boolean(b, "release.reload-manager")
	}
	switch {
	case rel.Level != "" && rel.VersionID != "":
		d.errorf(f["version-id"].Line, "release has both %s and version-id; keep one (systemd compares %s and ignores VERSION_ID)", levelKey, c.LevelField)
	case rel.VersionID != "" && rel.ID == "_any":
		d.errorf(f["version-id"].Line, "release.version-id needs an id other than _any (an _any extension matches every OS version); set release.id or use %s", levelKey)
	case rel.ID != "_any" && rel.Level == "" && rel.VersionID == "":
		line := n.Line
		if idn, ok := f["id"]; ok {
			line = idn.Line
		}
		d.errorf(line, "release.id %q needs %s or version-id: systemd refuses such an extension on hosts with a VERSION_ID", rel.ID, levelKey)
	}
}

// validation decodes the validate mapping into v.
func (d *decoder) validation(n *yaml.Node, v *Validation) {
	f := d.mapping(n, "validate", validateKeys)
	if f == nil {
		return
	}
	list, ok := f["foreign-elf"]
	if !ok {
		return
	}
	first := map[string]int{}
	for i, item := range d.sequence(list, "validate.foreign-elf") {
		where := fmt.Sprintf("validate.foreign-elf %d", i+1)
		m := d.mapping(item, where, foreignELFKeys)
		if m == nil {
			continue
		}
		e := ForeignELF{Line: item.Line}
		if _, ok := m["path"]; !ok {
			d.errorf(item.Line, "%s needs path: a pattern of the image paths it allows, such as /usr/lib/firmware/*", where)
		}
		if _, ok := m["reason"]; !ok {
			d.errorf(item.Line, "%s needs reason: why files for another architecture belong in the image (bake shows it)", where)
		}
		e.Path = d.str(m, "path", where+" path", d.checkImagePattern)
		e.Reason = d.str(m, "reason", where+" reason", nil)
		switch {
		case e.Path == "" || e.Reason == "": // reported
		case first[e.Path] != 0:
			d.errorf(m["path"].Line, "%s: path %q is given twice (first on line %d); keep one", where, e.Path, first[e.Path])
		default:
			first[e.Path] = m["path"].Line
			v.ForeignELF = append(v.ForeignELF, e)
		}
	}
}

// checkImagePattern reports whether p is a path.Match pattern of absolute
// image paths in the recipe's hierarchies.
func (d *decoder) checkImagePattern(p string) error {
	if _, err := path.Match(p, ""); err != nil {
		return fmt.Errorf("%q is not a valid pattern (path.Match syntax): %w", p, err)
	}
	top, _, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	if !path.IsAbs(p) || path.Clean(p) != p || !slices.Contains(d.class.Hierarchies, top) {
		return fmt.Errorf("%q must be a clean absolute pattern under %s, such as \"/%s/lib/firmware/*\"", p, d.class.HierarchyList(), d.class.Hierarchies[0])
	}
	return nil
}

// source decodes source i (0-based) of a recipe building for arches.
func (d *decoder) source(n *yaml.Node, i int, arches []string) Source {
	where := fmt.Sprintf("source %d", i+1)
	s := Source{Line: n.Line, lines: make(map[string]int)}
	f := d.mapping(n, where, sourceKeys)
	if f == nil {
		return s
	}
	for key := range f {
		s.lines[key] = keyLine(n, key)
	}
	s.URL = d.str(f, "url", where+" url", nil)
	s.SHA256URL = d.str(f, "sha256-url", where+" sha256-url", nil)
	s.OCI = d.str(f, "oci", where+" oci", nil)
	s.Files = d.str(f, "files", where+" files", nil)
	if v, ok := f["sha256"]; ok {
		s.SHA256 = d.sha256(v, keyLine(n, "sha256"), where+" sha256", arches)
	}
	if v, ok := f["install"]; ok {
		s.Install = d.install(v, keyLine(n, "install"), where, s.lines)
	}
	if v, ok := f["extract"]; ok {
		s.Extract = d.extract(v, where, s.lines)
	}

	var kinds []string
	for _, k := range []string{"url", "oci", "files"} {
		if _, ok := f[k]; ok {
			kinds = append(kinds, k)
		}
	}
	if len(kinds) != 1 {
		d.errorf(s.Line, "%s has %s; a source is exactly one of url, oci or files", where, orNone(kinds))
		return s
	}
	// forbid reports keys that the source's kind does not take.
	forbid := func(why string, keys ...string) {
		for _, k := range keys {
			if v, ok := f[k]; ok {
				d.errorf(v.Line, "%s: %s is not allowed with %s; %s", where, k, kinds[0], why)
			}
		}
	}
	// exactlyOne reports unless exactly one of a and b is present.
	exactlyOne := func(a, b, what string) {
		_, hasA := f[a]
		_, hasB := f[b]
		switch {
		case hasA && hasB:
			d.errorf(f[b].Line, "%s has both %s and %s; keep one", where, a, b)
		case !hasA && !hasB:
			d.errorf(s.Line, "%s (url) needs %s or %s: %s", where, a, b, what)
		}
	}
	switch kinds[0] {
	case "url":
		exactlyOne("install", "extract", "install places one file, extract unpacks an archive")
		exactlyOne("sha256", "sha256-url", "every download is verified")
	case "oci":
		forbid("an oci source is pinned by the digest in its reference", "sha256", "sha256-url")
		forbid("take files from the image with extract", "install")
		if _, ok := f["extract"]; !ok {
			d.errorf(s.Line, "%s (oci) needs extract: {include: [...], to: /} to say which files to take", where)
		}
	case "files":
		forbid("a files source is copied as is", "sha256", "sha256-url", "install", "extract")
	}
	return s
}

// orNone lists keys for a message, or says none.
func orNone(keys []string) string {
	if len(keys) == 0 {
		return "none of them"
	}
	return strings.Join(keys, " and ")
}

// keyLine returns the line of key in the mapping n, or n's own line.
func keyLine(n *yaml.Node, key string) int {
	m := resolve(n)
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i].Line
		}
	}
	return n.Line
}

// sha256 decodes one hash for every arch or a mapping arch -> hash that
// covers every arch in arches.
func (d *decoder) sha256(n *yaml.Node, keyLine int, label string, arches []string) map[string]string {
	n = resolve(n)
	hex := func(v *yaml.Node, label string) (string, bool) {
		return d.scalar(v, label, func(s string) error {
			if !sha256RE.MatchString(s) {
				return fmt.Errorf("%q is not a sha256 (64 hex digits)", s)
			}
			return nil
		})
	}
	if n.Kind != yaml.MappingNode {
		h, ok := hex(n, label)
		if !ok {
			return nil
		}
		return map[string]string{"*": strings.ToLower(h)}
	}
	f := d.mapping(n, label, arches)
	if f == nil {
		return nil
	}
	out := make(map[string]string, len(f))
	for arch, v := range f {
		if h, ok := hex(v, label+" "+arch); ok {
			out[arch] = strings.ToLower(h)
		}
	}
	for _, arch := range arches {
		if _, ok := f[arch]; !ok {
			d.errs = append(d.errs, &Error{Path: d.path, Line: keyLine, Err: missingHash(label, arch)})
		}
	}
	return out
}

// missingHash is the error for a sha256 mapping without arch.
func missingHash(label, arch string) error {
	return fmt.Errorf("%s has no hash for %s; add %s: <sha256> (or give one string if the file is the same for every arch)", label, arch, arch)
}

// install decodes a source's install mapping, recording value lines.
func (d *decoder) install(n *yaml.Node, keyLine int, where string, lines map[string]int) *Install {
	f := d.mapping(n, where+" install", installKeys)
	if f == nil {
		return nil
	}
	in := &Install{Mode: 0o644}
	if v, ok := f["to"]; ok {
		lines["install.to"] = v.Line
		in.To, _ = d.scalar(v, where+" install.to", nil)
	} else {
		d.errorf(keyLine, "%s install needs to: the absolute path of the file, under %s", where, d.class.HierarchyList())
	}
	if v, ok := f["mode"]; ok {
		in.Mode = d.mode(v, where+" install.mode")
	}
	return in
}

// extract decodes a source's extract mapping, recording value lines.
func (d *decoder) extract(n *yaml.Node, where string, lines map[string]int) *Extract {
	f := d.mapping(n, where+" extract", extractKeys)
	if f == nil {
		return nil
	}
	ex := &Extract{To: "/"}
	if v, ok := f["strip-components"]; ok {
		line, v := v.Line, resolve(v)
		k, err := strconv.Atoi(v.Value)
		if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" || err != nil || k < 0 {
			d.errorf(line, "%s extract.strip-components must be a whole number >= 0, not %s", where, describe(v))
		}
		ex.StripComponents = k
	}
	if v, ok := f["include"]; ok {
		for j, item := range d.sequence(v, where+" extract.include") {
			lines[fmt.Sprintf("extract.include.%d", j)] = item.Line
			p, _ := d.scalar(item, where+" extract.include item", nil)
			ex.Include = append(ex.Include, p)
		}
	}
	if v, ok := f["to"]; ok {
		lines["extract.to"] = v.Line
		ex.To, _ = d.scalar(v, where+" extract.to", nil)
	}
	if v, ok := f["mode"]; ok {
		ex.Mode = d.mode(v, where+" extract.mode")
	}
	return ex
}
