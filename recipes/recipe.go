// Package recipes is bakery's recipe format: it turns a recipe.yaml into a
// validated Recipe and expands that into the Build for one version and
// architecture.
package recipes

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/sysext-bakery/bakery/internal/pathmatch"
	"github.com/sysext-bakery/bakery/sysext"
)

// FileName is the name of a recipe inside a recipe folder.
const FileName = "recipe.yaml"

// Recipe is one parsed and validated recipe file. Its string fields in
// Sources are still templates; Expand fills them in.
type Recipe struct {
	// Name is the extension name: extension-release.NAME, NAME.raw on the node
	// and the OCI repository NAMESPACE/NAME.
	Name string
	// Class is the image class: sysext (the default, also when Class is
	// the zero value: see ImageClass) or confext, whose tree holds only
	// etc/.
	Class sysext.Class
	// Description is one line about the extension, for listings.
	Description string
	// License is the SPDX expression of what the extension holds.
	License string
	// Homepage is the https URL of the upstream project, for listings.
	Homepage string
	// Version is the default version; empty when the recipe has none and
	// every build must be given one.
	Version string
	// Arches are systemd ARCHITECTURE names, [x86-64 arm64] by default.
	Arches  []string
	Release Release
	// ReleaseLine is where the release section starts (0 without one).
	ReleaseLine int
	Sources     []Source
	// Validate holds the exceptions to the checks of the staged tree.
	Validate Validation
	// Path is the recipe file that was read.
	Path string
	// Digest is the sha256 of the recipe file's bytes: part of every
	// build's inputs digest.
	Digest v1.Hash
	// Catalog is set for a recipe of the shipped catalog: it was read from
	// bakery itself, has no folder on disk, and Path only says where it
	// lives in bakery's source.
	Catalog bool
	// FS is the recipe's folder when it is not on disk (a catalog
	// recipe's, inside bakery): files sources read their trees from it.
	// Nil for a recipe read from disk, whose folder is Dir.
	FS fs.FS
}

// Release holds the extension-release fields a recipe sets.
type Release struct {
	// ID is the os-release ID the extension is for; "_any" by default.
	ID string
	// Level is SYSEXT_LEVEL (CONFEXT_LEVEL for a confext), written
	// sysext-level (confext-level); VersionID is VERSION_ID, only set with an
	// ID other than _any.
	Level, VersionID string
	// Scope is SYSEXT_SCOPE: some of system, initrd, portable.
	Scope []string
	// ReloadManager asks for EXTENSION_RELOAD_MANAGER=1.
	ReloadManager bool
}

// Validation is a recipe's validate: section.
type Validation struct {
	// ForeignELF lists where executables and shared libraries built for
	// another architecture than the image's may be.
	ForeignELF []ForeignELF
}

// ForeignELF lets ELF executables and shared libraries for another
// architecture into the image at the paths Path matches.
type ForeignELF struct {
	// Path is a path.Match pattern of absolute image paths under /usr or
	// /opt, such as "/usr/lib/firmware/*"; a pattern that matches a
	// directory matches everything beneath it, as extract.include does.
	Path string
	// Reason says why such files belong in the image; bake shows it with
	// every file it lets through.
	Reason string
	// Line is where the entry starts in the recipe file.
	Line int
}

// Matches reports whether the absolute image path p is one e allows.
func (e ForeignELF) Matches(p string) bool {
	return pathmatch.Subtree(e.Path, p)
}

// Source is one entry of a recipe's sources: exactly one of URL, OCI and
// Files is set. A URL source has exactly one of SHA256 and SHA256URL and
// exactly one of Install and Extract; an OCI source has Extract.
type Source struct {
	URL, SHA256URL, OCI, Files string
	// SHA256 maps a systemd architecture name to the file's lowercase hex
	// sha256, or has the single key "*" when one file serves every arch.
	SHA256  map[string]string
	Install *Install
	Extract *Extract
	// Line is where the source starts in the recipe file.
	Line int

	// lines holds the line of each key's value ("url", "install.to", …),
	// so errors found while expanding can point at it.
	lines map[string]int
}

// Install places a single downloaded file.
type Install struct {
	// To is the absolute path of the file, in one of the class's
	// hierarchies (/usr or /opt; /etc for a confext).
	To string
	// Mode is the file's mode; 0644 when the recipe gives none.
	Mode fs.FileMode
}

