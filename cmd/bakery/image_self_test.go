package main

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/inspect"
)

var (
	staticOnce sync.Once
	staticBin  string
	staticErr  error
)

// staticBakery is bakery built with CGO_ENABLED=0 for this machine, once
// per test run: what a node runs from bakery's own extension.
func staticBakery(t *testing.T) string {
	t.Helper()
	staticOnce.Do(func() {
		staticBin = filepath.Join(filepath.Dir(bakeryBin), "bakery-static")
		cmd := exec.Command("go", "build", "-trimpath", "-o", staticBin, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			staticErr = err
			t.Logf("%s", out)
		}
	})
	if staticErr != nil {
		t.Fatalf("CGO_ENABLED=0 go build: %v", staticErr)
	}
	return staticBin
}

// selfImage runs image self with args and returns the image written.
func selfImage(t *testing.T, args ...string) (path, sha string) {
	t.Helper()
	stdout, stderr, code := run(t, append([]string{"image", "self", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("image self %v: %s", args, stderr)
	}
	var res struct{ Path, SHA256 string }
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("image self --json printed %q: %v", stdout, err)
	}
	return res.Path, res.SHA256
}

// imageFS opens an image's file system with bakery's own reader, for the
// rest of the test.
func imageFS(t *testing.T, image string) fs.FS {
	t.Helper()
	f, err := os.Open(image)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fsys, _, err := inspect.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	return fsys
}

// imageFile reads a file out of an image with bakery's own reader.
func imageFile(t *testing.T, image, name string) []byte {
	t.Helper()
	data, err := fs.ReadFile(imageFS(t, image), name)
	if err != nil {
		t.Fatalf("%s: %v", image, err)
	}
	return data
}

func TestImageSelf(t *testing.T) {
	static := staticBakery(t)
	host := sysext.HostArch().Name
	a, shaA := selfImage(t, "--out", t.TempDir(), "--binary", static, "--epoch", "0", "--version", "1.2.3")
	old := syscall.Umask(0o077)
	_, shaB := selfImage(t, "--out", t.TempDir(), "--binary", static, "--epoch", "0", "--version", "1.2.3")
	syscall.Umask(old)
	if shaA != shaB {
		t.Errorf("the same binary and epoch gave two images: %s and %s", shaA, shaB)
	}
	if filepath.Base(a) != "bakery-1.2.3-"+host+".raw" {
		t.Errorf("image named %s", filepath.Base(a))
	}
	info, err := inspect.Image(a)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"ARCHITECTURE": host, "EXTENSION_RELOAD_MANAGER": "1", "SYSEXT_ID": "bakery", "SYSEXT_VERSION_ID": "1.2.3", "ID": "_any"} {
		if info.Release[k] != v {
			t.Errorf("extension-release %s=%q, want %q", k, info.Release[k], v)
		}
	}
	want, _ := os.ReadFile(static)
	if !bytes.Equal(imageFile(t, a, "usr/bin/bakery"), want) {
		t.Error("usr/bin/bakery is not the binary given")
	}
	unit := imageFile(t, a, "usr/lib/systemd/system/bakery-sync.service")
	if !bytes.Contains(unit, []byte("ExecStart=/usr/bin/bakery sync")) {
		t.Errorf("bakery-sync.service:\n%s", unit)
	}
	imageFile(t, a, "usr/lib/systemd/system/bakery-sync.timer")
	if _, err := fs.Stat(imageFS(t, a), "usr/lib/systemd/system/bakery-merge.service"); err == nil {
		t.Error("the image carries bakery-merge.service, which conflicts with the systemd-sysext that merges it")
	}

	// --key and --cert sign it as image create does: a plain image gets
	// its signed dm-verity sidecars.
	keys := filepath.Join(t.TempDir(), "release")
	if _, stderr, code := run(t, "keygen", "--x509", "--out", keys); code != 0 {
		t.Fatalf("keygen: %s", stderr)
	}
	signed, _ := selfImage(t, "--out", t.TempDir(), "--binary", static, "--epoch", "0", "--version", "1.2.3", "--key", keys+".key", "--cert", keys+".crt")
	for _, suffix := range []string{".verity", ".roothash", ".roothash.p7s"} {
		if _, err := os.Stat(strings.TrimSuffix(signed, ".raw") + suffix); err != nil {
			t.Errorf("image self --key --cert: %v", err)
		}
	}

	// Another arch: built from this checkout with cgo off.
	other := "arm64"
	if host == other {
		other = "x86-64"
	}
	c, _ := selfImage(t, "--out", t.TempDir(), "--arch", other, "--epoch", "0")
	binPath := filepath.Join(t.TempDir(), "bakery")
	os.WriteFile(binPath, imageFile(t, c, "usr/bin/bakery"), 0o755)
	ef, err := elf.Open(binPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	wantArch, _ := sysext.ArchByName(other)
	if !wantArch.MatchesELF(ef) {
		t.Errorf("the %s image holds a binary for %s", other, ef.Machine)
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the cross-built binary is dynamically linked")
		}
	}

	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"a dynamic binary", []string{"--binary", bakeryBin}, 1, "dynamically linked"},
		{"a binary for another arch", []string{"--binary", static, "--arch", other}, 1, "not " + other},
		{"not bakery", []string{"--binary", staticNotBakery(t)}, 1, "not bakery"},
		{"an unknown arch", []string{"--arch", "vax"}, 2, "unknown systemd architecture"},
		{"a version systemd-sysupdate cannot match", []string{"--binary", static, "--version", "1 2"}, 2, "--version"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := t.TempDir()
			_, stderr, code := run(t, append([]string{"image", "self", "--out", out}, c.args...)...)
			if code != c.code || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, c.code, c.want)
			}
			if ents, _ := os.ReadDir(out); len(ents) != 0 {
				t.Errorf("a refused image self wrote %v", ents)
			}
		})
	}
}

// staticNotBakery builds a static Go program that is not bakery.
func staticNotBakery(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/other\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", "other", ".")
	cmd.Dir, cmd.Env = dir, append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build a program that is not bakery: %v\n%s", err, out)
	}
	return filepath.Join(dir, "other")
}
