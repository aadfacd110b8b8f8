package merge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sysext-bakery/bakery/internal/atomicfile"
	"github.com/sysext-bakery/bakery/internal/digest"
	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/inspect"
)

// ConfigPath is sync's configuration, relative to the root.
const ConfigPath = "etc/bakery/sync.yaml"

// rollbackDir keeps the previous image of each extension.
const rollbackDir = StateDir + "/rollback"

// maxConfigSize bounds how much of sync.yaml is read.
const maxConfigSize = 1 << 20

// Config is /etc/bakery/sync.yaml: what the node should run.
type Config struct {
	// Registry is HOST[:PORT]/NAMESPACE; each extension is a repository in it.
	Registry string `yaml:"registry"`
	// Keys are the trusted public keys (PEM): absolute paths on the node,
	// read under --root.
	Keys []string `yaml:"keys"`
	// Certificates are X.509 certificates (PEM) trusted to sign the
	// dm-verity root hashes of DDIs, beside those in /etc/verity.d:
	// absolute paths on the node, read under --root.
	Certificates []string `yaml:"certificates,omitempty"`
	// Insecure talks plain HTTP to the registry.
	Insecure bool `yaml:"insecure,omitempty"`
	// Policy is the trust policy of sync and merge.
	Policy struct {
		// RequireSignature makes merge take only verified images.
		RequireSignature bool `yaml:"require-signature"`
		// RequireCatalog makes sync check every extension against the
		// namespace's signed catalog: not expired, not older than the
		// newest one seen, listing the version and index installed, and
		// for moving tags the version the catalog says the tag holds.
		RequireCatalog bool `yaml:"require-catalog"`
	} `yaml:"policy"`
	// Extensions are the extensions to install.
	Extensions []ConfigExtension `yaml:"extensions"`
}

// ConfigExtension is one wanted extension, by tag or by digest.
type ConfigExtension struct {
	Name string `yaml:"name"`
	// Class is the extension's image class, "sysext" (the default) or
	// "confext": where it is installed (Class.InstallDir) and what the
	// registry must hold under its name.
	Class string `yaml:"class,omitempty"`
	// Tag is a version or a moving tag; "latest" when neither is set.
	Tag string `yaml:"tag,omitempty"`
	// Digest pins the image index by digest.
	Digest string `yaml:"digest,omitempty"`
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

// class is e's image class; ParseConfig has checked its name.
func (e ConfigExtension) class() sysext.Class {
	c, _ := sysext.ClassByName(e.Class)
	return c
}

// tag is the tag sync pulls e by, "" when by digest.
func (e ConfigExtension) tag() string {
	switch {
	case e.Digest != "":
		return ""
	case e.Tag != "":
		return e.Tag
	}
	return "latest"
}

// pins tells whether e names exactly version (by tag) or an exact image (by
// digest), which allows installing it over a newer one.
func (e ConfigExtension) pins(version string) bool {
	return e.Digest != "" || (version != "" && (e.Tag == version || e.Tag == strings.ReplaceAll(version, "+", "_")))
}

// LoadConfig reads and checks a sync.yaml.
func LoadConfig(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxConfigSize)
	}
	return ParseConfig(data, path)
}

