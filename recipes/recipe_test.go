package recipes

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/sysext-bakery/bakery/sysext"
)

const (
	hashA = "1111111111111111111111111111111111111111111111111111111111111111"
	hashB = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
)

// withoutLines clears the unexported line tables so recipes compare by
// their exported fields.
// withoutLines clears what the tables of expected recipes leave out: the
// line of each key, and the class when it is the default.
func withoutLines(r *Recipe) *Recipe {
	for i := range r.Sources {
		r.Sources[i].lines = nil
	}
	if r.Class.Name == sysext.Sysext.Name {
		r.Class = sysext.Class{}
	}
	r.ReleaseLine = 0
	return r
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want Recipe
	}{{
		name: "minimal recipe gets the defaults",
		yaml: "name: hello\nsources:\n  - files: files/\n",
		want: Recipe{Name: "hello", Arches: []string{"x86-64", "arm64"}, Release: Release{ID: "_any"},
			Sources: []Source{{Files: "files/", Line: 3}}},
	}, {
		name: "numbers keep their spelling",
		yaml: "name: hello\nversion: 1.10\nrelease: {id: flatcar, version-id: 3815.2}\nsources: [{files: files/}]\n",
		want: Recipe{Name: "hello", Version: "1.10", Arches: []string{"x86-64", "arm64"},
			Release: Release{ID: "flatcar", VersionID: "3815.2"}, Sources: []Source{{Files: "files/", Line: 4}}},
	}, {
		name: "all release fields",
		yaml: "name: a.b_c-d\narches: [riscv64, loongarch64, s390x]\nrelease:\n  id: debian\n  sysext-level: \"12\"\n  scope: [initrd]\n  reload-manager: false\nsources: [{files: x}]\n",
		want: Recipe{Name: "a.b_c-d", Arches: []string{"riscv64", "loongarch64", "s390x"},
			Release: Release{ID: "debian", Level: "12", Scope: []string{"initrd"}}, Sources: []Source{{Files: "x", Line: 8}}},
	}, {
		name: "one sha256 for every arch, modes in every spelling",
		yaml: `name: tool
sources:
  - url: https://example.org/tool
    sha256: ` + strings.ToUpper(hashB) + `
    install: {to: /usr/bin/tool, mode: 4755}
  - url: https://example.org/t.tar.gz
    sha256: {arm64: ` + hashA + `, x86-64: ` + hashB + `}
    extract: {mode: "0o640"}
  - url: https://example.org/data
    sha256: ` + hashA + `
    install: {to: /opt/tool/data}
`,
		want: Recipe{Name: "tool", Arches: []string{"x86-64", "arm64"}, Release: Release{ID: "_any"}, Sources: []Source{
			{URL: "https://example.org/tool", SHA256: map[string]string{"*": hashB}, Install: &Install{To: "/usr/bin/tool", Mode: 0o755 | fs.ModeSetuid}, Line: 3},
			{URL: "https://example.org/t.tar.gz", SHA256: map[string]string{"arm64": hashA, "x86-64": hashB}, Extract: &Extract{To: "/", Mode: 0o640}, Line: 6},
			{URL: "https://example.org/data", SHA256: map[string]string{"*": hashA}, Install: &Install{To: "/opt/tool/data", Mode: 0o644}, Line: 9},
		}},
	}, {
		name: "validate.foreign-elf",
		yaml: `name: go
sources: [{files: x}]
validate:
  foreign-elf:
    - path: /usr/lib/firmware/*
      reason: firmware for the NIC's microcontroller
    - {path: "/opt/go/src/*/testdata", reason: test data of every arch}
`,
		want: Recipe{Name: "go", Arches: []string{"x86-64", "arm64"}, Release: Release{ID: "_any"},
			Sources: []Source{{Files: "x", Line: 2}},
			Validate: Validation{ForeignELF: []ForeignELF{
				{Path: "/usr/lib/firmware/*", Reason: "firmware for the NIC's microcontroller", Line: 5},
				{Path: "/opt/go/src/*/testdata", Reason: "test data of every arch", Line: 7},
			}}},
	}, {
		name: "anchors and aliases",
		yaml: "name: hello\nsources:\n  - &f {files: files/}\n  - *f\n",
		want: Recipe{Name: "hello", Arches: []string{"x86-64", "arm64"}, Release: Release{ID: "_any"},
			Sources: []Source{{Files: "files/", Line: 3}, {Files: "files/", Line: 4}}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse([]byte(tt.yaml), "recipe.yaml")
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tt.want.Path = "recipe.yaml"
			if sum := sha256.Sum256([]byte(tt.yaml)); r.Digest.String() != "sha256:"+hex.EncodeToString(sum[:]) {
				t.Errorf("Digest = %v, want the sha256 of the file", r.Digest)
			}
			tt.want.Digest = r.Digest
			if got := withoutLines(r); !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("Parse gave\n%+v\nwant\n%+v", *got, tt.want)
			}
		})
	}
}

