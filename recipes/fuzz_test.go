package recipes

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that every error names the
// file, and that a recipe that parses also expands for each of its arches.
func FuzzParse(f *testing.F) {
	for _, file := range []string{"testdata/kubernetes/recipe.yaml", "../testdata/hello/recipe.yaml"} {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"",
		"name: a\nsources: [{files: x}]\n",
		"name: a\nsources:\n  - &s {files: x}\n  - *s\n",
		"name: a\nrelease: {id: x, version-id: \"1\"}\nsources:\n  - oci: r.example/t@sha256:" + hashA + "\n    extract: {include: [\"a/*\"], to: /opt}\n",
		"name: a\nsources:\n  - url: \"https://x/{{.Version}}\"\n    sha256: {x86-64: " + hashA + ", arm64: " + hashB + "}\n    install: {to: /usr/bin/a, mode: 4755}\n",
		"a: &a [*a]\n",
		"name: a\n<<: {version: 1}\nsources: [{files: x}]\n",
		"name: a\nsources: [{files: x}]\nvalidate:\n  foreign-elf:\n    - {path: /usr/lib/firmware/*, reason: nic}\n    - {path: \"/opt/[a-z]*/testdata\", reason: tests}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(data, "recipe.yaml")
		if err != nil {
			for _, msg := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(msg, "recipe.yaml:") {
					t.Fatalf("error line %q does not name the file; whole error:\n%v", msg, err)
				}
			}
			return
		}
		version := r.Version
		if version == "" {
			version = "0"
		}
		for _, arch := range r.Arches {
			b, err := r.Expand(version, arch)
			if err != nil {
				t.Fatalf("Parse accepted a recipe that does not expand for %s: %v", arch, err)
			}
			for _, s := range b.Sources {
				if s.Kind == URLSource && s.SHA256 == "" && s.SHA256URL == "" {
					t.Fatalf("source %d fetches %s without a hash", s.Index+1, s.URL)
				}
			}
		}
	})
}

var lowerSHA256 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// FuzzParseSHA256File checks that ParseSHA256File never panics, only
// returns well-formed hashes, and finds a plain name in a sha256sum line.
func FuzzParseSHA256File(f *testing.F) {
	f.Add([]byte(hashA+"\n"), "a.tgz")
	f.Add([]byte(hashA+"  a.tgz\n"+hashB+" *b.tgz\n"), "b.tgz")
	f.Add([]byte("SHA256 (a.tgz) = "+hashA+"\n"), "a.tgz")
	f.Add([]byte(`\`+hashA+"  a\\nb\n"), "a\nb")
	f.Add([]byte("# c\n\r\n"), "")
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		if got, err := ParseSHA256File(data, name); err == nil && !lowerSHA256.MatchString(got) {
			t.Fatalf("gave %q, not a lowercase sha256", got)
		}
		if name == "" || name == "-" || strings.TrimSpace(name) != name || strings.ContainsAny(name, "\r\n/") || name[0] == '*' {
			return
		}
		line := hashA + "  " + name + "\n" + hashB + "  other-" + name + "\n"
		if got, err := ParseSHA256File([]byte(line), name); err != nil || got != hashA {
			t.Fatalf("sha256sum line for %q gave %q, %v; want %s", name, got, err, hashA)
		}
	})
}