// ParseConfig parses and checks a sync.yaml; path names it in errors.
// Extension names follow the rule recipes and published repositories
// follow (sysext.CheckName); keys are absolute node paths.
func ParseConfig(data []byte, path string) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	seen := map[string]bool{}
	for i, e := range c.Extensions {
		if err := sysext.CheckName(e.Name); err != nil {
			return nil, fmt.Errorf("%s: extensions[%d]: invalid name: %w", path, i, err)
		}
		switch {
		case seen[e.Name]:
			return nil, fmt.Errorf("%s: extensions[%d]: %s is listed twice", path, i, e.Name)
		case e.Class != "" && e.Class != e.class().Name:
			_, err := sysext.ClassByName(e.Class)
			return nil, fmt.Errorf("%s: extension %s: class: %w", path, e.Name, err)
		case e.Tag != "" && e.Digest != "":
			return nil, fmt.Errorf("%s: extension %s: set tag or digest, not both", path, e.Name)
		case e.Digest != "" && !isDigest(e.Digest):
			return nil, fmt.Errorf("%s: extension %s: digest %q must be sha256:<64 lower-case hex digits>", path, e.Name, e.Digest)
		case e.Tag != "" && !validTag(e.Tag):
			return nil, fmt.Errorf("%s: extension %s: tag %q is not a valid OCI tag", path, e.Name, e.Tag)
		}
		seen[e.Name] = true
	}
	for i, k := range c.Keys {
		if !filepath.IsAbs(k) {
			return nil, fmt.Errorf("%s: keys[%d] %q: give an absolute path on the node, such as /etc/bakery/release.pub (with --root it is read under the root)", path, i, k)
		}
	}
	for i, k := range c.Certificates {
		if !filepath.IsAbs(k) {
			return nil, fmt.Errorf("%s: certificates[%d] %q: give an absolute path on the node, such as /etc/bakery/release.crt (with --root it is read under the root)", path, i, k)
		}
	}
	if len(c.Extensions) > 0 && c.Registry == "" {
		return nil, fmt.Errorf("%s: registry is not set (e.g. registry: ghcr.io/example/sysexts)", path)
	}
	if c.Policy.RequireCatalog && len(c.Keys) == 0 {
		return nil, fmt.Errorf("%s: policy.require-catalog needs at least one trusted key in keys", path)
	}
	if c.Policy.RequireSignature && len(c.Keys)+len(c.Certificates) == 0 {
		return nil, fmt.Errorf("%s: policy.require-signature needs at least one trusted key in keys (or, for DDIs only, a certificate in certificates)", path)
	}
	return &c, nil
}

// validTag tells a valid OCI tag.
func validTag(t string) bool {
	return len(t) <= 128 && t != "" && !strings.HasPrefix(t, ".") && !strings.HasPrefix(t, "-") &&
		!strings.ContainsFunc(t, func(c rune) bool {
			return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-')
		})
}

// PullRequest is one image sync wants.
type PullRequest struct {
	// Ref is the reference (Config.Ref).
	Ref string
	// Name is the extension the reference must hold.
	Name string
	// Class is the image class the reference must hold, "sysext" or
	// "confext".
	Class string
	// Arch is the systemd architecture to pull.
	Arch string
	// Dest is a new file to write the image to.
	Dest string
	// Have is the digest of the installed image ("" for none): when the
	// reference resolves to it, nothing is downloaded (Pulled.Unchanged).
	Have string
}

// Pulled is what a Registry fetched.
type Pulled struct {
	// Digest is the sha256 of the image file, "sha256:HEX".
	Digest string
	// IndexDigest is the digest of the index (or manifest) the reference
	// resolved to.
	IndexDigest string
	// Version is the extension's version.
	Version string
	// Verification is the signature check that passed, nil when the pull
	// checked no signature.
	Verification *Verification
	// Unchanged is true when the image is PullRequest.Have: Dest was not
	// written.
	Unchanged bool
}

// SignedCatalog is a namespace's catalog whose signature verified and
// which has not expired: what policy.require-catalog checks against.
type SignedCatalog struct {
	Sequence int64
	// Extensions maps an extension name to what the catalog lists of it.
	Extensions map[string]CatalogListing
}

// CatalogListing is one extension in a signed catalog.
type CatalogListing struct {
	// Versions maps each version to its index digest.
	Versions map[string]string
	// Tags maps each moving tag (latest, stable, …) to its version.
	Tags map[string]string
}

// Registry is where sync gets extensions: the registry client, or a fake
// in tests.
type Registry interface {
	// Pull fetches one extension image, verifying its signature (when it
	// has keys) and that it is the extension asked for, before writing.
	Pull(ctx context.Context, req PullRequest) (Pulled, error)
	// Catalog reads and verifies the namespace's signed catalog.
	Catalog(ctx context.Context, namespace string) (*SignedCatalog, error)
}

