package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sysext-bakery/bakery/internal/fixture"
	"github.com/sysext-bakery/bakery/sysext"
)

// fileRecipe writes a recipe file whose one source is the file at path (a
// file URL), which it creates with data unless data is nil, staged as the
// recipe line stage says (install: or extract:); it returns the recipe's
// path.
func fileRecipe(t *testing.T, recipe, path string, data []byte, stage string) string {
	t.Helper()
	if data != nil {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	body := fmt.Sprintf("name: local\nversion: \"1\"\narches: [x86-64]\nsources:\n  - url: file://%s\n    sha256: %s\n    %s\n", path, hex.EncodeToString(sum[:]), stage)
	if err := os.WriteFile(recipe, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return recipe
}

func TestBakeSourceLimits(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "data")
	const install = "install: {to: /usr/share/local/file}"
	far := fileRecipe(t, filepath.Join(dir, "far.yaml"), outside, []byte(strings.Repeat("x", 2048)), install)
	near := fileRecipe(t, filepath.Join(dir, "near.yaml"), filepath.Join(dir, "data"), []byte(strings.Repeat("y", 2048)), install)
	// many.tar.gz holds usr/, usr/share/, usr/share/many/ and 20 files: 23 entries, made by GNU tar.
	tree := t.TempDir()
	for i := range 20 {
		p := filepath.Join(tree, "usr", "share", "many", fmt.Sprint(i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, nil, 0o644)
	}
	tarball := filepath.Join(dir, "many.tar.gz")
	if out, err := exec.Command("tar", "-C", tree, "-czf", tarball, "usr").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v: %s", err, out)
	}
	many := fileRecipe(t, filepath.Join(dir, "many.yaml"), tarball, nil, "extract: {}")
	cases := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"file URL outside the recipe's folder", []string{far}, 1, far + ":5: source 1 url: file://" + outside + ": file URL outside the recipe's folder"},
		{"the same, allowed", []string{far, "--allow-file-urls"}, 0, "local-1-x86-64.raw"},
		{"source over --max-source-size", []string{near, "--max-source-size", "1KiB"}, 1, "2048 bytes, more than the limit of 1KiB"},
		{"source within --max-source-size", []string{near, "--max-source-size", "2KiB"}, 0, "local-1-x86-64.raw"},
		{"bad --max-source-size", []string{near, "--max-source-size", "lots"}, 2, `--max-source-size: size "lots"`},
		{"archive over --max-entries", []string{many, "--max-entries", "22"}, 1, "many.yaml:7: source 1 extract: file://" + tarball + ": more than 22 entries (MaxEntries) — raise MaxEntries (bake --max-entries)"},
		{"archive within --max-entries", []string{many, "--max-entries", "23"}, 0, "local-1-x86-64.raw"},
		{"bad --max-entries", []string{many, "--max-entries", "0"}, 2, "--max-entries 0: must be 1 or more"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"bake", "--out", t.TempDir(), "--epoch", "0"}, c.args...)
			_, stderr, code := run(t, args...)
			if code != c.code || !strings.Contains(stderr, c.stderr) {
				t.Errorf("exit code %d, want %d saying %q; stderr:\n%s", code, c.code, c.stderr, stderr)
			}
		})
	}
}

// TestBakeUsageErrorsFetchNothing: a flag bake cannot use is a usage error
// (exit 2) found before any source is fetched.
func TestBakeUsageErrorsFetchNothing(t *testing.T) {
	tool := []byte("#!/bin/sh\necho tool\n")
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Write(tool)
	}))
	t.Cleanup(srv.Close)
	sum := sha256.Sum256(tool)
	recipe := filepath.Join(t.TempDir(), "recipe.yaml")
	os.WriteFile(recipe, []byte(fmt.Sprintf("name: tool\nversion: \"1\"\narches: [x86-64, arm64]\nsources:\n  - url: %s/tool-{{.GoArch}}\n    sha256: %x\n    install: {to: /usr/bin/tool, mode: \"0755\"}\n", srv.URL, sum)), 0o644)
	cases := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"unknown arch after a good one", []string{"--arch", "x86-64,bogus"}, 2, `unknown systemd architecture "bogus"`},
		{"arch as GOARCH", []string{"--arch", "amd64"}, 2, `architecture "amd64" is spelled "x86-64"`},
		{"arch the recipe lacks", []string{"--arch", "s390x"}, 2, "the recipe does not build for s390x"},
		{"arch twice", []string{"--arch", "arm64,arm64"}, 2, "arch arm64 is asked for twice"},
		{"bad version", []string{"--version", "1/2"}, 2, `version: "1/2" is not usable`},
		{"unknown compression", []string{"--compression", "brotli"}, 2, `compression "brotli": use zstd, gzip, xz, lz4 or none`},
		{"zstd level out of range", []string{"--level", "99"}, 2, "zstd level 99: use 1..22"},
		{"xz with a level", []string{"--compression", "xz", "--level", "6"}, 2, "xz takes no level"},
		{"mksquashfs lz4 with a level", []string{"--builder", "mksquashfs", "--compression", "lz4", "--level", "4"}, 2, "lz4 takes no --level"},
		{"unknown format", []string{"--format", "zip"}, 2, `format "zip" is not supported`},
		{"compressed erofs", []string{"--format", "erofs", "--compression", "lz4"}, 2, "bakery's own reader (image inspect, push) cannot read compressed erofs"},
		{"erofs with a level", []string{"--format", "erofs", "--level", "3"}, 2, "uncompressed erofs takes no level"},
		{"a good bake fetches", []string{"--format", "erofs"}, 0, "tool-1-arm64.raw"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := requests.Load()
			args := append([]string{"bake", recipe, "--out", t.TempDir(), "--epoch", "0"}, c.args...)
			_, stderr, code := run(t, args...)
			if code != c.code || !strings.Contains(stderr, c.stderr) {
				t.Errorf("exit code %d, want %d saying %q; stderr:\n%s", code, c.code, c.stderr, stderr)
			}
			fetched := requests.Load() - before
			if c.code == 2 && fetched != 0 || c.code == 0 && fetched == 0 {
				t.Errorf("%d requests reached the server", fetched)
			}
		})
	}
}