// TestParseFixture reads the DESIGN.md example, which uses every key.
func TestParseFixture(t *testing.T) {
	r, err := Load("testdata/kubernetes")
	if err != nil {
		t.Fatal(err)
	}
	want := &Recipe{
		Name:        "kubernetes",
		Description: "Kubernetes node binaries (kubelet, kubeadm, kubectl)",
		License:     "Apache-2.0",
		Homepage:    "https://kubernetes.io",
		Version:     "v1.32.2",
		Arches:      []string{"x86-64", "arm64"},
		Release:     Release{ID: "_any", Level: "1.0", Scope: []string{"system", "portable"}, ReloadManager: true},
		Sources: []Source{{
			URL:       "https://dl.k8s.io/release/{{.Version}}/bin/linux/{{.GoArch}}/kubelet",
			SHA256URL: "https://dl.k8s.io/release/{{.Version}}/bin/linux/{{.GoArch}}/kubelet.sha256",
			Install:   &Install{To: "/usr/bin/kubelet", Mode: 0o755},
			Line:      14,
		}, {
			URL:     "https://example.org/cni-plugins-linux-{{.GoArch}}-{{.Version}}.tgz",
			SHA256:  map[string]string{"x86-64": hashA, "arm64": strings.Repeat("a", 64)},
			Extract: &Extract{StripComponents: 1, Include: []string{"bridge", "host-local"}, To: "/usr/libexec/cni"},
			Line:    17,
		}, {
			OCI:     "registry.example/ns/tool@sha256:" + strings.Repeat("2", 64),
			Extract: &Extract{Include: []string{"usr/bin/tool"}, To: "/"},
			Line:    22,
		}, {
			Files: "files/",
			Line:  24,
		}},
		Path: filepath.Join("testdata", "kubernetes", "recipe.yaml"),
	}
	data, err := os.ReadFile(want.Path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	want.Digest = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	if got := withoutLines(r); !reflect.DeepEqual(got, want) {
		t.Errorf("Load gave\n%+v\nwant\n%+v", got, want)
	}
	if got := r.Dir(); got != filepath.Join("testdata", "kubernetes") {
		t.Errorf("Dir() = %q", got)
	}
	for i, k := range []SourceKind{URLSource, URLSource, OCISource, FilesSource} {
		if got := r.Sources[i].Kind(); got != k {
			t.Errorf("source %d: Kind() = %v, want %v", i+1, got, k)
		}
	}
}

// recipeWith is a valid recipe around one source, given as YAML lines
// indented for the sources list; the source starts on line 4.
func recipeWith(source string) string {
	return "name: tool\nversion: \"1.0\"\nsources:\n" + source
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		line int
		want string // a part of the message for that line
	}{
		// structure
		{"empty file", "", 0, "file is empty"},
		{"only comments", "# nothing\n", 0, "file is empty"},
		{"two documents", "name: a\n---\nname: b\n", 2, "second YAML document"},
		{"yaml syntax", "name: hello\nsources: [\n", 2, "invalid YAML"},
		{"not a mapping", "- name: hello\n", 1, "recipe must be a mapping"},
		{"unknown top key", "name: hello\nsource:\n  - files: x\n", 2, `unknown key "source" in recipe; known keys: name, class, description, license, homepage, version, arches, release, sources`},
		{"repeated key", "name: hello\nname: again\nsources: [{files: x}]\n", 2, `key "name" given twice in recipe (first on line 1)`},
		{"non-scalar key", "name: hello\n? [a]\n: b\nsources: [{files: x}]\n", 2, "keys must be plain words"},
		// name
		{"name missing", "version: \"1\"\nsources: [{files: x}]\n", 1, "name is missing"},
		{"name upper case", "name: Hello\nsources: [{files: x}]\n", 1, `name: "Hello" is not an extension name`},
		{"name hidden", "name: .hello\nsources: [{files: x}]\n", 1, "is not an extension name"},
		{"name double dash", "name: a--b\nsources: [{files: x}]\n", 1, "is not an extension name"},
		{"name with slash", "name: a/b\nsources: [{files: x}]\n", 1, "is not an extension name"},
		{"name too long", "name: " + strings.Repeat("a", 65) + "\nsources: [{files: x}]\n", 1, "longer than 64"},
		{"name catalog", "name: catalog\nsources: [{files: x}]\n", 1, "taken by the published catalog"},
		{"name boolean", "name: true\nsources: [{files: x}]\n", 1, "name must be a string, not the boolean true"},
		{"name null", "name:\nsources: [{files: x}]\n", 1, "name must be a string, not empty"},
		{"name empty string", "name: \"\"\nsources: [{files: x}]\n", 1, "name is empty"},
		// version, description
		{"version list", "name: a\nversion: [1]\nsources: [{files: x}]\n", 2, "version must be a string, not a list"},
		{"version with slash", "name: a\nversion: ../1\nsources: [{files: x}]\n", 2, `version: "../1" is not usable in an image file name`},
		{"version with space", "name: a\nversion: 1 2\nsources: [{files: x}]\n", 2, "is not usable"},
		{"description mapping", "name: a\ndescription: {a: b}\nsources: [{files: x}]\n", 2, "description must be a string, not a mapping"},
		{"homepage over http", "name: a\nhomepage: http://example.org\nsources: [{files: x}]\n", 2, `homepage: "http://example.org" is not an https://host/… URL`},
		{"homepage without host", "name: a\nhomepage: https:///x\nsources: [{files: x}]\n", 2, "is not an https://host/… URL"},
		// arches
		{"arch as GOARCH", "name: a\narches: [amd64]\nsources: [{files: x}]\n", 2, `architecture "amd64" is spelled "x86-64"`},
		{"arch as uname", "name: a\narches: [aarch64]\nsources: [{files: x}]\n", 2, `arches item: unknown systemd architecture "aarch64"`},
		{"arch unknown", "name: a\narches: [mips]\nsources: [{files: x}]\n", 2, `arches item: unknown systemd architecture "mips"`},
		{"arches empty", "name: a\narches: []\nsources: [{files: x}]\n", 2, "arches is an empty list"},
		// validate
		{"validate not a mapping", "name: a\nsources: [{files: x}]\nvalidate: [x]\n", 3, "validate must be a mapping"},
		{"validate unknown key", "name: a\nsources: [{files: x}]\nvalidate:\n  foreign-elfs: []\n", 4, `unknown key "foreign-elfs" in validate; known keys: foreign-elf`},
		{"foreign-elf empty", "name: a\nsources: [{files: x}]\nvalidate: {foreign-elf: []}\n", 3, "validate.foreign-elf is an empty list"},
		{"foreign-elf unknown key", "name: a\nsources: [{files: x}]\nvalidate:\n  foreign-elf:\n    - {path: /usr/x, reason: r, arch: arm64}\n", 5, `unknown key "arch" in validate.foreign-elf 1; known keys: path, reason`},
		{"foreign-elf without reason", "name: a\nsources: [{files: x}]\nvalidate:\n  foreign-elf:\n    - path: /usr/x\n", 5, "validate.foreign-elf 1 needs reason:"},
		{"foreign-elf without path", "name: a\nsources: [{files: x}]\nvalidate:\n  foreign-elf:\n    - reason: r\n", 5, "validate.foreign-elf 1 needs path:"},
		{"foreign-elf empty reason", "name: a\nsources: [{files: x}]\nvalidate:\n  foreign-elf:\n    - {path: /usr/x, reason: \"\"}\n", 5, "validate.foreign-elf 1 reason is empty"},
		{"foreign-elf relative", "name: a\nsources: [{files: x}]\nvalidate:\n  foreign-elf:\n    - {path: usr/x, reason: r}\n", 5, `validate.foreign-elf 1 path: "usr/x" must be a clean absolute pattern under /usr or /opt`},
		{"foreign-elf outside usr", "name: a\nsources: [{files: x}]\nvalidate:\n  foreign-elf:\n    - {path: /*, reason: r}\n", 5, `"/*" must be a clean absolute pattern under /usr or /opt`},
		{"foreign-elf unclean", "name: a\nsources: [{files: x}]\nvalidate:\n  foreign-elf:\n    - {path: /usr/lib/, reason: r}\n", 5, "must be a clean absolute pattern"},
		{"foreign-elf bad pattern", "name: a\nsources: [{files: x}]\nvalidate:\n  foreign-elf:\n    - {path: \"/usr/[\", reason: r}\n", 5, "is not a valid pattern"},
		{"foreign-elf twice", "name: a\nsources: [{files: x}]\nvalidate:\n  foreign-elf:\n    - {path: /usr/x, reason: r}\n    - {path: /usr/x, reason: s}\n", 6, `path "/usr/x" is given twice (first on line 5)`},
		{"arches scalar", "name: a\narches: x86-64\nsources: [{files: x}]\n", 2, "arches must be a list"},
		{"arch twice", "name: a\narches:\n  - arm64\n  - arm64\nsources: [{files: x}]\n", 4, `arches lists "arm64" twice`},
		// release
		{"release unknown key", "name: a\nrelease:\n  level: \"1\"\nsources: [{files: x}]\n", 3, `unknown key "level" in release; known keys: id, sysext-level, confext-level, version-id, scope, reload-manager`},
		{"release scalar", "name: a\nrelease: _any\nsources: [{files: x}]\n", 2, "release must be a mapping"},
		{"version-id with _any", "name: a\nrelease:\n  version-id: \"12\"\nsources: [{files: x}]\n", 3, "release.version-id needs an id other than _any"},
		{"both levels", "name: a\nrelease:\n  id: debian\n  sysext-level: \"1\"\n  version-id: \"12\"\nsources: [{files: x}]\n", 5, "both sysext-level and version-id"},
		{"id without level", "name: a\nrelease:\n  id: debian\nsources: [{files: x}]\n", 3, `release.id "debian" needs sysext-level or version-id`},
		{"id upper case", "name: a\nrelease: {id: Debian, version-id: \"1\"}\nsources: [{files: x}]\n", 2, `release.id: "Debian" is not an os-release value`},
		{"scope unknown", "name: a\nrelease:\n  scope: [system, host]\nsources: [{files: x}]\n", 3, `unknown scope "host"; known: system, initrd, portable`},
		{"reload-manager string", "name: a\nrelease:\n  reload-manager: \"yes\"\nsources: [{files: x}]\n", 3, "release.reload-manager must be true or false"},
		// sources
		{"sources missing", "name: a\n", 1, "sources is missing"},
		{"sources empty", "name: a\nsources: []\n", 2, "sources is an empty list"},
		{"source scalar", recipeWith("  - files/\n"), 4, "source 1 must be a mapping"},
		{"source of no kind", recipeWith("  - install: {to: /usr/bin/x}\n"), 4, "source 1 has none of them; a source is exactly one of url, oci or files"},
		{"source of two kinds", recipeWith("  - url: https://x/y\n    files: x\n"), 4, "source 1 has url and files; a source is exactly one of url, oci or files"},
		{"unknown source key", recipeWith("  - files: x\n  - url: https://example.org/tool\n    sha265: " + hashA + "\n    install: {to: /usr/bin/tool}\n"), 6,
			`unknown key "sha265" in source 2; known keys: url, sha256, sha256-url, install, extract, oci, files`},
		{"url without install or extract", recipeWith("  - url: https://x/y\n    sha256: " + hashA + "\n"), 4, "source 1 (url) needs install or extract"},
		{"url with install and extract", recipeWith("  - url: https://x/y\n    sha256: " + hashA + "\n    install: {to: /usr/bin/y}\n    extract: {}\n"), 7, "source 1 has both install and extract"},
		{"url without hash", recipeWith("  - url: https://x/y\n    install: {to: /usr/bin/y}\n"), 4, "source 1 (url) needs sha256 or sha256-url"},
		{"url with both hashes", recipeWith("  - url: https://x/y\n    sha256: " + hashA + "\n    sha256-url: https://x/y.sha256\n    install: {to: /usr/bin/y}\n"), 6, "source 1 has both sha256 and sha256-url"},
		{"url ftp", recipeWith("  - url: ftp://x/y\n    sha256: " + hashA + "\n    install: {to: /usr/bin/y}\n"), 4, `source 1 url: "ftp://x/y" is not an http, https or file URL`},
		{"url relative file", recipeWith("  - url: file:y.tgz\n    sha256: " + hashA + "\n    install: {to: /usr/bin/y}\n"), 4, "is not a file:///absolute/path URL"},
		{"url without host", recipeWith("  - url: https:///y\n    sha256: " + hashA + "\n    install: {to: /usr/bin/y}\n"), 4, "has no host"},
		{"sha256-url bad", recipeWith("  - url: https://x/y\n    sha256-url: x/y.sha256\n    install: {to: /usr/bin/y}\n"), 5, "source 1 sha256-url"},
		{"sha256 short", recipeWith("  - url: https://x/y\n    sha256: abc\n    install: {to: /usr/bin/y}\n"), 5, `source 1 sha256: "abc" is not a sha256 (64 hex digits)`},
		{"sha256 missing an arch", recipeWith("  - url: https://x/y\n    sha256:\n      x86-64: " + hashA + "\n    install: {to: /usr/bin/y}\n"), 5, "source 1 sha256 has no hash for arm64; add arm64: <sha256>"},
		{"sha256 for an arch not built", recipeWith("  - url: https://x/y\n    sha256:\n      x86-64: " + hashA + "\n      arm64: " + hashA + "\n      s390x: " + hashA + "\n    install: {to: /usr/bin/y}\n"), 8, `unknown key "s390x" in source 1 sha256; known keys: x86-64, arm64`},
		{"sha256 list", recipeWith("  - url: https://x/y\n    sha256: [" + hashA + "]\n    install: {to: /usr/bin/y}\n"), 5, "source 1 sha256 must be a string, not a list"},
		{"oci with sha256", recipeWith("  - oci: r.example/t@sha256:" + hashA + "\n    sha256: " + hashA + "\n    extract: {}\n"), 5, "source 1: sha256 is not allowed with oci"},
		{"oci with install", recipeWith("  - oci: r.example/t@sha256:" + hashA + "\n    install: {to: /usr/bin/t}\n"), 5, "source 1: install is not allowed with oci"},
		{"oci without extract", recipeWith("  - oci: r.example/t@sha256:" + hashA + "\n"), 4, "source 1 (oci) needs extract"},
		{"oci by tag", recipeWith("  - oci: r.example/t:latest\n    extract: {}\n"), 4, `source 1 oci: "r.example/t:latest" is not an image reference pinned by digest`},
		{"oci short digest", recipeWith("  - oci: r.example/t@sha256:abc\n    extract: {}\n"), 4, "is not an image reference pinned by digest"},
		{"files with extract", recipeWith("  - files: x\n    extract: {}\n"), 5, "source 1: extract is not allowed with files"},
		{"files escaping", recipeWith("  - files: ../../etc\n"), 4, `source 1 files: "../../etc" must be a folder inside the recipe's folder`},
		{"files absolute", recipeWith("  - files: /etc\n"), 4, "must be a folder inside the recipe's folder"},
		{"files escaping by template", recipeWith("  - files: \"{{.Arch}}/../..\"\n"), 4, "must be a folder inside the recipe's folder"},
		// install
		{"install unknown key", recipeWith("  - url: https://x/y\n    sha256: " + hashA + "\n    install:\n      path: /usr/bin/y\n"), 7, `unknown key "path" in source 1 install; known keys: to, mode`},
		{"install without to", recipeWith("  - url: https://x/y\n    sha256: " + hashA + "\n    install: {mode: \"0755\"}\n"), 6, "source 1 install needs to"},
		{"install to /etc", recipeWith("  - url: https://x/y\n    sha256: " + hashA + "\n    install: {to: /etc/x}\n"), 6, `source 1 install.to: "/etc/x" is not under /usr or /opt`},
		{"install to dot-dot", recipeWith("  - url: https://x/y\n    sha256: " + hashA + "\n    install: {to: /usr/../etc/x}\n"), 6, `source 1 install.to: "/usr/../etc/x" must be a clean absolute path`},
		{"install to dot-dot by template", recipeWith("  - url: https://x/y\n    sha256: " + hashA + "\n    install: {to: \"/usr/{{.Version}}/../../etc/x\"}\n"), 6, "must be a clean absolute path"},
		{"install to relative", recipeWith("  - url: https://x/y\n    sha256: " + hashA + "\n    install: {to: usr/bin/y}\n"), 6, "must be a clean absolute path"},
		{"install to /usr itself", recipeWith("  - url: https://x/y\n    sha256: " + hashA + "\n    install: {to: /usr}\n"), 6, `"/usr" is not under /usr or /opt`},
		{"install to trailing slash", recipeWith("  - url: https://x/y\n    sha256: " + hashA + "\n    install: {to: /usr/bin/}\n"), 6, "must be a clean absolute path"},
		{"mode not octal", recipeWith("  - url: https://x/y\n    sha256: " + hashA + "\n    install: {to: /usr/bin/y, mode: \"0999\"}\n"), 6, `source 1 install.mode must be octal digits such as "0755", not "0999"`},
		{"mode symbolic", recipeWith("  - url: https://x/y\n    sha256: " + hashA + "\n    install: {to: /usr/bin/y, mode: rwxr-xr-x}\n"), 6, "must be octal digits"},
		{"mode unreadable", recipeWith("  - url: https://x/y\n    sha256: " + hashA + "\n    install: {to: /usr/bin/y, mode: \"0000\"}\n"), 6, "leaves the file unreadable"},
		// extract
		{"extract unknown key", recipeWith("  - url: https://x/y.tgz\n    sha256: " + hashA + "\n    extract: {strip: 1}\n"), 6, `unknown key "strip" in source 1 extract; known keys: strip-components, include, to, mode`},
		{"strip-components negative", recipeWith("  - url: https://x/y.tgz\n    sha256: " + hashA + "\n    extract: {strip-components: -1}\n"), 6, "extract.strip-components must be a whole number >= 0"},
		{"strip-components word", recipeWith("  - url: https://x/y.tgz\n    sha256: " + hashA + "\n    extract: {strip-components: one}\n"), 6, "extract.strip-components must be a whole number"},
		{"include bad pattern", recipeWith("  - url: https://x/y.tgz\n    sha256: " + hashA + "\n    extract:\n      include:\n        - bin/*\n        - \"[\"\n"), 9, `source 1 extract.include: "[" is not a valid pattern`},
		{"include absolute", recipeWith("  - url: https://x/y.tgz\n    sha256: " + hashA + "\n    extract: {include: [/usr/bin/y]}\n"), 6, "must be a clean relative member path"},
		{"include dot-dot", recipeWith("  - url: https://x/y.tgz\n    sha256: " + hashA + "\n    extract: {include: [../y]}\n"), 6, "must be a clean relative member path"},
		{"include empty list", recipeWith("  - url: https://x/y.tgz\n    sha256: " + hashA + "\n    extract: {include: []}\n"), 6, "extract.include is an empty list"},
		{"include scalar", recipeWith("  - url: https://x/y.tgz\n    sha256: " + hashA + "\n    extract: {include: bin/y}\n"), 6, "extract.include must be a list"},
		{"extract to /etc", recipeWith("  - url: https://x/y.tgz\n    sha256: " + hashA + "\n    extract: {to: /etc}\n"), 6, `source 1 extract.to: "/etc" is not under /usr or /opt`},
		{"extract to dot-dot", recipeWith("  - url: https://x/y.tgz\n    sha256: " + hashA + "\n    extract: {to: /opt/..}\n"), 6, "must be a clean absolute path"},
		// templates
		{"unknown variable", recipeWith("  - url: https://x/{{.Foo}}\n    sha256: " + hashA + "\n    install: {to: /usr/bin/y}\n"), 4, "source 1 url: unknown variable {{.Foo}}; the variables are {{.Version}}, {{.Arch}}, {{.GoArch}}, {{.UnameArch}}, {{.OSID}} and {{.OSVersion}}"},
		{"lower-case variable", recipeWith("  - url: https://x/y\n    sha256: " + hashA + "\n    install: {to: \"/usr/bin/{{.version}}\"}\n"), 6, "source 1 install.to: unknown variable {{.version}}"},
		{"template syntax", recipeWith("  - url: https://x/{{.Version}\n    sha256: " + hashA + "\n    install: {to: /usr/bin/y}\n"), 4, "source 1 url: template: url:1: bad character"},
		{"template function", recipeWith("  - url: https://x/{{printf \"%s\" .Version}}\n    sha256: " + hashA + "\n    install: {to: /usr/bin/y}\n"), 4, "is not supported: templates only print"},
		{"template range", recipeWith("  - url: https://x/{{range 9}}a{{end}}\n    sha256: " + hashA + "\n    install: {to: /usr/bin/y}\n"), 4, "is not supported"},
		{"template in sha256-url", recipeWith("  - url: https://x/y\n    sha256-url: \"https://x/{{.Os}}\"\n    install: {to: /usr/bin/y}\n"), 5, "source 1 sha256-url: unknown variable {{.Os}}"},
		{"template in include", recipeWith("  - url: https://x/y.tgz\n    sha256: " + hashA + "\n    extract:\n      include:\n        - \"{{.Goarch}}/bin\"\n"), 8, "source 1 extract.include: unknown variable {{.Goarch}}"},
		{"template in oci", recipeWith("  - oci: \"r.example/t@sha256:{{.Arch}}\"\n    extract: {}\n"), 4, "source 1 oci"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "recipe.yaml")
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			prefix := "recipe.yaml: "
			if tt.line > 0 {
				prefix = fmt.Sprintf("recipe.yaml:%d: ", tt.line)
			}
			for _, msg := range strings.Split(err.Error(), "\n") {
				if strings.HasPrefix(msg, prefix) && strings.Contains(msg, tt.want) {
					return
				}
			}
			t.Errorf("error\n%v\nhas no line starting %q and containing %q", err, prefix, tt.want)
		})
	}
}