// SyncResult is what a sync did, per extension.
type SyncResult struct {
	Installed []string  `json:"installed"`
	Unchanged []string  `json:"unchanged"`
	Removed   []string  `json:"removed"`
	Refused   []Refusal `json:"refused"`
	// Classes are the image classes whose installed images changed, in
	// the order of sysext.Classes: the merges to refresh.
	Classes []string `json:"classes"`
	// Warnings are problems sync worked around, e.g. a damaged state.json.
	Warnings []string `json:"warnings,omitempty"`
}

// Changed tells whether a merge needs a refresh.
func (r *SyncResult) Changed() bool { return len(r.Classes) > 0 }

// changed records that an image of class c was installed or removed.
func (r *SyncResult) changed(c sysext.Class) {
	if !slices.Contains(r.Classes, c.Name) {
		r.Classes = append(r.Classes, c.Name)
		slices.SortFunc(r.Classes, func(a, b string) int { return classIndex(a) - classIndex(b) })
	}
}

// classIndex is the place of the class called name in sysext.Classes.
func classIndex(name string) int {
	return slices.IndexFunc(sysext.Classes(), func(c sysext.Class) bool { return c.Name == name })
}

// imagePath is where sync installs the image of the extension name of
// class c under root.
func imagePath(root string, c sysext.Class, name string) string {
	return filepath.Join(root, c.InstallDir, name+".raw")
}

// partialPath is the temp file an image is downloaded to, beside
// imagePath.
func partialPath(root string, c sysext.Class, name string) string {
	return filepath.Join(root, c.InstallDir, "."+name+".raw.partial")
}

// Sync installs the extensions cfg lists for arch under root: each is
// pulled and verified into a temp file beside its destination, then
// renamed to NAME.raw in its class's InstallDir (/var/lib/extensions,
// /var/lib/confexts); the replaced image is kept for
// Rollback; a downgrade is refused unless cfg pins that version; images
// sync installed that cfg no longer lists are removed. An extension that
// fails is reported and the others proceed. state.json covers the
// installed image of every extension at every moment, so that a sync
// killed at any point leaves the old or the new image, verified; temp
// files a killed sync left are removed first.
func Sync(ctx context.Context, root string, cfg *Config, arch string, reg Registry) (*SyncResult, error) {
	unlock, err := Lock(root)
	if err != nil {
		return nil, err
	}
	defer unlock()
	res := &SyncResult{Installed: []string{}, Unchanged: []string{}, Removed: []string{}, Refused: []Refusal{}, Classes: []string{}}
	removeStaleTemps(root)
	st, err := LoadState(root)
	var damaged *DamagedStateError
	if errors.As(err, &damaged) {
		if st, err = recoverState(root, damaged); err == nil {
			res.Warnings = append(res.Warnings, damaged.Error()+": kept aside as "+filepath.Base(damaged.Path)+".damaged; rebuilt from the installed images, whose versions stay the floor for downgrade protection; every image is verified again")
		}
	}
	if err != nil {
		return nil, err
	}
	if err := finishInterrupted(root, st); err != nil {
		return nil, err
	}
	var cat *SignedCatalog
	if cfg.Policy.RequireCatalog && len(cfg.Extensions) > 0 {
		if cat, err = readCatalog(ctx, cfg, reg, st); err != nil {
			return nil, err
		}
		if err := st.Save(root); err != nil {
			return nil, err
		}
	}
	listed := map[string]bool{}
	for _, e := range cfg.Extensions {
		listed[e.Name] = true
		ref := cfg.Ref(e)
		changed, err := syncOne(ctx, root, cfg, e, arch, reg, st, cat)
		switch {
		case err != nil:
			res.Refused = append(res.Refused, Refusal{Name: e.Name, Path: ref, Reason: err.Error()})
		case changed:
			res.Installed = append(res.Installed, e.Name)
			res.changed(e.class())
		default:
			res.Unchanged = append(res.Unchanged, e.Name)
		}
	}
	for name, in := range st.Extensions {
		if listed[name] {
			continue
		}
		for _, p := range []string{imagePath(root, in.class(), name), filepath.Join(root, rollbackDir, name+".raw")} {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return res, fmt.Errorf("remove %s, no longer in %s: %w", p, ConfigPath, err)
			}
		}
		delete(st.Extensions, name)
		if err := st.Save(root); err != nil {
			return res, err
		}
		res.Removed = append(res.Removed, name)
		res.changed(in.class())
	}
	return res, nil
}

