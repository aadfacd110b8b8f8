package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v3"

	"github.com/sysext-bakery/bakery/internal/unixmode"
	"github.com/sysext-bakery/bakery/recipes"
	"github.com/sysext-bakery/bakery/recipes/lint"
)

func recipesCommand() *cli.Command {
	return &cli.Command{
		Name:  "recipes",
		Usage: "list, show and lint recipes and the shipped catalog",
		Description: `Examples:
  bakery recipes list
  bakery recipes show kubernetes --json
  bakery recipes lint`,
		Commands: []*cli.Command{
			recipesListCommand(),
			recipesShowCommand(),
			recipesLintCommand(),
		},
	}
}

// recipeSummary is one line of recipes list.
type recipeSummary struct {
	Name        string   `json:"name"`
	Version     string   `json:"version"`
	Arches      []string `json:"arches"`
	Class       string   `json:"class"`
	KernelBound bool     `json:"kernelBound"`
	Description string   `json:"description"`
	License     string   `json:"license"`
}

// summarize is r's line of recipes list.
func summarize(r *recipes.Recipe) recipeSummary {
	return recipeSummary{Name: r.Name, Version: r.Version, Arches: r.Arches, Class: r.ImageClass().Name,
		KernelBound: r.KernelBound(), Description: r.Description, License: r.License}
}

func recipesListCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list the shipped catalog: name, version, arches, class, kernel-bound, description",
		Description: `Every recipe bakery ships (recipes/catalog/NAME/recipe.yaml), bakeable by name.

Examples:
  bakery recipes list
  bakery recipes list --json | jq -r '.recipes[].name'`,
		Flags: []cli.Flag{jsonFlag},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.NArg() != 0 {
				return usagef("recipes list takes no arguments")
			}
			list := []recipeSummary{}
			for _, name := range recipes.CatalogNames() {
				r, err := recipes.LoadCatalog(name)
				if err != nil {
					return fmt.Errorf("%w (bakery recipes lint %s lists every problem)", err, name)
				}
				list = append(list, summarize(r))
			}
			if cmd.Bool("json") {
				return printJSON(os.Stdout, struct {
					Recipes []recipeSummary `json:"recipes"`
				}{list})
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tVERSION\tARCHES\tCLASS\tKERNEL-BOUND\tDESCRIPTION")
			for _, s := range list {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Version, strings.Join(s.Arches, ","), s.Class, yesNo(s.KernelBound), s.Description)
			}
			if len(list) == 0 {
				stderrf("the shipped catalog is empty\n")
			}
			return w.Flush()
		},
	}
}

// yesNo spells a flag for a table.
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// recipeView is recipes show's document.
type recipeView struct {
	recipeSummary
	Path    string      `json:"path"`
	Release releaseView `json:"release"`
	// Builds are the sources per arch; a kernel-bound recipe has them
	// only when an OS release is given.
	Builds     []buildView       `json:"builds"`
	ForeignELF []lint.ForeignELF `json:"foreignElf,omitempty"`
}

// releaseView is a release section as recipes show prints it.
type releaseView struct {
	ID            string   `json:"id"`
	Level         string   `json:"level,omitempty"`
	VersionID     string   `json:"versionId,omitempty"`
	Scope         []string `json:"scope,omitempty"`
	ReloadManager bool     `json:"reloadManager"`
}

// buildView is one arch's build: its release section and sources.
type buildView struct {
	Arch      string       `json:"arch"`
	GoArch    string       `json:"goArch"`
	Version   string       `json:"version"`
	OSID      string       `json:"osId,omitempty"`
	OSVersion string       `json:"osVersion,omitempty"`
	Release   releaseView  `json:"release"`
	Sources   []sourceView `json:"sources"`
}

// sourceView is one source of a build, its templates filled in.
type sourceView struct {
	Kind      string       `json:"kind"`
	Line      int          `json:"line"`
	URL       string       `json:"url,omitempty"`
	SHA256    string       `json:"sha256,omitempty"`
	SHA256URL string       `json:"sha256Url,omitempty"`
	OCI       string       `json:"oci,omitempty"`
	Files     string       `json:"files,omitempty"`
	Install   *installView `json:"install,omitempty"`
	Extract   *extractView `json:"extract,omitempty"`
}

// installView is a source's install section, its mode in octal.
type installView struct {
	To   string `json:"to"`
	Mode string `json:"mode"`
}

