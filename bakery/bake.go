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
	"sync"

	"github.com/sysext-bakery/bakery/internal/sha256sums"
	"github.com/sysext-bakery/bakery/recipes"
	"github.com/sysext-bakery/bakery/sources"
	"github.com/sysext-bakery/bakery/stage"
	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/tree"
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
// files in the output directory. The stager tells a tree.Builder what it
// writes, so that the staged tree is never walked again: with a
// sysext.StreamBuilder (the native squashfs one) the image is written
// while the sources are staged, with a sysext.TreeBuilder (native erofs)
// from the tree in memory, with any other builder from the staging
// directory. The tree is validated as it is staged (validate.Ahead), and
// removed while the image is read back for its digest.
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
	staged := tree.NewBuilder(stageDir, uint32(os.Geteuid()), uint32(os.Getegid()))
	release, err := writeRelease(b, stageDir, staged)
	if err != nil {
		return Image{}, nil, err
	}
	name := sysext.ImageFile(b.Recipe.Name, b.ImageVersion, b.Arch)
	dst := filepath.Join(opts.OutDir, name)
	var removal sync.WaitGroup
	out, err := writeOutput(ctx, dst, opts.Build, func(tmp string) error {
		err := stageAndBuild(ctx, b, opts, stageDir, staged, release, tmp, step)
		removal.Go(func() { os.RemoveAll(stageDir) })
		return err
	})
	if err == nil {
		if err = out.Digest(); err != nil {
			out.Abort()
		}
	}
	removal.Wait()
	if err != nil {
		return Image{}, nil, err
	}
	return Image{
		Name: b.Recipe.Name, Version: b.ImageVersion, Architecture: b.Arch,
		Path: dst, SHA256: out.SHA256, Size: out.Size, Format: opts.Format.Name(), Builder: opts.Builder.Name(), Sidecars: out.Sidecars,
		InputsDigest: inputs.String(),
	}, out, nil
}

// stageAndBuild stages b's sources into stageDir, telling staged, which
// holds the release file at release already, validates the tree and has
// the builder write the image to dst. A streaming builder runs beside the
// staging; when the files did not come in walk order (tree.ErrOrder) it
// writes the image again from the staged tree. Validation reads the files
// as they are staged (validate.Ahead). On failure or cancellation, the
// builder and the reading are stopped and waited for.
func stageAndBuild(ctx context.Context, b *recipes.Build, opts Options, stageDir string, staged *tree.Builder, release, dst string, step func(s, detail string)) error {
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	name := sysext.ImageFile(b.Recipe.Name, b.ImageVersion, b.Arch)
	ahead, err := validate.ReadAhead(bctx, staged.Stream(), b.Arch)
	if err != nil {
		return err
	}
	defer func() {
		cancel() // the reading stops even on a way out that did not cancel
		ahead.Wait()
	}()
	step("fetch", fmt.Sprintf("%d sources", len(b.Sources)))
	streaming, _ := opts.Builder.(sysext.StreamBuilder)
	var streamed chan error
	if streaming != nil {
		step("build", fmt.Sprintf("%s with %s, as the sources are staged", name, opts.Builder.Name()))
		streamed = make(chan error, 1)
		go func() {
			err := streaming.BuildStream(bctx, staged.Stream(), dst, opts.Build)
			if err != nil && !errors.Is(err, tree.ErrOrder) {
				cancel() // no use staging on
			}
			streamed <- err
		}()
	}
	err = Stage(stage.WithSink(bctx, releaseGuard{staged, release}), b, stageDir, opts)
	staged.Close(err)
	var t *tree.Tree
	if err == nil {
		t, err = staged.Built(ctx)
	}
	if err == nil {
		step("validate", stageDir)
		err = validateTree(ctx, ahead, t, b, step)
	}
	if err != nil {
		cancel()
		if streamed != nil {
			if serr := <-streamed; serr != nil && errors.Is(err, context.Canceled) && ctx.Err() == nil {
				err = serr // the builder failed first and stopped the staging
			}
		}
		return err
	}
	switch tb, _ := opts.Builder.(sysext.TreeBuilder); {
	case streamed != nil:
		if err = <-streamed; errors.Is(err, tree.ErrOrder) {
			step("build", fmt.Sprintf("%s again: the sources were not in walk order", name))
			err = streaming.BuildTree(ctx, t, dst, opts.Build)
		}
	case tb != nil:
		step("build", fmt.Sprintf("%s with %s", name, opts.Builder.Name()))
		err = tb.BuildTree(ctx, t, dst, opts.Build)
	default:
		step("build", fmt.Sprintf("%s with %s", name, opts.Builder.Name()))
		err = opts.Builder.Build(ctx, stageDir, dst, opts.Build)
	}
	return err
}

