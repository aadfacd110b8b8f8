package recipes

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	r, err := Load("testdata/kubernetes")
	if err != nil {
		t.Fatal(err)
	}
	filesDir, err := filepath.Abs("testdata/kubernetes/files")
	if err != nil {
		t.Fatal(err)
	}
	oci := "registry.example/ns/tool@sha256:" + strings.Repeat("2", 64)
	tests := []struct {
		version, arch string
		want          Build
	}{{
		version: "", arch: "x86-64",
		want: Build{Version: "v1.32.2", ImageVersion: "v1.32.2", Arch: "x86-64", GoArch: "amd64", UnameArch: "x86_64", Sources: []BuildSource{{
			Kind:      URLSource,
			URL:       "https://dl.k8s.io/release/v1.32.2/bin/linux/amd64/kubelet",
			SHA256URL: "https://dl.k8s.io/release/v1.32.2/bin/linux/amd64/kubelet.sha256",
			Install:   &Install{To: "/usr/bin/kubelet", Mode: 0o755},
			Line:      14,
		}, {
			Kind:    URLSource,
			URL:     "https://example.org/cni-plugins-linux-amd64-v1.32.2.tgz",
			SHA256:  hashA,
			Extract: &Extract{StripComponents: 1, Include: []string{"bridge", "host-local"}, To: "/usr/libexec/cni"},
			Line:    17, Index: 1,
		}, {
			Kind: OCISource, OCI: oci, Extract: &Extract{Include: []string{"usr/bin/tool"}, To: "/"}, Line: 22, Index: 2,
		}, {
			Kind: FilesSource, FilesDir: filesDir, Line: 24, Index: 3,
		}}},
	}, {
		version: "v1.33.0+k3s1", arch: "arm64",
		want: Build{Version: "v1.33.0+k3s1", ImageVersion: "v1.33.0+k3s1", Arch: "arm64", GoArch: "arm64", UnameArch: "aarch64", Sources: []BuildSource{{
			Kind:      URLSource,
			URL:       "https://dl.k8s.io/release/v1.33.0+k3s1/bin/linux/arm64/kubelet",
			SHA256URL: "https://dl.k8s.io/release/v1.33.0+k3s1/bin/linux/arm64/kubelet.sha256",
			Install:   &Install{To: "/usr/bin/kubelet", Mode: 0o755},
			Line:      14,
		}, {
			Kind:    URLSource,
			URL:     "https://example.org/cni-plugins-linux-arm64-v1.33.0+k3s1.tgz",
			SHA256:  hashB,
			Extract: &Extract{StripComponents: 1, Include: []string{"bridge", "host-local"}, To: "/usr/libexec/cni"},
			Line:    17, Index: 1,
		}, {
			Kind: OCISource, OCI: oci, Extract: &Extract{Include: []string{"usr/bin/tool"}, To: "/"}, Line: 22, Index: 2,
		}, {
			Kind: FilesSource, FilesDir: filesDir, Line: 24, Index: 3,
		}}},
	}}
	for _, tt := range tests {
		t.Run(tt.version+"/"+tt.arch, func(t *testing.T) {
			b, err := r.Expand(tt.version, tt.arch)
			if err != nil {
				t.Fatal(err)
			}
			if b.Recipe != r {
				t.Error("Build.Recipe is not the recipe expanded")
			}
			tt.want.Recipe, tt.want.Release = r, r.Release
			for i := range tt.want.Sources {
				tt.want.Sources[i].GoArch = tt.want.GoArch
			}
			if !reflect.DeepEqual(*b, tt.want) {
				t.Errorf("Expand gave\n%+v\nwant\n%+v", *b, tt.want)
			}
			// The build owns its Install and Extract: changing them leaves
			// the recipe's templates alone.
			b.Sources[0].Install.To = "/usr/bin/changed"
			b.Sources[1].Extract.Include[0] = "changed"
			if r.Sources[0].Install.To != "/usr/bin/kubelet" || r.Sources[1].Extract.Include[0] != "bridge" {
				t.Error("changing the Build changed the Recipe")
			}
		})
	}
}

