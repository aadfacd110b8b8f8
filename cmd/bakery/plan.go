package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/urfave/cli/v3"

	"github.com/sysext-bakery/bakery/bakery"
	"github.com/sysext-bakery/bakery/recipes"
	"github.com/sysext-bakery/bakery/registry"
)

func planCommand() *cli.Command {
	return &cli.Command{
		Name:      "plan",
		Usage:     "the build matrix of recipes (the whole catalog by default), skipping what is published",
		ArgsUsage: "[RECIPE…]",
		Description: `One job per recipe version (each recipe's own), arch and, for a kernel-bound
recipe, OS release, with the inputs digest bake would give its image. Nothing
but sha256-url checksum documents is fetched (and those are cached).

Kernel-bound recipes (using {{.OSID}} or {{.OSVersion}}) are planned for
--os ID and each of --os-versions V1,V2 (their release.id is a template, so
the OS ID cannot come from the recipe). Named without them, such a recipe is
a usage error; in a plan of the whole catalog it is left out, with a note.

With --registry HOST/ns, the namespace's catalog (what every bakery push
updates) says what is published: a job is marked skip when every arch of its
version (and OS release) is published with the inputs digest of this plan,
since one index holds all arches of a version and is pushed whole.

--json prints a GitHub Actions strategy.matrix:
  {"include": [{"recipe", "name", "version", "arch", "os", "osVersion",
                "inputsDigest", "skip"}, …]}
Image flags (--format, --compression, --level, --builder, --epoch) must be
those bake will use, as they are part of the inputs digest.

Examples:
  bakery plan
  bakery plan kubernetes ./my-tool --registry ghcr.io/me/sysext --json
  bakery plan nvidia-driver --os flatcar --os-versions 4081.2.0,4152.2.0`,
		Flags: append([]cli.Flag{
			registryFlag,
			&cli.StringFlag{Name: "os", Usage: "the OS release ID kernel-bound recipes are planned for, such as flatcar"},
			&cli.StringSliceFlag{Name: "os-versions", Usage: "the OS release VERSION_IDs kernel-bound recipes are planned for, comma separated"},
			mirrorFlag, cacheDirFlag, allowFileURLsFlag,
			insecureFlag, jsonFlag,
		}, buildFlags()...),
		Action: runPlan,
	}
}

func runPlan(ctx context.Context, cmd *cli.Command) error {
	target := cmd.String("registry")
	if err := checkRegistry(target); err != nil {
		return err
	}
	var releases []recipes.OS
	osID, versions := cmd.String("os"), splitList(cmd.StringSlice("os-versions"))
	if (osID == "") != (len(versions) == 0) {
		return usagef("--os and --os-versions go together: kernel-bound recipes are planned for --os ID and each of --os-versions V1,V2")
	}
	for _, v := range versions {
		releases = append(releases, recipes.OS{ID: osID, Version: v})
	}
	rs, err := planRecipes(cmd.Args().Slice(), releases != nil)
	if err != nil {
		return err
	}
	builds, err := bakery.Matrix(rs, releases)
	if err != nil {
		return usagef("%v", err)
	}
	fetcher, err := newFetcher(cmd)
	if err != nil {
		return err
	}
	optsFor := map[*recipes.Recipe]bakery.Options{}
	for _, r := range rs {
		epoch, err := sourceDateEpoch(cmd.Int64("epoch"), r.Path)
		if err != nil {
			return err
		}
		format, builder, build, err := buildOptions(cmd, epoch)
		if err != nil {
			return err
		}
		optsFor[r] = bakery.Options{Format: format, Build: build, Builder: builder, Fetcher: fetcher}
	}
	jobs, err := bakery.Jobs(ctx, builds, func(r *recipes.Recipe) bakery.Options { return optsFor[r] })
	if err != nil {
		return err
	}
	if target != "" {
		cat, err := registry.Catalog(ctx, target, append(registryOptions(cmd), registry.WithoutListing())...)
		if err != nil {
			return fmt.Errorf("read what %s has published: %w", target, err)
		}
		bakery.SkipPublished(jobs, func(j bakery.Job) bool {
			_, ok := cat.Catalog.Published(j.Name, j.Arch, j.InputsDigest)
			return ok
		})
	}
	if jobs == nil {
		jobs = []bakery.Job{}
	}
	skipped := 0
	for _, j := range jobs {
		if j.Skip {
			skipped++
		}
	}
	stderrf("plan: %s, %d to bake, %d published already\n", count(len(jobs), "job"), len(jobs)-skipped, skipped)
	if cmd.Bool("json") {
		return printJSON(os.Stdout, struct {
			Include []bakery.Job `json:"include"`
		}{jobs})
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "RECIPE\tVERSION\tARCH\tOS\tINPUTS\tSKIP")
	for _, j := range jobs {
		release := "-"
		if j.OS != "" {
			release = j.OS + " " + j.OSVersion
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", j.Recipe, j.Version, j.Arch, release, j.InputsDigest, yesNo(j.Skip))
	}
	return w.Flush()
}

// planRecipes resolves the recipes a plan names, or the whole catalog
// when it names none; the catalog's kernel-bound recipes are left out
// (with a note) unless OS releases are given.
func planRecipes(args []string, withReleases bool) ([]*recipes.Recipe, error) {
	var rs []*recipes.Recipe
	for _, arg := range args {
		r, err := recipes.Resolve(arg)
		if err != nil {
			return nil, usagef("%v", err)
		}
		rs = append(rs, r)
	}
	if len(args) > 0 {
		return rs, nil
	}
	for _, name := range recipes.CatalogNames() {
		r, err := recipes.LoadCatalog(name)
		if err != nil {
			return nil, fmt.Errorf("%w (bakery recipes lint %s lists every problem)", err, name)
		}
		if r.KernelBound() && !withReleases {
			stderrf("plan: %s is kernel-bound; left out (plan it with --os ID --os-versions V1,V2)\n", name)
			continue
		}
		rs = append(rs, r)
	}
	return rs, nil
}