// removeStaleTemps removes what killed syncs left: their downloads and
// the temp files of state.json and rollback copies. The sync lock is held.
func removeStaleTemps(root string) {
	for _, dir := range []string{filepath.Join(root, rollbackDir), filepath.Join(root, StateDir)} {
		atomicfile.RemoveStaleIn(dir)
	}
	for _, c := range sysext.Classes() {
		dir := filepath.Join(root, c.InstallDir)
		atomicfile.RemoveStaleIn(dir)
		partial, _ := filepath.Glob(filepath.Join(dir, ".*.raw.partial"))
		for _, p := range partial {
			os.Remove(p)
		}
	}
}

// recoverState moves a damaged state.json aside and rebuilds a state from
// the installed images: their versions, read from their extension-release,
// become the floor for downgrade protection; no image is verified until
// this sync checks it.
func recoverState(root string, damaged *DamagedStateError) (*State, error) {
	if err := os.Rename(damaged.Path, damaged.Path+".damaged"); err != nil {
		return nil, fmt.Errorf("%w; moving it aside failed: %w", damaged, err)
	}
	st := emptyState()
	for _, c := range sysext.Classes() {
		entries, _ := os.ReadDir(filepath.Join(root, c.InstallDir))
		for _, e := range entries {
			name, ok := strings.CutSuffix(e.Name(), ".raw")
			if !ok || !e.Type().IsRegular() || sysext.CheckName(name) != nil || st.Extensions[name] != nil {
				continue
			}
			p := imagePath(root, c, name)
			digest, err := fileDigest(p)
			if err != nil {
				continue
			}
			st.Extensions[name] = &Installed{Class: c.Name, Ref: "(recovered)", Version: installedVersion(p), Digest: digest}
		}
	}
	return st, st.Save(root)
}

// installedVersion reads the extension's version (SYSEXT_VERSION_ID,
// CONFEXT_VERSION_ID) from an installed image, or "" when it cannot be
// read.
func installedVersion(p string) string {
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	fsys, _, err := inspect.Open(f)
	if err != nil {
		return ""
	}
	c, _, rel, err := sysext.DetectRelease(fsys)
	if err != nil {
		return ""
	}
	return rel[c.VersionField]
}

// readCatalog reads the namespace's signed catalog and refuses one older
// than the newest seen (a replay), recording the newest in st.
func readCatalog(ctx context.Context, cfg *Config, reg Registry, st *State) (*SignedCatalog, error) {
	cat, err := reg.Catalog(ctx, cfg.Registry)
	if err != nil {
		return nil, fmt.Errorf("policy.require-catalog: %w", err)
	}
	seen := st.Catalogs[cfg.Registry]
	if seen != nil && cat.Sequence < seen.Sequence {
		return nil, fmt.Errorf("policy.require-catalog: the registry serves the signed catalog of sequence %d, older than %d seen on %s: a replayed catalog; not syncing",
			cat.Sequence, seen.Sequence, seen.At.Format(time.RFC3339))
	}
	st.Catalogs[cfg.Registry] = &CatalogSeen{Sequence: cat.Sequence, At: time.Now().UTC()}
	return cat, nil
}