// TestExpandTemplates covers every variable in every templated field.
func TestExpandTemplates(t *testing.T) {
	data := `name: t
arches: [x86, ppc64-le, loongarch64]
sources:
  - url: "file:///srv/{{.Version}}/{{.Arch}}/{{.GoArch}}.tar"
    sha256-url: "https://example.org/{{.Version}}/{{.UnameArch}}/SHA256SUMS"
    extract:
      include: ["t-{{.GoArch}}/*"]
      to: "/opt/t/{{.Version}}"
  - url: https://example.org/t
    sha256: ` + hashA + `
    install: {to: "/usr/lib/t/{{.Arch}}/t"}
  - files: "files-{{.Arch}}"
  - oci: "r.example/t:{{.Version}}@sha256:` + hashB + `"
    extract: {}
`
	r, err := Parse([]byte(data), "/srv/recipes/t/recipe.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ arch, goarch, uname string }{{"x86", "386", "i686"}, {"ppc64-le", "ppc64le", "ppc64le"}, {"loongarch64", "loong64", "loongarch64"}}
	for _, tt := range tests {
		t.Run(tt.arch, func(t *testing.T) {
			b, err := r.Expand("2.0", tt.arch)
			if err != nil {
				t.Fatal(err)
			}
			got := []string{b.GoArch, b.Sources[0].URL, b.Sources[0].SHA256URL, b.Sources[0].Extract.Include[0], b.Sources[0].Extract.To,
				b.Sources[1].Install.To, b.Sources[2].FilesDir, b.Sources[3].OCI}
			want := []string{tt.goarch, "file:///srv/2.0/" + tt.arch + "/" + tt.goarch + ".tar", "https://example.org/2.0/" + tt.uname + "/SHA256SUMS", "t-" + tt.goarch + "/*", "/opt/t/2.0",
				"/usr/lib/t/" + tt.arch + "/t", "/srv/recipes/t/files-" + tt.arch, "r.example/t:2.0@sha256:" + hashB}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("expanded\n%q\nwant\n%q", got, want)
			}
		})
	}
}

// TestExpandSHA256 resolves per-arch and shared hashes.
func TestExpandSHA256(t *testing.T) {
	data := `name: t
arches: [x86-64, arm64, riscv64]
sources:
  - url: https://example.org/a
    sha256: {x86-64: ` + hashA + `, arm64: ` + hashB + `, riscv64: ` + strings.Repeat("C", 64) + `}
    install: {to: /usr/bin/a}
  - url: https://example.org/b
    sha256: ` + hashB + `
    install: {to: /usr/bin/b}
`
	r, err := Parse([]byte(data), "recipe.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ arch, perArch, shared string }{
		{"x86-64", hashA, hashB},
		{"arm64", hashB, hashB},
		{"riscv64", strings.Repeat("c", 64), hashB},
	}
	for _, tt := range tests {
		b, err := r.Expand("1", tt.arch)
		if err != nil {
			t.Fatal(err)
		}
		if b.Sources[0].SHA256 != tt.perArch || b.Sources[1].SHA256 != tt.shared {
			t.Errorf("%s: sha256 %s and %s, want %s and %s", tt.arch, b.Sources[0].SHA256, b.Sources[1].SHA256, tt.perArch, tt.shared)
		}
	}
}

