// Package bakery is the pipeline that bakes images: for each arch it
// expands the recipe, fetches and stages the sources (package sources),
// validates the tree (package validate), has the format's builder write
// the image (package sysext and its formats) and records the checksums:
// bakery's flow is recipes → sources → stage → validate → format → image →
// registry → node.
package bakery

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sysext-bakery/bakery/internal/sha256sums"
	"github.com/sysext-bakery/bakery/recipes"
	"github.com/sysext-bakery/bakery/sources"
	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/validate"
)

// Options say what to bake and where.
type Options struct {
	// Version overrides the recipe's version when not empty.
	Version string
	// Arches are systemd architecture names; empty means the recipe's.
	Arches []string
	// OS is the OS release a kernel-bound recipe is built for.
	OS recipes.OS
	// OutDir receives NAME-VERSION-ARCH.raw files and SHA256SUMS.
	OutDir string
	// Format is the images' file system.
	Format sysext.Format
	// Builder writes the images: one of Format's builders.
	Builder sysext.Builder
	// Build is passed to the Builder.
	Build sysext.BuildOptions
	// Fetcher downloads and verifies sources (see package sources).
	Fetcher *sources.Fetcher
	// MaxEntries is the most members one source may unpack; 0 means
	// stage.DefaultMaxEntries.
	MaxEntries int
	// Progress, if not nil, is told what the pipeline is doing.
	Progress Progress
}

// Progress receives the steps of a bake, for the CLI to show.
type Progress interface {
	// Step is called as each step starts: arch is empty for steps that
	// concern every arch.
	Step(arch, step, detail string)
}

// Image is one baked image.
type Image struct {
	Name         string `json:"name"`
	Version      string `json:"version"`
	Architecture string `json:"architecture"`
	Path         string `json:"path"`
	SHA256       string `json:"sha256"`
	Size         int64  `json:"size"`
	Format       string `json:"format"`
	Builder      string `json:"builder"`
	// InputsDigest is the build's (see InputsDigest).
	InputsDigest string `json:"inputsDigest"`
	// Sidecars are the dm-verity files of a signed plain image.
	Sidecars []string `json:"sidecars,omitempty"`
}

// Result is what a bake wrote.
type Result struct {
	Images []Image `json:"images"`
	// Checksums is the SHA256SUMS file, Inputs the INPUTS file: each
	// image's inputs digest in the same format, which push publishes.
	Checksums string `json:"checksums"`
	Inputs    string `json:"inputs"`
}

// FileName is the Flatcar-style name of an image: NAME-VERSION-ARCH.raw.
func FileName(name, version, arch string) string {
	return fmt.Sprintf("%s-%s-%s.raw", name, version, arch)
}

// Plan expands r for every arch opts asks for (the recipe's when none) and
// checks the image options, fetching nothing: its errors are the mistakes
// in how a bake was asked for, which Bake reports before any download.
func Plan(r *recipes.Recipe, opts Options) ([]*recipes.Build, error) {
	if opts.Format == nil || opts.Builder == nil {
		return nil, fmt.Errorf("bakery: Options.Format and Options.Builder are required")
	}
	if err := checkBuild(opts.Format, opts.Builder, opts.Build); err != nil {
		return nil, err
	}
	arches := opts.Arches
	if len(arches) == 0 {
		arches = r.Arches
	}
	var builds []*recipes.Build
	for i, arch := range arches {
		if slices.Contains(arches[:i], arch) {
			return nil, fmt.Errorf("arch %s is asked for twice", arch)
		}
		b, err := r.ExpandFor(recipes.Target{Version: opts.Version, Arch: arch, OS: opts.OS})
		if err != nil {
			return nil, err
		}
		builds = append(builds, b)
	}
	return builds, nil
}

// Bake builds the recipe's images for every requested arch, after Plan
// found nothing wrong. The output directory changes only when every arch
// succeeded: images are written to temporary files and renamed into place
// at the end, then SHA256SUMS and INPUTS (each image's inputs digest, in
// SHA256SUMS's format, for push to publish).
func Bake(ctx context.Context, r *recipes.Recipe, opts Options) (*Result, error) {
	if opts.Fetcher == nil {
		return nil, fmt.Errorf("bakery: Options.Fetcher is required")
	}
	builds, err := Plan(r, opts)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("output directory: %w", err)
	}
	var pending []*Output
	defer func() {
		for _, o := range pending {
			o.Abort()
		}
	}()
	res := &Result{Checksums: filepath.Join(opts.OutDir, "SHA256SUMS"), Inputs: filepath.Join(opts.OutDir, "INPUTS")}
	for _, b := range builds {
		img, tmp, err := bakeArch(ctx, b, opts)
		var located *recipes.Error
		switch {
		case errors.As(err, &located):
			return nil, fmt.Errorf("arch %s: %w", b.Arch, err)
		case err != nil:
			return nil, fmt.Errorf("recipe %s, arch %s: %w", r.Path, b.Arch, err)
		}
		pending = append(pending, tmp)
		res.Images = append(res.Images, img)
	}
	for _, o := range pending {
		if err := o.Commit(); err != nil {
			return nil, err
		}
	}
	sums, inputs := map[string]string{}, map[string]string{}
	for _, img := range res.Images {
		sums[filepath.Base(img.Path)] = img.SHA256
		inputs[filepath.Base(img.Path)] = strings.TrimPrefix(img.InputsDigest, "sha256:")
	}
	if err := sha256sums.Update(res.Checksums, sums); err != nil {
		return nil, err
	}
	if err := sha256sums.Update(res.Inputs, inputs); err != nil {
		return nil, err
	}
	return res, nil
}

