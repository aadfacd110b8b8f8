package bakery

import (
	"context"
	"fmt"
	"sync"

	"github.com/sysext-bakery/bakery/recipes"
)

// Job is one build of a matrix: a recipe's version for one arch and, for
// a kernel-bound recipe, one OS release, with its inputs digest. Its
// JSON is one entry of a GitHub Actions strategy.matrix include list.
type Job struct {
	// Recipe is what bake takes: the catalog name, or the recipe file.
	Recipe string `json:"recipe"`
	// Name is the extension's name (its repository in a registry).
	Name    string `json:"name"`
	Version string `json:"version"`
	Arch    string `json:"arch"`
	// OS and OSVersion are the OS release of a kernel-bound recipe's
	// build (bake --os, --os-version), empty for the others.
	OS           string `json:"os"`
	OSVersion    string `json:"osVersion"`
	InputsDigest string `json:"inputsDigest"`
	// Skip is set when the job's image, and those of every other arch of
	// its version (one index holds them all), are already published.
	Skip bool `json:"skip"`
}

// Matrix expands each recipe for its own version, each of its arches
// and, when it is kernel-bound, each OS release of releases (which must
// then not be empty): the builds of a build matrix, in order. It fetches
// nothing, so its errors are mistakes in what was asked.
func Matrix(rs []*recipes.Recipe, releases []recipes.OS) ([]*recipes.Build, error) {
	var builds []*recipes.Build
	for _, r := range rs {
		targets := []recipes.OS{{}}
		if r.KernelBound() {
			if len(releases) == 0 {
				return nil, &recipes.Error{Path: r.Path, Err: fmt.Errorf("%s is kernel-bound (it uses {{.OSID}} or {{.OSVersion}}): give the OS releases to build it for with --os ID --os-versions V1,V2", r.Name)}
			}
			targets = releases
		}
		if r.Version == "" {
			return nil, &recipes.Error{Path: r.Path, Err: fmt.Errorf("%s has no version: key; a matrix builds each recipe's own version", r.Name)}
		}
		for _, os := range targets {
			for _, arch := range r.Arches {
				b, err := r.ExpandFor(recipes.Target{Arch: arch, OS: os})
				if err != nil {
					return nil, err
				}
				builds = append(builds, b)
			}
		}
	}
	return builds, nil
}

// maxResolving bounds the recipes whose inputs are resolved at once:
// each may fetch checksum documents.
const maxResolving = 8

// Jobs computes the inputs digest of every build, under the options
// optsFor gives for its recipe (the image options, the epoch among them,
// and the Fetcher), fetching at most checksum documents. Recipes are
// resolved in parallel, the builds of one recipe in turn, so that its
// arches share each document's one download.
func Jobs(ctx context.Context, builds []*recipes.Build, optsFor func(*recipes.Recipe) Options) ([]Job, error) {
	jobs := make([]Job, len(builds))
	errs := make([]error, len(builds))
	byRecipe := map[*recipes.Recipe][]int{}
	var order []*recipes.Recipe
	for i, b := range builds {
		name := b.Recipe.Path
		if b.Recipe.Catalog {
			name = b.Recipe.Name
		}
		jobs[i] = Job{Recipe: name, Name: b.Recipe.Name, Version: b.Version, Arch: b.Arch, OS: b.OS.ID, OSVersion: b.OS.Version}
		if byRecipe[b.Recipe] == nil {
			order = append(order, b.Recipe)
		}
		byRecipe[b.Recipe] = append(byRecipe[b.Recipe], i)
	}
	var wg sync.WaitGroup
	slots := make(chan struct{}, maxResolving)
	for _, r := range order {
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer func() { <-slots; wg.Done() }()
			opts := optsFor(r)
			for _, i := range byRecipe[r] {
				d, err := InputsDigest(ctx, builds[i], opts)
				jobs[i].InputsDigest, errs[i] = d.String(), err
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("arch %s: %w", builds[i].Arch, err)
		}
	}
	return jobs, nil
}

// SkipPublished marks the jobs to skip: those whose version (of their
// recipe, for their OS release) has every arch's image published with
// the job's inputs digest, as published says. A version is published as
// one index of all its arches, so it is rebuilt whole when any arch's
// inputs changed.
func SkipPublished(jobs []Job, published func(Job) bool) {
	type version struct{ recipe, version, os, osVersion string }
	stale := map[version]bool{}
	for _, j := range jobs {
		v := version{j.Recipe, j.Version, j.OS, j.OSVersion}
		stale[v] = stale[v] || !published(j)
	}
	for i, j := range jobs {
		jobs[i].Skip = !stale[version{j.Recipe, j.Version, j.OS, j.OSVersion}]
	}
}
