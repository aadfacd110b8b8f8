// Package lint checks recipes beyond what parsing requires: what every
// recipe of the shipped catalog is held to (https sources, a description
// and license, units for a reload-manager recipe), without fetching
// anything.
package lint

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sysext-bakery/bakery/recipes"
	"github.com/sysext-bakery/bakery/validate"
)

// Problem is one thing wrong with a recipe, at a line of its file (0 when
// it concerns the whole file).
type Problem struct {
	Path    string `json:"path"`
	Line    int    `json:"line,omitempty"`
	Message string `json:"message"`
}

// String is "path:line: message", as compilers write.
func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", p.Path, p.Line, p.Message)
	}
	return fmt.Sprintf("%s: %s", p.Path, p.Message)
}

// ForeignELF is a validate.foreign-elf entry of a recipe, shown with its
// reason so that a reviewer sees what it lets through and why.
type ForeignELF struct {
	Line    int    `json:"line"`
	Pattern string `json:"pattern"`
	Reason  string `json:"reason"`
}

// Report is what lint found in one recipe.
type Report struct {
	// Name is the recipe's name, or what it was asked by when it does not
	// parse.
	Name       string       `json:"name"`
	Path       string       `json:"path"`
	Problems   []Problem    `json:"problems"`
	ForeignELF []ForeignELF `json:"foreignElf,omitempty"`
}

// standInOS is the OS release a kernel-bound recipe's templates are
// tried with.
var standInOS = recipes.OS{ID: "lint", Version: "0"}

// Load lints the recipe arg names, as bake finds it: a recipe file, a
// folder holding recipe.yaml, or a name from the shipped catalog. A
// recipe that does not parse has its parse errors as problems.
func Load(arg string) Report {
	r, err := recipes.Resolve(arg)
	if err != nil {
		return Report{Name: arg, Path: arg, Problems: problems(arg, err)}
	}
	return Recipe(r)
}

// Catalog lints every recipe of the shipped catalog, by name.
func Catalog() []Report {
	var out []Report
	for _, name := range recipes.CatalogNames() {
		out = append(out, Load(name))
	}
	return out
}

// Recipe lints a parsed recipe: its templates expand for every arch
// (kernel-bound ones for a stand-in OS release); url and sha256-url
// sources are https; it has a description and a license; with
// release.reload-manager, a files source holds the units to reload for.
// Its validate.foreign-elf entries are listed with their reasons.
func Recipe(r *recipes.Recipe) Report {
	rep := Report{Name: r.Name, Path: r.Path, Problems: []Problem{}}
	add := func(line int, format string, args ...any) {
		rep.Problems = append(rep.Problems, Problem{Path: r.Path, Line: line, Message: fmt.Sprintf(format, args...)})
	}
	if r.Description == "" {
		add(0, "description: missing; add one line saying what the extension holds, for listings")
	}
	if r.License == "" {
		add(0, "license: missing; add the SPDX expression of what the extension holds, such as Apache-2.0")
	}
	if r.Homepage == "" {
		add(0, "homepage: missing; add the https URL of the upstream project, for listings")
	}
	target := recipes.Target{}
	if r.Version == "" {
		target.Version = "0" // the version is given at bake time
	}
	if r.KernelBound() {
		target.OS = standInOS
	}
	for _, arch := range r.Arches {
		target.Arch = arch
		b, err := r.ExpandFor(target)
		if err != nil {
			rep.Problems = append(rep.Problems, problems(r.Path, err)...)
			continue
		}
		for _, s := range b.Sources {
			for _, u := range []struct{ key, url string }{{"url", s.URL}, {"sha256-url", s.SHA256URL}} {
				if p, err := url.Parse(u.url); u.url != "" && (err != nil || p.Scheme != "https") {
					add(r.Sources[s.Index].KeyLine(u.key), "source %d %s: %q is not https: sources are fetched over https only, so that what is verified comes from upstream", s.Index+1, u.key, u.url)
				}
			}
		}
	}
	if r.Release.ReloadManager {
		if err := checkUnits(r); err != nil {
			add(r.ReleaseLine, "release.reload-manager: %v", err)
		}
	}
	for _, e := range r.Validate.ForeignELF {
		rep.ForeignELF = append(rep.ForeignELF, ForeignELF{Line: e.Line, Pattern: e.Path, Reason: e.Reason})
	}
	rep.Problems = slices.CompactFunc(sortProblems(rep.Problems), func(a, b Problem) bool { return a == b })
	return rep
}

// checkUnits reports unless a files source of r holds a systemd unit in
// one of its class's unit directories, or an extract source's include
// puts members there: a recipe asking for the service manager to be
// reloaded ships units. (That the members exist is checked when baking.)
func checkUnits(r *recipes.Recipe) error {
	class := r.ImageClass()
	for _, s := range r.Sources {
		if s.Extract != nil {
			for _, inc := range s.Extract.Include {
				if validate.ReachesUnits(path.Join(strings.TrimPrefix(path.Clean("/"+s.Extract.To), "/"), inc), class) {
					return nil
				}
			}
		}
		if s.Files == "" {
			continue
		}
		files, err := fs.Sub(r.Folder(), path.Clean(filepath.ToSlash(s.Files)))
		if err != nil {
			return fmt.Errorf("files %s: %w", s.Files, err)
		}
		units, err := validate.UnitFiles(files, class)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("reading %s: %w", s.Files, err)
		}
		if len(units) > 0 {
			return nil
		}
	}
	return fmt.Errorf("set, but no source brings a systemd unit (usr/lib/systemd/system/NAME.service in a sysext, etc/systemd/system/ in a confext; from files/ or an extract include): add the units, or drop reload-manager")
}

// problems turns a recipe error (errors.Join of *recipes.Error, as Parse
// and Expand return) into problems; other errors concern path as a whole.
func problems(path string, err error) []Problem {
	var out []Problem
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var re *recipes.Error
		if errors.As(err, &re) {
			out = append(out, Problem{Path: re.Path, Line: re.Line, Message: re.Err.Error()})
			return
		}
		out = append(out, Problem{Path: path, Message: err.Error()})
	}
	walk(err)
	return out
}

// sortProblems orders problems by file, line and message, so that
// repeats (one per arch) are neighbours.
func sortProblems(ps []Problem) []Problem {
	slices.SortFunc(ps, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.Path, b.Path), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Message, b.Message))
	})
	return ps
}
