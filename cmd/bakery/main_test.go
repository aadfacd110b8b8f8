package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// bakeryBin is the bakery binary built once for these tests.
var bakeryBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "bakery-cli-test-")
	if err != nil {
		panic(err)
	}
	bakeryBin = filepath.Join(dir, "bakery")
	// run gives each command its own XDG_CACHE_HOME; the go builds of
	// image self keep using the machine's build cache.
	if os.Getenv("GOCACHE") == "" {
		if out, err := exec.Command("go", "env", "GOCACHE").Output(); err == nil {
			os.Setenv("GOCACHE", strings.TrimSpace(string(out)))
		}
	}
	if out, err := exec.Command("go", "build", "-o", bakeryBin, ".").CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// run runs bakery with args and returns stdout, stderr and the exit code.
func run(t testing.TB, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bakeryBin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+t.TempDir())
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return stdout.String(), stderr.String(), 0
	case errors.As(err, &ee):
		return stdout.String(), stderr.String(), ee.ExitCode()
	}
	t.Fatal(err)
	return "", "", -1
}

func TestExitCodesAndErrors(t *testing.T) {
	typo := filepath.Join(t.TempDir(), "recipe.yaml")
	os.WriteFile(typo, []byte("name: x\nversion: \"1\"\nsources:\n  - files: files/\n    instal: {to: /usr/bin/x}\n"), 0o644)
	cases := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no args to bake", []string{"bake"}, 2, "one RECIPE"},
		{"unknown flag", []string{"bake", "--nope", "x"}, 2, "nope"},
		{"bad builder", []string{"bake", "--builder", "zip", "../../testdata/hello"}, 2, `builder "zip"`},
		{"missing recipe", []string{"bake", "/nonexistent/recipe.yaml"}, 1, "/nonexistent/recipe.yaml"},
		{"typo in recipe", []string{"bake", typo}, 1, typo + ":5"},
		{"inspect garbage", []string{"image", "inspect", typo}, 1, "not a squashfs, erofs or ddi image"},
		{"help has examples", []string{"bake", "--help"}, 0, "Examples:"},
		{"merge help says how many extensions merge", []string{"merge", "--help"}, 0, "Up to 498 extensions"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stdout, stderr, code := run(t, c.args...)
			if code != c.code {
				t.Errorf("exit code %d, want %d; stderr: %s", code, c.code, stderr)
			}
			if !strings.Contains(stderr+stdout, c.stderr) {
				t.Errorf("output does not say %q:\nstdout: %s\nstderr: %s", c.stderr, stdout, stderr)
			}
		})
	}
}

func TestBakeAndInspectJSON(t *testing.T) {
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		t.Skip("mksquashfs is not installed (scripts/setup installs it)")
	}
	out := t.TempDir()
	stdout, stderr, code := run(t, "bake", "../../testdata/hello", "--out", out, "--epoch", "0", "--json")
	if code != 0 {
		t.Fatalf("bake failed (%d): %s", code, stderr)
	}
	var res struct {
		Images []struct {
			Path, SHA256, Architecture string
		}
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("bake --json printed %q: %v", stdout, err)
	}
	if len(res.Images) != 2 {
		t.Fatalf("baked %d images, want 2", len(res.Images))
	}
	for _, img := range res.Images {
		if want := filepath.Join(out, "hello-1.0.0-"+img.Architecture+".raw"); img.Path != want {
			t.Errorf("image path %s, want %s", img.Path, want)
		}
		stdout, stderr, code := run(t, "image", "inspect", img.Path, "--json")
		if code != 0 {
			t.Fatalf("inspect failed: %s", stderr)
		}
		var info struct {
			Fstype, SHA256, Name string
			Release              map[string]string `json:"extensionRelease"`
			Entries              int
		}
		if err := json.Unmarshal([]byte(stdout), &info); err != nil {
			t.Fatalf("inspect --json printed %q: %v", stdout, err)
		}
		if info.Fstype != "squashfs" || info.SHA256 != img.SHA256 || info.Name != "hello" ||
			info.Release["ARCHITECTURE"] != img.Architecture || info.Release["SYSEXT_ID"] != "hello" || info.Entries < 10 {
			t.Errorf("inspect = %+v", info)
		}
		// The human report is the command's output too: on stdout.
		stdout, stderr, code = run(t, "image", "inspect", img.Path)
		if code != 0 || !strings.Contains(stdout, "ARCHITECTURE="+img.Architecture) || stderr != "" {
			t.Errorf("inspect: exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	}
}

func TestImageCreateIntoNewDirectory(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "new", "dir", "x.raw")
	if _, stderr, code := run(t, "image", "create", "../../testdata/hello/files", dst, "--epoch", "0"); code != 0 {
		t.Fatalf("image create: %d %s", code, stderr)
	}
	data, err := os.ReadFile(dst)
	if err != nil || !bytes.HasPrefix(data, []byte("hsqs")) {
		t.Fatalf("%s is not a squashfs image: %v", dst, err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(dst)); len(ents) != 1 {
		t.Errorf("image create left %d files beside the image", len(ents)-1)
	}
}