// checkCatalog checks a pulled image against the signed catalog: the
// version and index must be listed, and a moving tag must hold the
// version the catalog says it holds (else the registry froze or rolled
// back the tag).
func checkCatalog(cat *SignedCatalog, e ConfigExtension, got Pulled) error {
	l, ok := cat.Extensions[e.Name]
	switch {
	case !ok:
		return fmt.Errorf("the signed catalog (sequence %d) does not list %s", cat.Sequence, e.Name)
	case l.Versions[got.Version] == "":
		return fmt.Errorf("the signed catalog (sequence %d) does not list %s %s", cat.Sequence, e.Name, got.Version)
	case l.Versions[got.Version] != got.IndexDigest:
		return fmt.Errorf("%s %s is index %s, but the signed catalog (sequence %d) lists %s", e.Name, got.Version, got.IndexDigest, cat.Sequence, l.Versions[got.Version])
	}
	if t := e.tag(); t != "" && !isVersionTag(t) {
		want, ok := l.Tags[t]
		if !ok {
			return fmt.Errorf("the signed catalog (sequence %d) does not list the tag %s of %s", cat.Sequence, t, e.Name)
		}
		if want != got.Version {
			return fmt.Errorf("the registry's %s:%s holds %s, but the signed catalog (sequence %d) says %s: a frozen or rolled-back tag; not installing it", e.Name, t, got.Version, cat.Sequence, want)
		}
	}
	return nil
}

// isVersionTag tells a tag that spells a version from a moving tag, as
// the registry client decides it.
func isVersionTag(tag string) bool {
	t := strings.TrimPrefix(strings.TrimPrefix(tag, "v"), "V")
	return t != "" && t[0] >= '0' && t[0] <= '9'
}

// syncOne pulls and installs one extension; changed is false when the
// installed image is already the wanted one.
func syncOne(ctx context.Context, root string, cfg *Config, e ConfigExtension, arch string, reg Registry, st *State, cat *SignedCatalog) (changed bool, err error) {
	c := e.class()
	cur := st.Extensions[e.Name]
	if cur != nil && cur.class().Name != c.Name {
		return false, fmt.Errorf("installed as a %s, but %s now says class %s: remove it from %s and sync (which uninstalls it), then add it back", cur.class(), ConfigPath, c, ConfigPath)
	}
	dst, tmp := imagePath(root, c, e.Name), partialPath(root, c, e.Name)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return false, fmt.Errorf("create %s: %w", filepath.Dir(dst), err)
	}
	os.Remove(tmp)
	defer os.Remove(tmp)
	have := ""
	if cur != nil && cur.Digest != "" {
		if d, err := fileDigest(dst); err == nil && d == cur.Digest {
			have = d
		}
	}
	ref := cfg.Ref(e)
	got, err := reg.Pull(ctx, PullRequest{Ref: ref, Name: e.Name, Class: c.Name, Arch: arch, Dest: tmp, Have: have})
	if err != nil {
		return false, fmt.Errorf("pull: %w", err)
	}
	if len(cfg.Keys) > 0 && got.Verification == nil {
		return false, errors.New("the image's signature was not verified against the trusted keys; not installing it")
	}
	if cat != nil {
		if err := checkCatalog(cat, e, got); err != nil {
			return false, err
		}
	}
	if got.Unchanged {
		if got.Digest != have {
			return false, fmt.Errorf("the registry client skipped a download of %s, but %s holds %s", got.Digest, dst, have)
		}
		if got.Verification != nil {
			cur.Verification = got.Verification
			return false, st.Save(root)
		}
		return false, nil
	}
	sum, err := fileDigest(tmp)
	if err != nil {
		return false, err
	}
	if sum != got.Digest {
		return false, fmt.Errorf("downloaded image has digest %s, the registry said %s; not installing it", sum, got.Digest)
	}
	if cur != nil && cur.Version != "" && got.Version != "" && sysext.CompareVersions(got.Version, cur.Version) < 0 && !e.pins(got.Version) {
		return false, fmt.Errorf("%s would downgrade %s to %s; pin that version in %s (tag: %s) to allow it", ref, cur.Version, got.Version, ConfigPath, got.Version)
	}
	return true, install(root, c, e.Name, tmp, Version{Version: got.Version, Digest: sum, Ref: ref, Verification: got.Verification}, st)
}