// extractView is a source's extract section, its mode in octal.
type extractView struct {
	StripComponents int      `json:"stripComponents,omitempty"`
	Include         []string `json:"include,omitempty"`
	To              string   `json:"to"`
	Mode            string   `json:"mode,omitempty"`
}

// viewRelease is rel as recipes show prints it.
func viewRelease(rel recipes.Release) releaseView {
	return releaseView{ID: rel.ID, Level: rel.Level, VersionID: rel.VersionID, Scope: rel.Scope, ReloadManager: rel.ReloadManager}
}

func recipesShowCommand() *cli.Command {
	return &cli.Command{
		Name:      "show",
		Usage:     "show one recipe as parsed, with its sources per arch",
		ArgsUsage: "RECIPE",
		Description: `RECIPE is a recipe.yaml, a folder holding one, or a name from the shipped catalog.
Every template is filled in for each arch (and for --version); a kernel-bound
recipe's sources depend on the OS release, given with --os and --os-version.

Examples:
  bakery recipes show kubernetes
  bakery recipes show ./my-tool --version 2.1.0 --json
  bakery recipes show nvidia-driver --os flatcar --os-version 4081.2.0`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "version", Usage: "version to show the sources of (default: the recipe's)"},
			&cli.StringFlag{Name: "os", Usage: "the OS release ID of a kernel-bound recipe"},
			&cli.StringFlag{Name: "os-version", Usage: "the OS release VERSION_ID of a kernel-bound recipe"},
			jsonFlag,
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.NArg() != 1 {
				return usagef("recipes show takes one RECIPE (see bakery recipes show --help)")
			}
			r, err := recipes.Resolve(cmd.Args().First())
			if err != nil {
				return err
			}
			view := recipeView{recipeSummary: summarize(r), Path: r.Path, Release: viewRelease(r.Release), Builds: []buildView{}}
			for _, e := range r.Validate.ForeignELF {
				view.ForeignELF = append(view.ForeignELF, lint.ForeignELF{Line: e.Line, Pattern: e.Path, Reason: e.Reason})
			}
			release := recipes.OS{ID: cmd.String("os"), Version: cmd.String("os-version")}
			if r.KernelBound() && release == (recipes.OS{}) {
				stderrf("%s is kernel-bound: pass --os ID --os-version VERSION to see its sources per arch\n", r.Name)
			} else {
				for _, arch := range r.Arches {
					b, err := r.ExpandFor(recipes.Target{Version: cmd.String("version"), Arch: arch, OS: release})
					if err != nil {
						return usagef("%v", err)
					}
					view.Builds = append(view.Builds, viewBuild(b))
				}
			}
			if cmd.Bool("json") {
				return printJSON(os.Stdout, view)
			}
			printRecipe(os.Stdout, view)
			return nil
		},
	}
}

// viewBuild is b as recipes show prints it.
func viewBuild(b *recipes.Build) buildView {
	v := buildView{Arch: b.Arch, GoArch: b.GoArch, Version: b.Version, OSID: b.OS.ID, OSVersion: b.OS.Version, Release: viewRelease(b.Release)}
	for i, s := range b.Sources {
		sv := sourceView{Kind: s.Kind.String(), Line: s.Line, URL: s.URL, SHA256: s.SHA256, SHA256URL: s.SHA256URL,
			OCI: s.OCI, Files: b.Recipe.Sources[i].Files}
		if in := s.Install; in != nil {
			sv.Install = &installView{To: in.To, Mode: fmt.Sprintf("%04o", octalMode(in.Mode, 0o644))}
		}
		if x := s.Extract; x != nil {
			sv.Extract = &extractView{StripComponents: x.StripComponents, Include: x.Include, To: x.To}
			if x.Mode != 0 {
				sv.Extract.Mode = fmt.Sprintf("%04o", octalMode(x.Mode, 0))
			}
			if sv.Extract.To == "" {
				sv.Extract.To = "/"
			}
		}
		v.Sources = append(v.Sources, sv)
	}
	return v
}

// octalMode is m (permissions and Go's setuid, setgid and sticky flags,
// as recipes hold them) as Unix octal bits; def when m is zero.
func octalMode(m, def fs.FileMode) uint32 {
	if m == 0 {
		m = def
	}
	return unixmode.Bits(m)
}

