package provision

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"regexp"
	"slices"

	"gopkg.in/yaml.v3"

	"github.com/sysext-bakery/bakery/merge"
	"github.com/sysext-bakery/bakery/release"
	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/units"
)

// Keyring is where systemd-pull finds the keys that sign SHA256SUMS.
const Keyring = "/etc/systemd/import-pubring.gpg"

// sysupdateTool is systemd-sysupdate's path on the node.
const sysupdateTool = "/usr/lib/systemd/systemd-sysupdate"

// Image is the first image of an extension, fetched by Ignition.
type Image struct {
	// Name is the extension; Class its image class.
	Name  string
	Class sysext.Class
	// File is its file name, NAME-VERSION-ARCH.raw.
	File string
	// URL is where Ignition fetches it; SHA512 pins it.
	URL, SHA512 string
}

// install is the image placed where systemd-sysupdate keeps installed
// versions, with the class's current symlink pointing at it: the layout
// sysupdate finds as already installed.
func (img Image) install(c *Config) error {
	if err := sysext.CheckName(img.Name); err != nil {
		return err
	}
	t := release.Transfer{Name: img.Name, Class: img.Class}
	p := path.Join(t.TargetDir(), img.File)
	if path.Base(img.File) != img.File {
		return fmt.Errorf("image file name %q is not a file name", img.File)
	}
	c.Files = append(c.Files, File{Path: p, Source: img.URL, SHA512: img.SHA512})
	// Relative, as systemd-sysupdate writes it: it resolves the same on
	// the node and for tools given the node's root (systemd-sysext
	// --root resolves an absolute one on the machine it runs on).
	target, err := filepath.Rel(path.Dir(t.CurrentSymlink()), p)
	if err != nil {
		return err
	}
	c.Links = append(c.Links, Link{Path: t.CurrentSymlink(), Target: target})
	return nil
}

// ReleaseNode is a stock node that installs the first images and then
// updates them with systemd-sysupdate from the signed release directory at
// baseURL: the images, their current symlinks, each extension's transfer
// definition (NAME.transfer and NAME.conf, Verify=yes) in its component
// directory, the noop definition, keyring (binary OpenPGP public keys) as
// /etc/systemd/import-pubring.gpg, systemd-sysupdate.timer enabled, and
// drop-ins that update each extension as its component and restart the
// merge afterwards.
func ReleaseNode(baseURL string, keyring []byte, images []Image) (Config, error) {
	var c Config
	if len(images) == 0 {
		return c, errors.New("no extension to install")
	}
	if len(keyring) == 0 {
		return c, errors.New("no keyring: a node verifies SHA256SUMS.gpg (Verify=yes) against its keys")
	}
	u, err := release.CheckURL(baseURL)
	if err != nil {
		return c, err
	}
	base := release.DirURL(u)
	sysupdate := Unit{Name: "systemd-sysupdate.service"}
	var restart []string
	for _, img := range images {
		if err := img.install(&c); err != nil {
			return c, err
		}
		def := release.Transfer{Name: img.Name, Class: img.Class, BaseURL: base, Verify: true}.Render()
		for _, f := range release.DefinitionFiles(img.Name) {
			c.Files = append(c.Files, File{Path: path.Join(release.ComponentDir(img.Name), f), Data: def})
		}
		sysupdate.Dropins = append(sysupdate.Dropins, Dropin{
			Name:     "bakery-" + img.Name + ".conf",
			Contents: fmt.Sprintf("[Service]\nExecStartPre=%s -C %s update\n", sysupdateTool, img.Name),
		})
		if svc := "systemd-" + img.Class.Name + ".service"; !slices.Contains(restart, svc) {
			restart = append(restart, svc)
		}
	}
	for _, f := range release.DefinitionFiles(release.Noop) {
		c.Files = append(c.Files, File{Path: path.Join("/etc/sysupdate.d", f), Data: release.NoopTransfer()})
	}
	c.Files = append(c.Files, File{Path: Keyring, Data: keyring})
	for _, svc := range restart {
		sysupdate.Dropins = append(sysupdate.Dropins, Dropin{
			Name:     "bakery-restart-" + svc[:len(svc)-len(".service")] + ".conf",
			Contents: "[Service]\nExecStartPost=/usr/bin/systemctl restart " + svc + "\n",
		})
	}
	c.Units = []Unit{{Name: "systemd-sysupdate.timer", Enabled: true}, sysupdate}
	return c, c.check()
}

// keyFileRE is a key's file name on the node.
var keyFileRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// KeyDir is where the node keeps the keys sync trusts.
const KeyDir = "/etc/bakery/keys"

// RegistryNode is a node that runs bakery: bakery's own extension (an
// Image of `bakery image self`) as /etc/extensions/bakery.raw,
// /etc/bakery/sync.yaml from cfg with the
// trusted keys (file name → PEM public key) under /etc/bakery/keys, and
// bakery-sync.timer enabled. cfg's keys are set here; the rest of cfg
// (registry, extensions, insecure) is the caller's. Merge's
// require-signature stays off: the bakery image itself is installed by
// Ignition (pinned by its hash), not by a verified sync, and a merge that
// required signatures would take bakery away; sync verifies every image it
// installs against the keys all the same.
func RegistryNode(bakery Image, cfg merge.Config, keys map[string][]byte) (Config, error) {
	var c Config
	if bakery.Name != "bakery" {
		return c, fmt.Errorf("the bakery image is extension %q, not bakery (make it with bakery image self)", bakery.Name)
	}
	if len(keys) == 0 {
		return c, errors.New("no trusted key: sync verifies every image against them")
	}
	// A regular file in /etc/extensions, not the link of the release
	// layout: bakery's merge (sync's refresh) does not follow links in
	// extension directories, and would drop itself.
	if path.Base(bakery.File) != bakery.File {
		return c, fmt.Errorf("image file name %q is not a file name", bakery.File)
	}
	c.Files = append(c.Files, File{Path: path.Join("/", sysext.Sysext.SearchDirs[0], bakery.Name+".raw"), Source: bakery.URL, SHA512: bakery.SHA512})
	cfg.Keys = nil
	for _, name := range sortedKeys(keys) {
		if !keyFileRE.MatchString(name) {
			return c, fmt.Errorf("key file name %q: use letters, digits, '.', '_' and '-'", name)
		}
		p := path.Join(KeyDir, name)
		cfg.Keys = append(cfg.Keys, p)
		c.Files = append(c.Files, File{Path: p, Data: keys[name]})
	}
	cfg.Policy.RequireSignature = false
	data, err := yaml.Marshal(&cfg)
	if err != nil {
		return c, err
	}
	data = append([]byte("# bakery sync configuration written by bakery butane.\n"), data...)
	if _, err := merge.ParseConfig(data, "/"+merge.ConfigPath); err != nil {
		return c, err
	}
	c.Files = append(c.Files, File{Path: "/" + merge.ConfigPath, Data: data})
	// Enabled as systemctl enable does it, with the wants link: the
	// timer comes with the extension, which is merged after first-boot
	// presets are applied, so a preset would name a unit not there yet.
	c.Links = append(c.Links, Link{
		Path:   path.Join("/etc/systemd/system/timers.target.wants", units.SyncTimer),
		Target: path.Join("/usr/lib/systemd/system", units.SyncTimer),
	})
	return c, c.check()
}

// sortedKeys lists m's keys in order, so that the same input gives the
// same config.
func sortedKeys(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
