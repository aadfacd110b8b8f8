package provision

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/sysext-bakery/bakery/merge"
	"github.com/sysext-bakery/bakery/sysext"
)

var pin = strings.Repeat("ab", 64)

func nodes(t *testing.T) map[string]Config {
	t.Helper()
	rel, err := ReleaseNode("https://example.com/sysexts", []byte{0x99, 0x00, 0x33}, []Image{
		{Name: "hello", Class: sysext.Sysext, File: "hello-1.0-x86-64.raw", URL: "https://example.com/sysexts/hello-1.0-x86-64.raw", SHA512: pin},
		{Name: "motd", Class: sysext.Confext, File: "motd-2-x86-64.raw", URL: "https://example.com/sysexts/motd-2-x86-64.raw", SHA512: pin},
	})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := RegistryNode(Image{Name: "bakery", Class: sysext.Sysext, File: "bakery-1.0-x86-64.raw", URL: "https://example.com/bakery-1.0-x86-64.raw", SHA512: pin},
		merge.Config{Registry: "ghcr.io/example/sysexts", Extensions: []merge.ConfigExtension{{Name: "hello", Tag: "1.0"}}},
		map[string][]byte{"release.pub": []byte("-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----\n")})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]Config{"release": rel, "registry": reg}
}

// TestIgnitionValidates: Debian's ignition-validate (Ignition 2.14)
// accepts both flavours.
func TestIgnitionValidates(t *testing.T) {
	validate, err := exec.LookPath("ignition-validate")
	if err != nil {
		t.Skip("ignition-validate is not installed (apt-get install ignition; scripts/setup does)")
	}
	for name, c := range nodes(t) {
		t.Run(name, func(t *testing.T) {
			ign, err := c.Ignition()
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(t.TempDir(), "config.ign")
			os.WriteFile(p, ign, 0o644)
			if out, err := exec.Command(validate, p).CombinedOutput(); err != nil || len(out) != 0 {
				t.Errorf("ignition-validate: %v\n%s\n%s", err, out, ign)
			}
		})
	}
}

// TestButaneMatchesIgnition reads the Butane YAML back and translates it
// as Butane does (inline: → data URL, mode, sha512 pins, links, units) to
// check it says what the Ignition JSON says. (No butane binary can be
// built here: the Go module proxy does not serve coreos/butane.)
func TestButaneMatchesIgnition(t *testing.T) {
	for name, c := range nodes(t) {
		t.Run(name, func(t *testing.T) {
			by, err := c.Butane()
			if err != nil {
				t.Fatal(err)
			}
			ij, _ := c.Ignition()
			var b struct {
				Variant, Version string
				decodedSections  `yaml:",inline"`
			}
			if err := yaml.Unmarshal(by, &b); err != nil {
				t.Fatalf("Butane YAML: %v\n%s", err, by)
			}
			var i struct {
				Ignition struct{ Version string }
				decodedSections
			}
			if err := json.Unmarshal(ij, &i); err != nil {
				t.Fatal(err)
			}
			if b.Variant != "flatcar" || b.Version != "1.0.0" || i.Ignition.Version != "3.3.0" {
				t.Errorf("versions: butane %s %s, ignition %s", b.Variant, b.Version, i.Ignition.Version)
			}
			if len(b.Storage.Files) != len(i.Storage.Files) || len(b.Storage.Files) == 0 {
				t.Fatalf("%d files in Butane, %d in Ignition", len(b.Storage.Files), len(i.Storage.Files))
			}
			for n, bf := range b.Storage.Files {
				jf := i.Storage.Files[n]
				src := bf.Contents.Source
				if bf.Contents.Inline != "" {
					src = "data:;base64," + base64.StdEncoding.EncodeToString([]byte(bf.Contents.Inline))
				}
				if bf.Path != jf.Path || bf.Mode != 0o644 || jf.Mode != 0o644 || src != jf.Contents.Source || bf.Contents.Verification.Hash != jf.Contents.Verification.Hash {
					t.Errorf("file %d: Butane %+v, Ignition %+v", n, bf, jf)
				}
			}
			if len(b.Storage.Links) != len(i.Storage.Links) {
				t.Fatalf("links differ")
			}
			for n := range b.Storage.Links {
				if b.Storage.Links[n] != i.Storage.Links[n] {
					t.Errorf("link %d: %+v, %+v", n, b.Storage.Links[n], i.Storage.Links[n])
				}
			}
			bu, _ := json.Marshal(b.Systemd.Units)
			iu, _ := json.Marshal(i.Systemd.Units)
			if string(bu) != string(iu) {
				t.Errorf("units: Butane %s\nIgnition %s", bu, iu)
			}
		})
	}
}

func TestNodeRefusals(t *testing.T) {
	img := Image{Name: "hello", Class: sysext.Sysext, File: "hello-1-x86-64.raw", URL: "https://example.com/hello-1-x86-64.raw", SHA512: pin}
	with := func(f func(*Image)) []Image { i := img; f(&i); return []Image{i} }
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"no pin", func() error {
			_, err := ReleaseNode("https://example.com/", []byte{1}, with(func(i *Image) { i.SHA512 = "" }))
			return err
		}(), "must be pinned"},
		{"plain http", func() error {
			_, err := ReleaseNode("https://example.com/", []byte{1}, with(func(i *Image) { i.URL = "http://example.com/x.raw" }))
			return err
		}(), "plain http"},
		{"http base URL", func() error { _, err := ReleaseNode("http://example.com/", []byte{1}, []Image{img}); return err }(), "plain http"},
		{"a bad name", func() error {
			_, err := ReleaseNode("https://example.com/", []byte{1}, with(func(i *Image) { i.Name = "../x" }))
			return err
		}(), "not an extension name"},
		{"a file name with a path", func() error {
			_, err := ReleaseNode("https://example.com/", []byte{1}, with(func(i *Image) { i.File = "../../etc/passwd" }))
			return err
		}(), "not a file name"},
		{"no keyring", func() error { _, err := ReleaseNode("https://example.com/", nil, []Image{img}); return err }(), "no keyring"},
		{"not bakery", func() error {
			_, err := RegistryNode(img, merge.Config{Registry: "r/ns"}, map[string][]byte{"k.pub": {1}})
			return err
		}(), "not bakery"},
		{"a key name with a path", func() error {
			i := img
			i.Name = "bakery"
			_, err := RegistryNode(i, merge.Config{Registry: "r/ns"}, map[string][]byte{"../k.pub": {1}})
			return err
		}(), "key file name"},
		{"a sync config that does not parse", func() error {
			i := img
			i.Name = "bakery"
			_, err := RegistryNode(i, merge.Config{Extensions: []merge.ConfigExtension{{Name: "hello"}}}, map[string][]byte{"k.pub": {1}})
			return err
		}(), "registry is not set"},
	}
	for _, c := range cases {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, c.err, c.want)
		}
	}
}

// decodedSections is what a test reads back of a Butane or an Ignition
// config's storage and systemd sections, by their documented names,
// independently of the types that wrote them.
type decodedSections struct {
	Storage struct {
		Files []struct {
			Path     string
			Mode     int
			Contents struct {
				Inline, Source string
				Verification   struct{ Hash string }
			}
		}
		Links []struct {
			Path, Target string
			Hard         bool
		}
	}
	Systemd struct {
		Units []struct {
			Name    string
			Enabled *bool
			Dropins []struct{ Name, Contents string }
		}
	}
}
