package merge

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sysext-bakery/bakery/internal/atomicfile"
	"github.com/sysext-bakery/bakery/sysext"
)

// ConfigPath is sync's configuration, relative to the root.
const ConfigPath = "etc/bakery/sync.yaml"

// ExtensionsDir is where sync installs images, relative to the root.
const ExtensionsDir = "var/lib/extensions"

// rollbackDir keeps the previous image of each extension.
const rollbackDir = StateDir + "/rollback"

// Config is /etc/bakery/sync.yaml: what the node should run.
type Config struct {
	// Registry is HOST[:PORT]/NAMESPACE; each extension is a repository in it.
	Registry string `yaml:"registry"`
	// Keys are paths of trusted public keys (PEM).
	Keys []string `yaml:"keys"`
	// Insecure talks plain HTTP to the registry.
	Insecure bool `yaml:"insecure"`
	// Policy is the trust policy of sync and merge.
	Policy struct {
		// RequireSignature makes merge take only verified images.
		RequireSignature bool `yaml:"require-signature"`
	} `yaml:"policy"`
	// Extensions are the extensions to install.
	Extensions []ConfigExtension `yaml:"extensions"`
}

// ConfigExtension is one wanted extension, by tag or by digest.
type ConfigExtension struct {
	Name string `yaml:"name"`
	// Tag is a version or a moving tag; "latest" when neither is set.
	Tag string `yaml:"tag"`
	// Digest pins the image index by digest.
	Digest string `yaml:"digest"`
}

// Ref is the reference sync pulls for e.
func (c *Config) Ref(e ConfigExtension) string {
	base := strings.TrimSuffix(c.Registry, "/") + "/" + e.Name
	switch {
	case e.Digest != "":
		return base + "@" + e.Digest
	case e.Tag != "":
		return base + ":" + e.Tag
	}
	return base + ":latest"
}

// pins tells whether e names exactly version (by tag) or an exact image (by
// digest), which allows installing it over a newer one.
func (e ConfigExtension) pins(version string) bool {
	return e.Digest != "" || (version != "" && (e.Tag == version || e.Tag == strings.ReplaceAll(version, "+", "_")))
}

// LoadConfig reads and checks a sync.yaml.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseConfig(data, path)
}

// ParseConfig parses and checks a sync.yaml; path names it in errors.
func ParseConfig(data []byte, path string) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	seen := map[string]bool{}
	for i, e := range c.Extensions {
		switch {
		case checkName(e.Name) != "":
			return nil, fmt.Errorf("%s: extensions[%d]: invalid name %q", path, i, e.Name)
		case seen[e.Name]:
			return nil, fmt.Errorf("%s: extensions[%d]: %s is listed twice", path, i, e.Name)
		case e.Tag != "" && e.Digest != "":
			return nil, fmt.Errorf("%s: extension %s: set tag or digest, not both", path, e.Name)
		case e.Digest != "" && !strings.HasPrefix(e.Digest, "sha256:"):
			return nil, fmt.Errorf("%s: extension %s: digest %q must be sha256:HEX", path, e.Name, e.Digest)
		}
		seen[e.Name] = true
	}
	if len(c.Extensions) > 0 && c.Registry == "" {
		return nil, fmt.Errorf("%s: registry is not set (e.g. registry: ghcr.io/example/sysexts)", path)
	}
	if c.Policy.RequireSignature && len(c.Keys) == 0 {
		return nil, fmt.Errorf("%s: policy.require-signature needs at least one trusted key in keys", path)
	}
	return &c, nil
}

// Pulled is what a Puller fetched.
type Pulled struct {
	// Digest is the sha256 of the image file, "sha256:HEX".
	Digest string
	// Version is the extension's version, when known.
	Version string
	// Verified is true when the signature was checked against a trusted key.
	Verified bool
}

// Puller fetches one extension image for an architecture into dest, a new
// file, verifying its signature before writing when it has keys.
type Puller interface {
	Pull(ctx context.Context, ref, arch, dest string) (Pulled, error)
}