// validateTree checks the staged tree t with what ahead read of it,
// showing the foreign ELF files the recipe allows.
func validateTree(ctx context.Context, ahead *validate.Ahead, t *tree.Tree, b *recipes.Build, step func(s, detail string)) error {
	allowed, err := ahead.Tree(ctx, t, b.Recipe)
	if err != nil {
		return err
	}
	for _, a := range allowed {
		step("foreign-elf", fmt.Sprintf("%s, built for %s, allowed by %s:%d: %s", a.Path, a.For, b.Recipe.Path, a.Rule.Line, a.Rule.Reason))
	}
	return nil
}

// releaseGuard passes what the stager writes on to a tree.Builder, and
// refuses anything at the release file's path, which bakery writes.
type releaseGuard struct {
	*tree.Builder
	release string
}

// guard refuses the path p when it is the release file's.
func (g releaseGuard) guard(p string) error {
	if p == g.release {
		return fmt.Errorf("%s: a source already ships this file; bakery writes it from the recipe's release: section, remove it from the source", p)
	}
	return nil
}

// File refuses the release file's path, else tells the Builder.
func (g releaseGuard) File(p string, mode fs.FileMode, size int64) error {
	if err := g.guard(p); err != nil {
		return err
	}
	return g.Builder.File(p, mode, size)
}

// Symlink refuses the release file's path, else tells the Builder.
func (g releaseGuard) Symlink(p, target string) error {
	if err := g.guard(p); err != nil {
		return err
	}
	return g.Builder.Symlink(p, target)
}

// Link refuses the release file's path, else tells the Builder.
func (g releaseGuard) Link(p, target string) error {
	if err := g.guard(p); err != nil {
		return err
	}
	return g.Builder.Link(p, target)
}

// Remove refuses the release file's path, else tells the Builder.
func (g releaseGuard) Remove(p string) error {
	if err := g.guard(p); err != nil {
		return err
	}
	return g.Builder.Remove(p)
}

// writeRelease writes the extension-release.NAME of the recipe's class into
// the empty staging root stageDir, before any source, telling staged, and
// returns its path.
func writeRelease(b *recipes.Build, stageDir string, staged *tree.Builder) (string, error) {
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
		return "", fmt.Errorf("release: %w", err)
	}
	root, err := os.OpenRoot(stageDir)
	if err != nil {
		return "", err
	}
	defer root.Close()
	p := class.ReleasePath(b.Recipe.Name)
	if err := mkdirs(root, path.Dir(p), staged); err != nil {
		return "", err
	}
	content := rel.Release().Render()
	f, err := root.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", err
	}
	_, err = f.Write(content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = root.Chmod(p, 0o644)
	}
	if err == nil {
		err = staged.File(p, 0o644, int64(len(content)))
	}
	return p, err
}

// mkdirs creates the missing directories of dir (slash-separated, relative
// to root) with mode 0755 whatever the umask, leaving existing ones alone,
// and tells staged of those it makes.
func mkdirs(root *os.Root, dir string, staged *tree.Builder) error {
	if dir == "." {
		return nil
	}
	if err := mkdirs(root, path.Dir(dir), staged); err != nil {
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
	if err := root.Chmod(dir, 0o755); err != nil {
		return err
	}
	return staged.Dir(dir, 0o755)
}