func TestExpandErrors(t *testing.T) {
	withVersion, err := Load("testdata/kubernetes")
	if err != nil {
		t.Fatal(err)
	}
	noVersion, err := Parse([]byte("name: t\nsources: [{files: x}]\n"), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// A recipe built in Go, not parsed: Expand checks it all the same.
	handMade := &Recipe{Name: "t", Arches: []string{"x86-64"}, Path: "h.yaml", Sources: []Source{
		{URL: "https://x/y", SHA256: map[string]string{"*": hashA}, Install: &Install{To: "/etc/{{.Arch}}"}, Line: 3},
		{URL: "https://x/z", SHA256: map[string]string{"arm64": hashA}, Install: &Install{To: "/usr/bin/z"}, Line: 7},
		{Line: 9},
	}}
	tests := []struct {
		name          string
		r             *Recipe
		version, arch string
		want          string
	}{
		{"no version anywhere", noVersion, "", "x86-64", "t.yaml: no version: the recipe has no version: key and none was given; pass --version"},
		{"version leaving the output folder", withVersion, "../../x", "x86-64", `version: "../../x" is not usable`},
		{"version with slash", withVersion, "1/2", "x86-64", "is not usable"},
		{"arch not in the recipe", withVersion, "", "riscv64", "the recipe does not build for riscv64 (arches: x86-64, arm64); add it to arches"},
		{"arch as GOARCH", withVersion, "", "amd64", `architecture "amd64" is spelled "x86-64"`},
		{"version that is a path", withVersion, "..", "x86-64", `version: ".." is not usable`},
		{"hand-made recipe escaping /usr", handMade, "1", "x86-64", `h.yaml:3: source 1 install.to: "/etc/x86-64" is not under /usr or /opt`},
		{"hand-made recipe missing a hash", handMade, "1", "x86-64", "h.yaml:7: source 2 sha256 has no hash for x86-64"},
		{"hand-made recipe with an empty source", handMade, "1", "x86-64", "h.yaml:9: source 3 has none of url, oci or files"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.r.Expand(tt.version, tt.arch)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Expand error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestHelloFixture checks the sample recipe the demo and the pipeline's
// tests build: its files source resolves to the tree beside it, which holds
// the script, its alias, the greeting and the unit.
func TestHelloFixture(t *testing.T) {
	r, err := Load("../testdata/hello")
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "hello" || r.Version != "1.0.0" || r.Release.ID != "_any" || r.Release.Level != "1.0" ||
		!reflect.DeepEqual(r.Arches, []string{"x86-64", "arm64"}) {
		t.Errorf("hello recipe is %+v", r)
	}
	want, err := filepath.Abs("../testdata/hello/files")
	if err != nil {
		t.Fatal(err)
	}
	for _, arch := range r.Arches {
		b, err := r.Expand("", arch)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Sources) != 1 || b.Sources[0].Kind != FilesSource || b.Sources[0].FilesDir != want {
			t.Fatalf("%s: sources %+v, want one files source at %s", arch, b.Sources, want)
		}
	}
	script, err := os.Stat(filepath.Join(want, "usr/bin/hello"))
	if err != nil || script.Mode().Perm() != 0o755 {
		t.Errorf("usr/bin/hello: %v, mode %v; want an executable script (0755)", err, script)
	}
	if target, err := os.Readlink(filepath.Join(want, "usr/bin/hi")); err != nil || target != "hello" {
		t.Errorf("usr/bin/hi links to %q (%v), want hello", target, err)
	}
	for _, f := range []string{"usr/share/hello/greeting.txt", "usr/lib/systemd/system/hello.service"} {
		if _, err := os.Stat(filepath.Join(want, f)); err != nil {
			t.Error(err)
		}
	}
}

// TestKernelBound expands a recipe tied to one OS release: its release
// fields and URLs take --os and --os-version, which it cannot do without,
// and which other recipes refuse.
func TestKernelBound(t *testing.T) {
	yaml := `name: nvidia
version: "550.127"
release: {id: "{{.OSID}}", version-id: "{{.OSVersion}}"}
sources:
  - url: https://example.org/{{.OSID}}/{{.OSVersion}}/nvidia-{{.Version}}-{{.GoArch}}.tar.gz
    sha256: ` + strings.Repeat("a", 64) + `
    extract: {to: /usr}
`
	r, err := Parse([]byte(yaml), "recipe.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !r.KernelBound() {
		t.Fatal("KernelBound = false")
	}
	if _, err := r.Expand("", "x86-64"); err == nil || !strings.Contains(err.Error(), "pass --os ID --os-version VERSION") {
		t.Errorf("Expand without an OS = %v", err)
	}
	b, err := r.ExpandFor(Target{Arch: "x86-64", OS: OS{ID: "flatcar", Version: "4081.2.0"}})
	if err != nil {
		t.Fatal(err)
	}
	if b.Release.ID != "flatcar" || b.Release.VersionID != "4081.2.0" || b.Sources[0].URL != "https://example.org/flatcar/4081.2.0/nvidia-550.127-amd64.tar.gz" ||
		b.ImageVersion != "550.127-flatcar-4081.2.0" {
		t.Errorf("build %+v, source %s", b.Release, b.Sources[0].URL)
	}
	if _, err := r.ExpandFor(Target{Arch: "x86-64", OS: OS{ID: "Flatcar!", Version: "1"}}); err == nil || !strings.Contains(err.Error(), "not an os-release value") {
		t.Errorf("a bad --os = %v", err)
	}
	plain, err := Parse([]byte("name: x\nversion: \"1\"\nsources: [{files: f}]\n"), "recipe.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.ExpandFor(Target{Arch: "x86-64", OS: OS{ID: "flatcar", Version: "1"}}); err == nil || !strings.Contains(err.Error(), "for kernel-bound recipes") {
		t.Errorf("--os on a plain recipe = %v", err)
	}
}
