// Package provision writes the first-boot configuration of a node that
// takes extensions: a Butane config (Flatcar variant 1.0.0) and the
// Ignition config (spec 3.3.0) it translates to, for a stock node that
// updates with systemd-sysupdate from a release directory (ReleaseNode) or
// for a node that runs bakery sync against a registry (RegistryNode). Its
// functions are pure: they take what was fetched and verified, and return
// bytes.
package provision

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/sysext-bakery/bakery/release"
)

// The versions written: Butane's Flatcar variant 1.0.0 translates to
// Ignition spec 3.3.0, the newest that Ignition 2.14 (Debian 12) and every
// Flatcar release read.
const (
	ButaneVariant  = "flatcar"
	ButaneVersion  = "1.0.0"
	IgnitionSpec   = "3.3.0"
	fileMode       = 0o644
	sha512HexBytes = 128
)

// File is a file the node gets: fetched from Source and pinned by its
// sha512, or Data given inline.
type File struct {
	Path   string
	Source string
	SHA512 string
	Data   []byte
}

// Link is a symbolic link the node gets.
type Link struct {
	Path, Target string
}

// Dropin is a drop-in of a unit.
type Dropin struct {
	Name, Contents string
}

// Unit is a systemd unit of the node's OS that is enabled or given
// drop-ins.
type Unit struct {
	Name    string
	Enabled bool
	Dropins []Dropin
}

// Config is what a node gets at first boot.
type Config struct {
	Files []File
	Links []Link
	Units []Unit
}

var sha512RE = regexp.MustCompile(`^[0-9a-f]{128}$`)

// check refuses what Ignition would refuse or what would weaken the node:
// relative paths, remote files without an https (or loopback) URL or a
// pinned hash.
func (c Config) check() error {
	for _, f := range c.Files {
		if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path {
			return fmt.Errorf("file %q: not a clean absolute path", f.Path)
		}
		if f.Source == "" {
			continue
		}
		if _, err := release.CheckURL(f.Source); err != nil {
			return fmt.Errorf("file %s: %w", f.Path, err)
		}
		if !sha512RE.MatchString(f.SHA512) {
			return fmt.Errorf("file %s: sha512 %q is not %d lower-case hex digits: a fetched file must be pinned", f.Path, f.SHA512, sha512HexBytes)
		}
	}
	for _, l := range c.Links {
		if !path.IsAbs(l.Path) || path.Clean(l.Path) != l.Path || l.Target == "" {
			return fmt.Errorf("link %s → %s: give a clean absolute path and a target", l.Path, l.Target)
		}
	}
	return nil
}

// The parts of a Butane and an Ignition config bakery writes: the same
// tree, told apart only by how a file's mode and contents are spelled.
type (
	verification struct {
		Hash string `yaml:"hash" json:"hash"`
	}
	contents struct {
		Inline       string        `yaml:"inline,omitempty" json:"-"`
		Source       string        `yaml:"source,omitempty" json:"source"`
		Verification *verification `yaml:"verification,omitempty" json:"verification,omitempty"`
	}
	file struct {
		Path     string   `yaml:"path" json:"path"`
		Mode     octal    `yaml:"mode" json:"mode"`
		Contents contents `yaml:"contents" json:"contents"`
	}
	link struct {
		Path   string `yaml:"path" json:"path"`
		Target string `yaml:"target" json:"target"`
		Hard   bool   `yaml:"hard" json:"hard"`
	}
	dropin struct {
		Name     string `yaml:"name" json:"name"`
		Contents string `yaml:"contents" json:"contents"`
	}
	unit struct {
		Name    string   `yaml:"name" json:"name"`
		Enabled *bool    `yaml:"enabled,omitempty" json:"enabled,omitempty"`
		Dropins []dropin `yaml:"dropins,omitempty" json:"dropins,omitempty"`
	}
	storage struct {
		Files []file `yaml:"files,omitempty" json:"files,omitempty"`
		Links []link `yaml:"links,omitempty" json:"links,omitempty"`
	}
	systemd struct {
		Units []unit `yaml:"units,omitempty" json:"units,omitempty"`
	}
)

// octal is a file mode: an octal literal in YAML, as Butane's examples
// write it, a number in JSON.
type octal int

// MarshalYAML writes the mode as an octal integer (0644).
func (m octal) MarshalYAML() (any, error) {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: fmt.Sprintf("%#o", int(m))}, nil
}

// sections returns the storage and systemd sections of the config; with
// inline, text files are written inline (Butane), otherwise every file
// given as data is a data URL (Ignition, as Butane translates them).
func (c Config) sections(inline bool) (storage, systemd) {
	var st storage
	var sd systemd
	for _, f := range c.Files {
		bf := file{Path: f.Path, Mode: fileMode}
		switch {
		case f.Source != "":
			bf.Contents = contents{Source: f.Source, Verification: &verification{Hash: "sha512-" + f.SHA512}}
		case inline && isText(f.Data):
			bf.Contents = contents{Inline: string(f.Data)}
		default:
			bf.Contents = contents{Source: dataURL(f.Data)}
		}
		st.Files = append(st.Files, bf)
	}
	for _, l := range c.Links {
		st.Links = append(st.Links, link{Path: l.Path, Target: l.Target})
	}
	for _, u := range c.Units {
		bu := unit{Name: u.Name}
		if u.Enabled {
			bu.Enabled = &u.Enabled
		}
		for _, d := range u.Dropins {
			bu.Dropins = append(bu.Dropins, dropin(d))
		}
		sd.Units = append(sd.Units, bu)
	}
	return st, sd
}

// Butane renders the config as Butane YAML (Flatcar variant): inline text
// as inline:, binary data and fetched files as source: with the hash
// pinned.
func (c Config) Butane() ([]byte, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	var doc struct {
		Variant string  `yaml:"variant"`
		Version string  `yaml:"version"`
		Storage storage `yaml:"storage"`
		Systemd systemd `yaml:"systemd,omitempty"`
	}
	doc.Variant, doc.Version = ButaneVariant, ButaneVersion
	doc.Storage, doc.Systemd = c.sections(true)
	var out bytes.Buffer
	out.WriteString("# Butane config (Flatcar) written by bakery butane; translate with butane --strict.\n")
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// Ignition renders the config as Ignition JSON (spec 3.3.0), as Butane
// translates Butane(): inline data as data URLs.
func (c Config) Ignition() ([]byte, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	var doc struct {
		Ignition struct {
			Version string `json:"version"`
		} `json:"ignition"`
		Storage storage `json:"storage"`
		Systemd systemd `json:"systemd"`
	}
	doc.Ignition.Version = IgnitionSpec
	doc.Storage, doc.Systemd = c.sections(false)
	out, err := json.MarshalIndent(&doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// dataURL is data as an RFC 2397 data URL, base64.
func dataURL(data []byte) string {
	return "data:;base64," + base64.StdEncoding.EncodeToString(data)
}

// isText tells whether data can be a YAML inline string as it is.
func isText(data []byte) bool {
	s := string(data)
	return strings.ToValidUTF8(s, "") == s && !strings.ContainsFunc(s, func(r rune) bool {
		return r < 0x20 && r != '\n' && r != '\t'
	})
}