// install moves the image tmp into place as NAME.raw of class c, keeping
// the replaced image for rollback, with state.json covering the installed
// image before and after every step.
func install(root string, c sysext.Class, name, tmp string, v Version, st *State) error {
	dst := imagePath(root, c, name)
	if err := syncFile(tmp); err != nil {
		return err
	}
	cur := st.Extensions[name]
	if cur == nil {
		cur = &Installed{}
		st.Extensions[name] = cur
	}
	cur.Class = c.Name
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
	cur.settle()
	return st.Save(root)
}

// settle makes the pending image the installed one, the installed one
// the previous.
func (in *Installed) settle() {
	p := in.Pending
	if in.Digest != "" {
		in.Previous = &Version{Version: in.Version, Digest: in.Digest, Ref: in.Ref, Verification: in.Verification}
	}
	in.Ref, in.Version, in.Digest, in.Verification, in.Installed = p.Ref, p.Version, p.Digest, p.Verification, time.Now().UTC()
	in.Pending = nil
}

// keepPrevious keeps a copy of the installed image (a hard link when
// possible) as the rollback image, replacing the one kept before.
func keepPrevious(root, name, installed string) error {
	dir := filepath.Join(root, rollbackDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	keep := filepath.Join(dir, name+".raw")
	tmp := filepath.Join(dir, "."+name+".raw.link")
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
// after checking that the kept image is the one state.json recorded. It
// returns the extension's class, whose merge is to be refreshed.
func Rollback(root, name string) (sysext.Class, error) {
	unlock, err := Lock(root)
	if err != nil {
		return sysext.Class{}, err
	}
	defer unlock()
	st, err := LoadState(root)
	if err != nil {
		return sysext.Class{}, err
	}
	if err := finishInterrupted(root, st); err != nil {
		return sysext.Class{}, err
	}
	cur := st.Extensions[name]
	if cur == nil || cur.Previous == nil {
		return sysext.Class{}, fmt.Errorf("rollback %s: no previous image recorded in %s", name, statePath(root))
	}
	kept := filepath.Join(root, rollbackDir, name+".raw")
	sum, err := fileDigest(kept)
	if err != nil {
		return sysext.Class{}, fmt.Errorf("rollback %s: %w", name, err)
	}
	if sum != cur.Previous.Digest {
		return sysext.Class{}, fmt.Errorf("rollback %s: kept image %s has digest %s, not the recorded %s; run `bakery sync` instead", name, kept, sum, cur.Previous.Digest)
	}
	prev := *cur.Previous
	// Move the kept image aside first: keepPrevious replaces it.
	c := cur.class()
	tmp := partialPath(root, c, name)
	if err := os.Rename(kept, tmp); err != nil {
		return c, fmt.Errorf("rollback %s: %w", name, err)
	}
	return c, install(root, c, name, tmp, prev, st)
}

// finishInterrupted settles entries a killed sync left pending: the
// pending image becomes the installed one if NAME.raw has its digest.
func finishInterrupted(root string, st *State) error {
	dirty := false
	for name, in := range st.Extensions {
		if in.Pending == nil {
			continue
		}
		sum, _ := fileDigest(imagePath(root, in.class(), name))
		if sum == in.Pending.Digest {
			in.settle()
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

// fileDigest is the sha256 of a regular file, "sha256:HEX".
func fileDigest(p string) (string, error) {
	h, _, err := digest.File(p)
	return h.String(), err
}

// syncFile flushes a file's content to disk.
func syncFile(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", p, err)
	}
	return nil
}
