package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRecipesLint(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("name: bad\nversion: \"1\"\nsources:\n  - url: http://example.org/x\n    sha256: "+strings.Repeat("a", 64)+"\n    install: {to: /usr/bin/x}\n"), 0o644)
	cases := []struct {
		name           string
		args           []string
		code           int
		stdout, stderr []string
	}{
		{"the shipped catalog", []string{"recipes", "lint"}, 0, nil, []string{"no problems"}},
		{"a good recipe", []string{"recipes", "lint", "../../testdata/hello"}, 0, nil, []string{"lint: 1 recipe, no problems"}},
		{"every problem, located", []string{"recipes", "lint", bad, "../../testdata/hello"}, 1,
			[]string{bad + ": description: missing", bad + ": license: missing", bad + ": homepage: missing", bad + `:4: source 1 url: "http://example.org/x" is not https`},
			[]string{"lint: 4 problems in 1 of 2 recipes"}},
		{"an unknown recipe", []string{"recipes", "lint", "no-such-recipe"}, 1, []string{"no-such-recipe: recipe \"no-such-recipe\": no such file or folder"}, nil},
		{"an unknown subcommand", []string{"recipes", "frobnicate"}, 2, nil, []string{`unknown command "frobnicate"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stdout, stderr, code := run(t, c.args...)
			if code != c.code {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, c.code, stdout, stderr)
			}
			for _, want := range c.stdout {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout)
				}
			}
			for _, want := range c.stderr {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
		})
	}
	stdout, _, code := run(t, "recipes", "lint", "--json", bad)
	var doc struct {
		Recipes []struct {
			Name     string
			Problems []struct {
				Path    string
				Line    int
				Message string
			}
		}
		Problems int
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil || code != 1 || doc.Problems != 4 || len(doc.Recipes) != 1 || doc.Recipes[0].Problems[3].Line != 4 {
		t.Errorf("lint --json: exit %d, %v, %+v", code, err, doc)
	}
}

func TestRecipesShowAndList(t *testing.T) {
	stdout, stderr, code := run(t, "recipes", "show", "../../recipes/testdata/kubernetes", "--version", "v1.33.0", "--json")
	var view struct {
		Name   string
		Builds []struct {
			Arch    string
			Sources []struct {
				Kind, URL string
				Install   *struct{ To, Mode string }
			}
		}
	}
	if err := json.Unmarshal([]byte(stdout), &view); err != nil || code != 0 {
		t.Fatalf("show --json: exit %d, %v\n%s", code, err, stderr)
	}
	if len(view.Builds) != 2 || view.Builds[1].Arch != "arm64" ||
		view.Builds[1].Sources[0].URL != "https://dl.k8s.io/release/v1.33.0/bin/linux/arm64/kubelet" ||
		view.Builds[1].Sources[0].Install.Mode != "0755" {
		t.Errorf("show: %+v", view)
	}
	kmod := filepath.Join(t.TempDir(), "recipe.yaml")
	os.WriteFile(kmod, []byte("name: kmod\nversion: \"1\"\narches: [x86-64]\nrelease: {id: \"{{.OSID}}\", version-id: \"{{.OSVersion}}\"}\nsources:\n  - url: https://example.org/{{.OSVersion}}/m\n    sha256: "+strings.Repeat("a", 64)+"\n    install: {to: /usr/lib/m}\n"), 0o644)
	if stdout, stderr, code := run(t, "recipes", "show", kmod); code != 0 || !strings.Contains(stderr, "kernel-bound: pass --os") || strings.Contains(stdout, "x86-64 (") {
		t.Errorf("show of a kernel-bound recipe without --os: %d\n%s\n%s", code, stdout, stderr)
	}
	if stdout, _, code := run(t, "recipes", "show", kmod, "--os", "flatcar", "--os-version", "4081.2.0"); code != 0 || !strings.Contains(stdout, "https://example.org/4081.2.0/m") {
		t.Errorf("show --os: %d\n%s", code, stdout)
	}
	if _, stderr, code := run(t, "recipes", "show", "../../testdata/hello", "--version", "1/2"); code != 2 || !strings.Contains(stderr, "is not usable") {
		t.Errorf("show with a bad version: %d %s", code, stderr)
	}
	stdout, _, code = run(t, "recipes", "list", "--json")
	var list struct{ Recipes []json.RawMessage }
	if err := json.Unmarshal([]byte(stdout), &list); err != nil || code != 0 || list.Recipes == nil {
		t.Errorf("list --json: exit %d, %v: %s", code, err, stdout)
	}
}
