package bakery

import (
	"bytes"
	"context"
	"encoding/json"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/sysext-bakery/bakery/recipes"
	"github.com/sysext-bakery/bakery/sources"
	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/formats"
)

// inputsSchema names the composition of the inputs digest below: change
// it whenever that composition changes, so that no old digest matches.
const inputsSchema = "bakery.inputs.v1"

// inputs is everything that decides the bytes of one build's image, in
// the canonical form its digest is taken of.
type inputs struct {
	Schema string `json:"schema"`
	// Recipe is the recipe file's digest.
	Recipe    string `json:"recipe"`
	Version   string `json:"version"`
	Arch      string `json:"arch"`
	OSID      string `json:"osId"`
	OSVersion string `json:"osVersion"`
	// The image options that change its bytes.
	Format      string             `json:"format"`
	Compression sysext.Compression `json:"compression"`
	Level       int                `json:"level"`
	Builder     string             `json:"builder"`
	Epoch       int64              `json:"epoch"`
	AllRoot     bool               `json:"allRoot"`
	// Sources are the sources' digests, in recipe order.
	Sources []string `json:"sources"`
}

// InputsDigest is the digest of everything that decides the bytes of b's
// image under opts: the recipe file, the version, arch and OS release
// built, the image options (format, compression, level, builder, epoch,
// owners) and every source's digest (a url source's pinned sha256 or the
// one its sha256-url names, an oci source's pinned digest, a files
// source's tree). It fetches at most the checksum documents of sha256-url
// sources (cached), never an artifact. What it leaves out changes no byte:
// mirrors, limits, the cache, the output directory. Two builds with the
// same inputs digest give the same image, so one already published need
// not be baked again.
func InputsDigest(ctx context.Context, b *recipes.Build, opts Options) (v1.Hash, error) {
	all, err := openSources(b, opts)
	if err != nil {
		return v1.Hash{}, err
	}
	format := formats.Default()
	if opts.Format != nil {
		format = opts.Format
	}
	in := inputs{
		Schema: inputsSchema, Recipe: b.Recipe.Digest.String(),
		Version: b.Version, Arch: b.Arch, OSID: b.OS.ID, OSVersion: b.OS.Version,
		Format: format.Name(), Compression: opts.Build.Compression, Level: opts.Build.Level,
		Builder: opts.Builder.Name(), Epoch: opts.Build.Epoch, AllRoot: opts.Build.AllRoot,
		Sources: make([]string, len(all)),
	}
	for i, s := range all {
		d, err := s.Resolve(ctx)
		if err != nil {
			return v1.Hash{}, sourceError(b, b.Sources[i], err)
		}
		in.Sources[i] = d.String()
	}
	doc, err := json.Marshal(in)
	if err != nil {
		return v1.Hash{}, err
	}
	h, _, err := v1.SHA256(bytes.NewReader(doc))
	return h, err
}

// openSources opens every source of b with opts.Fetcher, checking what can
// be checked without the network.
func openSources(b *recipes.Build, opts Options) ([]sources.Source, error) {
	dir, err := recipeDir(b.Recipe)
	if err != nil {
		return nil, err
	}
	all := make([]sources.Source, len(b.Sources))
	for i, src := range b.Sources {
		if all[i], err = sources.Open(opts.Fetcher, dir, src); err != nil {
			return nil, sourceError(b, src, err)
		}
	}
	return all, nil
}