// bakeArch stages, validates and builds one arch's image into temporary
// files in the output directory.
func bakeArch(ctx context.Context, b *recipes.Build, opts Options) (Image, *Output, error) {
	step := func(s, detail string) {
		if opts.Progress != nil {
			opts.Progress.Step(b.Arch, s, detail)
		}
	}
	stageDir, err := os.MkdirTemp("", "bakery-stage-")
	if err != nil {
		return Image{}, nil, err
	}
	defer os.RemoveAll(stageDir)
	// The staging root itself must not depend on the umask.
	if err := os.Chmod(stageDir, 0o755); err != nil {
		return Image{}, nil, err
	}
	inputs, err := InputsDigest(ctx, b, opts)
	if err != nil {
		return Image{}, nil, err
	}
	step("inputs", inputs.String())
	step("fetch", fmt.Sprintf("%d sources", len(b.Sources)))
	if err := Stage(ctx, b, stageDir, opts); err != nil {
		return Image{}, nil, err
	}
	step("validate", stageDir)
	if err := writeRelease(b, stageDir); err != nil {
		return Image{}, nil, err
	}
	allowed, err := validate.Tree(os.DirFS(stageDir), b.Arch, b.Recipe)
	if err != nil {
		return Image{}, nil, err
	}
	for _, a := range allowed {
		step("foreign-elf", fmt.Sprintf("%s, built for %s, allowed by %s:%d: %s", a.Path, a.For, b.Recipe.Path, a.Rule.Line, a.Rule.Reason))
	}
	name := FileName(b.Recipe.Name, b.ImageVersion, b.Arch)
	dst := filepath.Join(opts.OutDir, name)
	step("build", fmt.Sprintf("%s with %s", name, opts.Builder.Name()))
	out, err := WriteImage(ctx, opts.Builder, stageDir, dst, opts.Build)
	if err != nil {
		return Image{}, nil, err
	}
	return Image{
		Name: b.Recipe.Name, Version: b.ImageVersion, Architecture: b.Arch,
		Path: dst, SHA256: out.SHA256, Size: out.Size, Format: opts.Format.Name(), Builder: opts.Builder.Name(), Sidecars: out.Sidecars,
		InputsDigest: inputs.String(),
	}, out, nil
}

// writeRelease writes the extension-release.NAME of the recipe's class.
func writeRelease(b *recipes.Build, stageDir string) error {
	class := b.Recipe.ImageClass()
	rel := sysext.ExtensionRelease{
		Class:            class,
		ID:               b.Release.ID,
		VersionID:        b.Release.VersionID,
		Level:            b.Release.Level,
		Architecture:     b.Arch,
		Scope:            b.Release.Scope,
		ReloadManager:    b.Release.ReloadManager,
		ExtensionID:      b.Recipe.Name,
		ExtensionVersion: b.ImageVersion,
	}
	if err := rel.Validate(); err != nil {
		return fmt.Errorf("release: %w", err)
	}
	root, err := os.OpenRoot(stageDir)
	if err != nil {
		return err
	}
	defer root.Close()
	p := class.ReleasePath(b.Recipe.Name)
	if _, err := root.Lstat(p); err == nil {
		return fmt.Errorf("%s: a source already ships this file; bakery writes it from the recipe's release: section, remove it from the source", p)
	}
	if err := mkdirs(root, path.Dir(p)); err != nil {
		return err
	}
	f, err := root.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(rel.Release().Render())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = root.Chmod(p, 0o644)
	}
	return err
}

// mkdirs creates the missing directories of dir (slash-separated, relative
// to root) with mode 0755 whatever the umask, leaving existing ones alone.
func mkdirs(root *os.Root, dir string) error {
	if dir == "." {
		return nil
	}
	if err := mkdirs(root, path.Dir(dir)); err != nil {
		return err
	}
	fi, err := root.Lstat(dir)
	switch {
	case err == nil && fi.IsDir():
		return nil
	case err == nil:
		return fmt.Errorf("%s: is not a directory", dir)
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	if err := root.Mkdir(dir, 0o755); err != nil {
		return err
	}
	return root.Chmod(dir, 0o755)
}