// TestParseReportsEveryProblem checks that one Parse lists all problems in
// line order, each as an *Error.
func TestParseReportsEveryProblem(t *testing.T) {
	data := "name: Bad\nversion: [1]\nsources:\n  - files: /etc\n  - url: https://x/y\n"
	_, err := Parse([]byte(data), "r.yaml")
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	var lines []int
	for _, msg := range strings.Split(err.Error(), "\n") {
		var n int
		if _, scanErr := fmt.Sscanf(msg, "r.yaml:%d:", &n); scanErr != nil {
			t.Errorf("message %q does not start with r.yaml:LINE:", msg)
		}
		lines = append(lines, n)
	}
	if want := []int{1, 2, 4, 5, 5}; !reflect.DeepEqual(lines, want) {
		t.Errorf("lines %v, want %v; errors:\n%v", lines, want, err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Path != "r.yaml" || e.Line != 1 {
		t.Errorf("errors.As found %+v, want the *Error of line 1", e)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.yaml")
	if err := os.WriteFile(other, []byte("name: other\nsources: [{files: x}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path, wantName, wantPath, wantErr string
	}{
		{path: "../testdata/hello", wantName: "hello", wantPath: "../testdata/hello/recipe.yaml"},
		{path: "../testdata/hello/recipe.yaml", wantName: "hello", wantPath: "../testdata/hello/recipe.yaml"},
		{path: other, wantName: "other", wantPath: other},
		{path: empty, wantErr: "holds no recipe.yaml"},
		{path: filepath.Join(dir, "missing"), wantErr: "no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r, err := Load(tt.path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Name != tt.wantName || r.Path != filepath.FromSlash(tt.wantPath) {
				t.Errorf("Load gave name %q path %q, want %q %q", r.Name, r.Path, tt.wantName, tt.wantPath)
			}
		})
	}
}

func TestSourceKindString(t *testing.T) {
	for k, want := range map[SourceKind]string{URLSource: "url", FilesSource: "files", OCISource: "oci", 0: "SourceKind(0)"} {
		if got := k.String(); got != want {
			t.Errorf("SourceKind(%d).String() = %q, want %q", int(k), got, want)
		}
	}
}

// TestConfextRecipes checks the class key: a confext recipe writes its
// level as confext-level and installs only under /etc.
func TestConfextRecipes(t *testing.T) {
	const head = "name: conf\nclass: confext\nversion: \"1\"\nrelease: {id: flatcar, confext-level: \"2\"}\nsources:\n"
	r, err := Parse([]byte(head+"  - files: files/\n"), "recipe.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if r.ImageClass().Name != "confext" || r.Release.Level != "2" {
		t.Errorf("class %s, level %q", r.ImageClass(), r.Release.Level)
	}
	bad := []struct{ name, yaml, want string }{
		{"unknown class", "name: x\nclass: portable\nsources: [{files: f}]\n", `unknown image class "portable"`},
		{"sysext level in a confext", "name: x\nclass: confext\nrelease: {sysext-level: \"1\"}\nsources: [{files: f}]\n", "release.sysext-level is for another class"},
		{"confext level in a sysext", "name: x\nrelease: {confext-level: \"1\"}\nsources: [{files: f}]\n", "release.confext-level is for another class"},
		{"a confext installing to /usr", head + "  - url: https://example.org/x\n    sha256: " + strings.Repeat("a", 64) + "\n    install: {to: /usr/bin/x}\n", `"/usr/bin/x" is not under /etc`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "recipe.yaml")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one saying %q", err, tt.want)
			}
		})
	}
	r, err = Parse([]byte(head+"  - url: https://example.org/x\n    sha256: "+strings.Repeat("a", 64)+"\n    install: {to: /etc/conf/x.conf}\n"), "recipe.yaml")
	if err != nil {
		t.Fatalf("a confext installing to /etc: %v", err)
	}
}