// TestBakeKernelBoundThroughMirror bakes a recipe tied to one OS release
// from a mirror: without --os it is a usage error; with it, the image's
// extension-release names that release and the source came from the
// mirror.
func TestBakeKernelBoundThroughMirror(t *testing.T) {
	tool := []byte("#!/bin/sh\necho module loader\n")
	sum := sha256.Sum256(tool)
	srv := fixture.Serve(t, map[string][]byte{"/mirror/4081.2.0/tool": tool})
	dir := t.TempDir()
	recipe := filepath.Join(dir, "recipe.yaml")
	os.WriteFile(recipe, []byte(fmt.Sprintf(`name: kmod
version: "1"
arches: [x86-64]
release: {id: "{{.OSID}}", version-id: "{{.OSVersion}}"}
sources:
  - url: https://upstream.invalid/{{.OSVersion}}/tool
    sha256: %s
    install: {to: /usr/bin/kmod-loader, mode: "0755"}
`, hex.EncodeToString(sum[:]))), 0o644)
	if _, stderr, code := run(t, "bake", recipe, "--out", t.TempDir()); code != 2 || !strings.Contains(stderr, "--os ID --os-version") {
		t.Errorf("bake of a kernel-bound recipe without --os: %d %s", code, stderr)
	}
	out := t.TempDir()
	if _, stderr, code := run(t, "bake", recipe, "--out", out, "--os", "flatcar", "--os-version", "4081.2.0",
		"--mirror", "https://upstream.invalid/="+srv.URL+"/mirror/"); code != 0 {
		t.Fatalf("bake: %s", stderr)
	}
	image := filepath.Join(out, "kmod-1-flatcar-4081.2.0-x86-64.raw") // one name per OS release
	stdout, stderr, code := run(t, "image", "inspect", image, "--json")
	if code != 0 || !strings.Contains(stdout, `"ID": "flatcar"`) || !strings.Contains(stdout, `"VERSION_ID": "4081.2.0"`) {
		t.Errorf("inspect: %d %s %s", code, stdout, stderr)
	}

	// The real systemd-sysext merges it on that OS release only.
	for _, tt := range []struct {
		osRelease string
		merged    bool
	}{
		{"ID=flatcar\nVERSION_ID=4081.2.0\n", true},
		{"ID=flatcar\nVERSION_ID=4081.3.0\n", false},
		{"ID=debian\nVERSION_ID=4081.2.0\n", false},
	} {
		out := oracleMerge(t, image, "kmod", tt.osRelease)
		if merged := strings.Contains(out, "hierarchy /usr kmod"); merged != tt.merged {
			t.Errorf("systemd-sysext on %q: merged %v, want %v:\n%s", tt.osRelease, merged, tt.merged, out)
		}
	}
}

// oracleMerge merges image, as extension name, with the real systemd-sysext
// (../shared/tools/sysext-oracle) on a root with the given os-release, and
// returns what the oracle printed. It skips without root, the oracle or an
// x86-64 host.
func oracleMerge(t *testing.T, image, name, osRelease string) string {
	t.Helper()
	oracle, _ := filepath.Abs("../../../shared/tools/sysext-oracle")
	switch _, err := os.Stat(oracle); {
	case os.Geteuid() != 0:
		t.Skip("the systemd-sysext oracle needs root")
	case err != nil:
		t.Skipf("%s is missing (it lives beside the repo in ../shared)", oracle)
	case sysext.HostArch().Name != "x86-64":
		t.Skipf("host is %s; the test merges an x86-64 image", sysext.HostArch().Name)
	}
	root := t.TempDir()
	for _, d := range []string{"etc", "usr/lib", "var/lib/extensions"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.WriteFile(filepath.Join(root, "etc/os-release"), []byte(osRelease), 0o644)
	data, err := os.ReadFile(image)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "var/lib/extensions", name+".raw"), data, 0o644)
	out, err := exec.Command(oracle, root).CombinedOutput()
	if err != nil {
		t.Fatalf("sysext-oracle: %v: %s", err, out)
	}
	return string(out)
}