// SyncResult is what a sync did, per extension.
type SyncResult struct {
	Installed []string  `json:"installed"`
	Unchanged []string  `json:"unchanged"`
	Removed   []string  `json:"removed"`
	Refused   []Refusal `json:"refused"`
}

// Changed tells whether the merge needs a refresh.
func (r *SyncResult) Changed() bool { return len(r.Installed)+len(r.Removed) > 0 }

// Sync installs the extensions cfg lists for arch under root: each is
// pulled and verified into a temp file beside its destination, then
// renamed to /var/lib/extensions/NAME.raw; the replaced image is kept for
// Rollback; a downgrade is refused unless cfg pins that version; images
// sync installed that cfg no longer lists are removed. An extension that
// fails is reported and the others proceed. state.json covers the
// installed image of every extension at every moment, so that a sync
// killed at any point leaves the old or the new image, verified.
func Sync(ctx context.Context, root string, cfg *Config, arch string, p Puller) (*SyncResult, error) {
	unlock, err := Lock(root)
	if err != nil {
		return nil, err
	}
	defer unlock()
	st, err := LoadState(root)
	if err != nil {
		return nil, err
	}
	if err := finishInterrupted(root, st); err != nil {
		return nil, err
	}
	extDir := filepath.Join(root, ExtensionsDir)
	if err := os.MkdirAll(extDir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", extDir, err)
	}
	res := &SyncResult{Installed: []string{}, Unchanged: []string{}, Removed: []string{}, Refused: []Refusal{}}
	listed := map[string]bool{}
	for _, e := range cfg.Extensions {
		listed[e.Name] = true
		ref := cfg.Ref(e)
		changed, err := syncOne(ctx, root, cfg, e, arch, p, st)
		switch {
		case err != nil:
			res.Refused = append(res.Refused, Refusal{Name: e.Name, Path: ref, Reason: err.Error()})
		case changed:
			res.Installed = append(res.Installed, e.Name)
		default:
			res.Unchanged = append(res.Unchanged, e.Name)
		}
	}
	for name := range st.Extensions {
		if listed[name] {
			continue
		}
		for _, p := range []string{filepath.Join(extDir, name+".raw"), filepath.Join(root, rollbackDir, name+".raw")} {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return res, fmt.Errorf("remove %s, no longer in %s: %w", p, ConfigPath, err)
			}
		}
		delete(st.Extensions, name)
		if err := st.Save(root); err != nil {
			return res, err
		}
		res.Removed = append(res.Removed, name)
	}
	return res, nil
}

// syncOne pulls and installs one extension; changed is false when the
// installed image is already the wanted one.
func syncOne(ctx context.Context, root string, cfg *Config, e ConfigExtension, arch string, p Puller, st *State) (changed bool, err error) {
	dst := filepath.Join(root, ExtensionsDir, e.Name+".raw")
	tmp := filepath.Join(root, ExtensionsDir, "."+e.Name+".raw.partial")
	os.Remove(tmp)
	defer os.Remove(tmp)
	ref := cfg.Ref(e)
	got, err := p.Pull(ctx, ref, arch, tmp)
	if err != nil {
		return false, fmt.Errorf("pull: %w", err)
	}
	if len(cfg.Keys) > 0 && !got.Verified {
		return false, errors.New("the image's signature was not verified against the trusted keys; not installing it")
	}
	sum, err := fileDigest(tmp)
	if err != nil {
		return false, err
	}
	if sum != got.Digest {
		return false, fmt.Errorf("downloaded image has digest %s, the registry said %s; not installing it", sum, got.Digest)
	}
	cur := st.Extensions[e.Name]
	if cur != nil && cur.Digest == sum {
		if have, err := fileDigest(dst); err == nil && have == sum {
			return false, nil
		}
	}
	if cur != nil && cur.Version != "" && got.Version != "" && sysext.CompareVersions(got.Version, cur.Version) < 0 && !e.pins(got.Version) {
		return false, fmt.Errorf("%s would downgrade %s to %s; pin that version in %s (tag: %s) to allow it", ref, cur.Version, got.Version, ConfigPath, got.Version)
	}
	return true, install(root, e.Name, tmp, Version{Version: got.Version, Digest: sum, Ref: ref}, st)
}