// Extract unpacks an archive (or a container image's layers).
type Extract struct {
	// StripComponents leading path elements are removed from each member
	// name, like tar --strip-components.
	StripComponents int
	// Include lists path.Match patterns matched against each member's path
	// after StripComponents; empty means every member.
	Include []string
	// To is the absolute directory the members land in: "/" (the default)
	// or a directory in one of the class's hierarchies.
	To string
	// Mode, when not zero, replaces the mode of every regular file.
	Mode fs.FileMode
}

// SourceKind tells the three kinds of source apart.
type SourceKind int

// The kinds of source a recipe can hold.
const (
	URLSource   SourceKind = iota + 1 // a file fetched by URL, pinned by sha256
	FilesSource                       // a tree beside the recipe
	OCISource                         // a container image's layers, pinned by digest
)

// String returns the recipe key that makes a source of this kind.
func (k SourceKind) String() string {
	switch k {
	case URLSource:
		return "url"
	case FilesSource:
		return "files"
	case OCISource:
		return "oci"
	}
	return fmt.Sprintf("SourceKind(%d)", int(k))
}

// Kind returns which of URL, Files and OCI the source uses.
func (s *Source) Kind() SourceKind {
	switch {
	case s.URL != "":
		return URLSource
	case s.Files != "":
		return FilesSource
	case s.OCI != "":
		return OCISource
	}
	return 0
}

// Error is a problem in a recipe file, located by line when it has one.
// Parse and Expand return these (joined with errors.Join when there are
// several); errors.As finds the first.
type Error struct {
	// Path is the recipe file.
	Path string
	// Line is the 1-based line of the offending key or value, 0 when the
	// problem belongs to the whole file.
	Line int
	Err  error
}

// Error formats the problem as "path:line: message".
func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.Path, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Path, e.Err)
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Load reads and parses a recipe: path is a recipe file or a folder holding
// recipe.yaml.
func Load(path string) (*Recipe, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("recipe: %w", err)
	}
	if st.IsDir() {
		file := filepath.Join(path, FileName)
		if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("recipe: folder %s holds no %s; give the recipe file itself or a folder with one", path, FileName)
		}
		path = file
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("recipe: %w", err)
	}
	return Parse(data, path)
}

// Parse decodes and validates recipe data read from path. Unknown keys,
// wrong types, missing fields and invalid values are errors naming
// path:line; every template in the sources is tried for each of the
// recipe's arches, so a recipe that parses also expands.
func Parse(data []byte, path string) (*Recipe, error) {
	d := &decoder{path: path}
	r := d.recipe(data)
	if r != nil {
		r.Digest, _, _ = v1.SHA256(bytes.NewReader(data)) // reading bytes cannot fail
		d.errs = append(d.errs, r.tryTemplates()...)
	}
	if len(d.errs) > 0 {
		return nil, joinSorted(d.errs)
	}
	return r, nil
}

// tryTemplates expands the sources for each arch with the recipe's version
// (or a stand-in when it is left to the caller) and returns the problems of
// the first arch that has any.
func (r *Recipe) tryTemplates() []error {
	version := r.Version
	if version == "" {
		version = "0"
	}
	dir, err := filepath.Abs(r.Dir())
	if err != nil {
		dir = r.Dir()
	}
	arches := r.Arches
	if len(arches) == 0 { // arches was invalid, and reported
		arches = defaultArches
	}
	for _, name := range arches {
		arch, err := lookupArch(name)
		if err != nil {
			continue // reported with arches
		}
		os := OS{}
		if r.KernelBound() {
			os = OS{ID: "os", Version: "0"} // stand-ins, as for the version
		}
		if _, errs := r.expand(dir, version, arch, os); len(errs) > 0 {
			return errs
		}
	}
	return nil
}

// joinSorted joins errors in line order, dropping repeats.
func joinSorted(errs []error) error {
	line := func(err error) int {
		var e *Error
		if errors.As(err, &e) {
			return e.Line
		}
		return 0
	}
	slices.SortStableFunc(errs, func(a, b error) int { return line(a) - line(b) })
	return errors.Join(slices.CompactFunc(errs, func(a, b error) bool { return a.Error() == b.Error() })...)
}

// ImageClass is the recipe's image class: Class, or sysext when unset.
func (r *Recipe) ImageClass() sysext.Class {
	if r.Class.Name == "" {
		return sysext.Sysext
	}
	return r.Class
}

// Dir returns the folder holding the recipe file: files sources are
// relative to it.
func (r *Recipe) Dir() string { return filepath.Dir(r.Path) }

// Folder is the recipe's folder as a file system: FS for a catalog
// recipe, else the folder on disk.
func (r *Recipe) Folder() fs.FS {
	if r.FS != nil {
		return r.FS
	}
	return os.DirFS(r.Dir())
}