// printRecipe writes v for people.
func printRecipe(w io.Writer, v recipeView) {
	fmt.Fprintf(w, "%s %s (%s): %s\n", v.Name, v.Version, v.Class, v.Description)
	fmt.Fprintf(w, "  file: %s\n  license: %s\n  arches: %s\n", v.Path, v.License, strings.Join(v.Arches, ", "))
	for _, b := range v.Builds {
		fmt.Fprintf(w, "%s (linux/%s), version %s", b.Arch, b.GoArch, b.Version)
		if b.OSID != "" {
			fmt.Fprintf(w, ", for %s %s", b.OSID, b.OSVersion)
		}
		fmt.Fprintf(w, ": release id=%s", b.Release.ID)
		for _, f := range []struct{ k, v string }{{"level", b.Release.Level}, {"version-id", b.Release.VersionID}} {
			if f.v != "" {
				fmt.Fprintf(w, " %s=%s", f.k, f.v)
			}
		}
		if b.Release.ReloadManager {
			fmt.Fprint(w, " reload-manager")
		}
		fmt.Fprintln(w)
		for i, s := range b.Sources {
			fmt.Fprintf(w, "  %d. (line %d) %s\n", i+1, s.Line, describeSource(s))
		}
	}
	for _, e := range v.ForeignELF {
		fmt.Fprintf(w, "foreign-elf %s (line %d): %s\n", e.Pattern, e.Line, e.Reason)
	}
}

// describeSource is one line about a source.
func describeSource(s sourceView) string {
	var parts []string
	switch {
	case s.URL != "":
		parts = append(parts, s.URL)
		if s.SHA256 != "" {
			parts = append(parts, "sha256 "+s.SHA256)
		} else {
			parts = append(parts, "sha256 from "+s.SHA256URL)
		}
	case s.OCI != "":
		parts = append(parts, "oci "+s.OCI)
	case s.Files != "":
		parts = append(parts, "files "+s.Files)
	}
	if s.Install != nil {
		parts = append(parts, fmt.Sprintf("install to %s (mode %s)", s.Install.To, s.Install.Mode))
	}
	if x := s.Extract; x != nil {
		what := "everything"
		if len(x.Include) > 0 {
			what = strings.Join(x.Include, ", ")
		}
		parts = append(parts, fmt.Sprintf("extract %s to %s (strip-components %d)", what, x.To, x.StripComponents))
	}
	return strings.Join(parts, ", ")
}

func recipesLintCommand() *cli.Command {
	return &cli.Command{
		Name:      "lint",
		Usage:     "check recipes (the whole shipped catalog without arguments) for every problem, offline",
		ArgsUsage: "[RECIPE…]",
		Description: `RECIPE is a recipe.yaml, a folder holding one, or a name from the shipped catalog;
without one, every catalog recipe is checked. Nothing is fetched. Checks: the
schema; every template renders for every arch (a kernel-bound recipe's for a
stand-in OS release); url and sha256-url sources are https; every url source
is verified (sha256, per arch, or sha256-url); description and license are
present; a recipe with release.reload-manager ships units in a files source.
validate.foreign-elf entries are listed with their reasons. Problems are
listed as FILE:LINE: message on stdout; any problem makes the exit code 1.

Examples:
  bakery recipes lint
  bakery recipes lint ./my-tool/recipe.yaml kubernetes
  bakery recipes lint --json | jq '.recipes[] | select(.problems != [])'`,
		Flags: []cli.Flag{jsonFlag},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			var reports []lint.Report
			if cmd.NArg() == 0 {
				reports = lint.Catalog()
			}
			for _, arg := range cmd.Args().Slice() {
				reports = append(reports, lint.Load(arg))
			}
			if reports == nil {
				reports = []lint.Report{}
			}
			total, bad := 0, 0
			for _, rep := range reports {
				total += len(rep.Problems)
				if len(rep.Problems) > 0 {
					bad++
				}
			}
			if cmd.Bool("json") {
				if err := printJSON(os.Stdout, struct {
					Recipes  []lint.Report `json:"recipes"`
					Problems int           `json:"problems"`
				}{reports, total}); err != nil {
					return err
				}
			} else {
				for _, rep := range reports {
					for _, p := range rep.Problems {
						fmt.Fprintln(os.Stdout, p)
					}
					for _, e := range rep.ForeignELF {
						fmt.Fprintf(os.Stdout, "%s:%d: note: validate.foreign-elf lets ELF files for other arches at %s: %s\n", rep.Path, e.Line, e.Pattern, e.Reason)
					}
				}
			}
			if total > 0 {
				return fmt.Errorf("lint: %s in %d of %s", count(total, "problem"), bad, count(len(reports), "recipe"))
			}
			stderrf("lint: %s, no problems\n", count(len(reports), "recipe"))
			return nil
		},
	}
}

// count spells n things.
func count(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}