// install moves the verified image tmp into place as NAME.raw, keeping
// the replaced image for rollback, with state.json covering the installed
// image before and after every step.
func install(root, name, tmp string, v Version, st *State) error {
	dst := filepath.Join(root, ExtensionsDir, name+".raw")
	if err := syncFile(tmp); err != nil {
		return err
	}
	cur := st.Extensions[name]
	if cur == nil {
		cur = &Installed{}
		st.Extensions[name] = cur
	}
	if cur.Digest != "" {
		if err := keepPrevious(root, name, dst); err != nil {
			return err
		}
	}
	cur.Pending = &v
	if err := st.Save(root); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("install %s: %w", dst, err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(dst)); err != nil {
		return err
	}
	if cur.Digest != "" {
		cur.Previous = &Version{Version: cur.Version, Digest: cur.Digest, Ref: cur.Ref}
	}
	cur.Ref, cur.Version, cur.Digest, cur.Pending, cur.Verified = v.Ref, v.Version, v.Digest, nil, time.Now().UTC()
	return st.Save(root)
}

// keepPrevious keeps a copy of the installed image (a hard link when
// possible) as the rollback image, replacing the one kept before.
func keepPrevious(root, name, installed string) error {
	dir := filepath.Join(root, rollbackDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	keep := filepath.Join(dir, name+".raw")
	tmp := filepath.Join(dir, "."+name+".raw.tmp")
	os.Remove(tmp)
	if err := os.Link(installed, tmp); err != nil {
		f, err := os.Open(installed)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("keep previous image: %w", err)
		}
		defer f.Close()
		return atomicfile.Copy(keep, f, 0o644)
	}
	if err := os.Rename(tmp, keep); err != nil {
		return fmt.Errorf("keep previous image: %w", err)
	}
	return atomicfile.SyncDir(dir)
}

// Rollback reinstalls the image an extension had before its last update,
// after checking that the kept image is the one state.json verified.
func Rollback(root, name string) error {
	unlock, err := Lock(root)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := LoadState(root)
	if err != nil {
		return err
	}
	if err := finishInterrupted(root, st); err != nil {
		return err
	}
	cur := st.Extensions[name]
	if cur == nil || cur.Previous == nil {
		return fmt.Errorf("rollback %s: no previous image recorded in %s", name, statePath(root))
	}
	kept := filepath.Join(root, rollbackDir, name+".raw")
	sum, err := fileDigest(kept)
	if err != nil {
		return fmt.Errorf("rollback %s: %w", name, err)
	}
	if sum != cur.Previous.Digest {
		return fmt.Errorf("rollback %s: kept image %s has digest %s, not the verified %s; run `bakery sync` instead", name, kept, sum, cur.Previous.Digest)
	}
	prev := *cur.Previous
	// Move the kept image aside first: keepPrevious replaces it.
	tmp := filepath.Join(root, ExtensionsDir, "."+name+".raw.partial")
	if err := os.Rename(kept, tmp); err != nil {
		return fmt.Errorf("rollback %s: %w", name, err)
	}
	return install(root, name, tmp, prev, st)
}

// finishInterrupted settles entries a killed sync left pending: the
// pending digest becomes the installed one if NAME.raw has it.
func finishInterrupted(root string, st *State) error {
	dirty := false
	for name, in := range st.Extensions {
		if in.Pending == nil {
			continue
		}
		sum, _ := fileDigest(filepath.Join(root, ExtensionsDir, name+".raw"))
		if sum == in.Pending.Digest {
			if in.Digest != "" {
				in.Previous = &Version{Version: in.Version, Digest: in.Digest, Ref: in.Ref}
			}
			in.Ref, in.Version, in.Digest, in.Verified = in.Pending.Ref, in.Pending.Version, in.Pending.Digest, time.Now().UTC()
		}
		in.Pending = nil
		if in.Digest == "" {
			delete(st.Extensions, name)
		}
		dirty = true
	}
	if !dirty {
		return nil
	}
	return st.Save(root)
}

// fileDigest is the sha256 of a file, "sha256:HEX".
func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// syncFile flushes a file's content to disk.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}
