package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fileRecipe writes a recipe file installing the file at path (by file
// URL), which it creates with data, and returns the recipe's path.
func fileRecipe(t *testing.T, recipe, path string, data []byte) string {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	body := fmt.Sprintf("name: local\nversion: \"1\"\narches: [x86-64]\nsources:\n  - url: file://%s\n    sha256: %s\n    install: {to: /usr/share/local/file}\n", path, hex.EncodeToString(sum[:]))
	if err := os.WriteFile(recipe, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return recipe
}

func TestBakeSourceLimits(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "data")
	far := fileRecipe(t, filepath.Join(dir, "far.yaml"), outside, []byte(strings.Repeat("x", 2048)))
	near := fileRecipe(t, filepath.Join(dir, "near.yaml"), filepath.Join(dir, "data"), []byte(strings.Repeat("y", 2048)))
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
