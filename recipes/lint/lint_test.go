package lint

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// hash is a well-formed sha256 for recipes that are never fetched.
var hash = strings.Repeat("a", 64)

// writeRecipe writes yaml as recipe.yaml, and files beside it, into a new
// folder, and returns the recipe file's path.
func writeRecipe(t *testing.T, yaml string, files ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range files {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("[Service]\nExecStart=/usr/bin/tool\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, "recipe.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const head = "name: tool\ndescription: A tool\nlicense: MIT\nhomepage: https://example.org/tool\nversion: \"1.0\"\n"

func TestRecipe(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		files []string
		want  []string // "LINE: message prefix"
	}{
		{"a clean recipe", head + `release: {reload-manager: true}
sources:
  - url: https://example.org/tool-{{.GoArch}}
    sha256-url: https://example.org/SHA256SUMS
    install: {to: /usr/bin/tool, mode: "0755"}
  - files: files/
`, []string{"files/usr/lib/systemd/system/tool.service"}, nil},
		{"no description nor license", "name: tool\nversion: \"1\"\nsources:\n  - url: https://example.org/t\n    sha256: " + hash + "\n    install: {to: /usr/bin/t}\n", nil,
			[]string{"0: description: missing", "0: homepage: missing", "0: license: missing"}},
		{"http, file and http checksum URLs", head + `sources:
  - url: http://example.org/tool
    sha256: ` + hash + `
    install: {to: /usr/bin/tool}
  - url: https://example.org/data
    sha256-url: http://example.org/SHA256SUMS
    install: {to: /usr/share/tool/data}
  - url: file:///srv/tool
    sha256: ` + hash + `
    install: {to: /usr/bin/tool2}
`, nil, []string{
			`7: source 1 url: "http://example.org/tool" is not https`,
			`11: source 2 sha256-url: "http://example.org/SHA256SUMS" is not https`,
			`13: source 3 url: "file:///srv/tool" is not https`,
		}},
		{"reload-manager without units", head + "release:\n  reload-manager: true\nsources:\n  - files: files/\n",
			[]string{"files/usr/lib/tool/config"}, []string{"7: release.reload-manager: set, but no source brings a systemd unit"}},
		{"units from an archive", head + "release:\n  reload-manager: true\nsources:\n  - url: https://example.org/t.tar.gz\n    sha256: " + hash + "\n    extract: {include: [bin/t, lib/systemd/system], to: /usr/local}\n", nil, nil},
		{"an archive without units", head + "release:\n  reload-manager: true\nsources:\n  - url: https://example.org/t.tar.gz\n    sha256: " + hash + "\n    extract: {include: [bin/t], to: /usr/local}\n", nil,
			[]string{"7: release.reload-manager: set, but no source brings a systemd unit"}},
		{"a confext's units are under etc", "class: confext\n" + head + "release:\n  reload-manager: true\nsources:\n  - files: files/\n",
			[]string{"files/etc/systemd/system/tool.service"}, nil},
		{"a sha256 missing for one arch", head + `arches: [x86-64, arm64]
sources:
  - url: https://example.org/tool-{{.GoArch}}
    sha256: {x86-64: ` + hash + `}
    install: {to: /usr/bin/tool}
`, nil, []string{"9: source 1 sha256 has no hash for arm64"}},
		{"a kernel-bound recipe", head + `release: {id: "{{.OSID}}", version-id: "{{.OSVersion}}"}
sources:
  - url: https://example.org/{{.OSID}}/{{.OSVersion}}/mod-{{.GoArch}}.tar.gz
    sha256-url: https://example.org/{{.OSID}}/{{.OSVersion}}/SHA256SUMS
    extract: {to: /usr}
`, nil, nil},
		{"no version: a stand-in", "name: tool\ndescription: A tool\nlicense: MIT\nhomepage: https://example.org/tool\nsources:\n  - url: https://example.org/{{.Version}}/tool\n    sha256-url: https://example.org/{{.Version}}/SUMS\n    install: {to: /usr/bin/tool}\n", nil, nil},
		{"does not parse", head + "sources:\n  - url: https://example.org/tool\n    sha256: " + hash + "\n    instal: {to: /usr/bin/tool}\n", nil,
			[]string{"7: source 1 (url) needs install or extract", `9: unknown key "instal" in source 1`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeRecipe(t, tt.yaml, tt.files...)
			rep := Load(p)
			var got []string
			for _, pr := range rep.Problems {
				if pr.Path != p {
					t.Errorf("problem %v is about %s, not the recipe", pr, pr.Path)
				}
				got = append(got, strings.TrimPrefix(pr.String(), p+":"))
			}
			if len(got) != len(tt.want) {
				t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			for i := range got {
				line, msg, _ := strings.Cut(tt.want[i], ": ")
				wantPrefix := line + ": " + msg
				if line == "0" {
					wantPrefix = " " + msg
				}
				if !strings.HasPrefix(got[i], wantPrefix) {
					t.Errorf("problem %d: %q\nwant it to start with %q", i, got[i], wantPrefix)
				}
			}
		})
	}
}

func TestForeignELFShown(t *testing.T) {
	p := writeRecipe(t, head+`sources:
  - url: https://example.org/fw.tar.gz
    sha256: `+hash+`
    extract: {to: /usr/lib/firmware}
validate:
  foreign-elf:
    - path: /usr/lib/firmware/nic/*
      reason: firmware for the NIC's microcontroller
`)
	rep := Load(p)
	want := []ForeignELF{{Line: 12, Pattern: "/usr/lib/firmware/nic/*", Reason: "firmware for the NIC's microcontroller"}}
	if len(rep.Problems) != 0 || !slices.Equal(rep.ForeignELF, want) {
		t.Errorf("report %+v, want no problems and %+v", rep, want)
	}
}

func TestLoadUnknown(t *testing.T) {
	rep := Load("no-such-recipe")
	if len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0].Message, "nor a catalog recipe") {
		t.Errorf("report %+v, want one problem saying there is no such recipe", rep)
	}
}
