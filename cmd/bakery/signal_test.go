package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// trickle answers with an endless body, a little at a time, until the
// client goes away: a download that never ends.
func trickle(w http.ResponseWriter, r *http.Request) {
	chunk := bytes.Repeat([]byte{0x5a}, 64<<10)
	for {
		if _, err := w.Write(chunk); err != nil {
			return
		}
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestSignalsStopLongOperations sends SIGTERM to a bake whose source never
// ends and to a pull whose blob never ends: each exits promptly with a
// failure and leaves no file in the cache or output directory.
func TestSignalsStopLongOperations(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v2/":
			w.WriteHeader(http.StatusOK)
		case strings.HasSuffix(r.URL.Path, "/manifests/1.0"):
			manifest := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.bakery.sysext.v1",`+
				`"config":{"mediaType":"application/vnd.bakery.sysext.config.v1+json","digest":"sha256:%s","size":2},`+
				`"layers":[{"mediaType":"application/vnd.bakery.sysext.layer.v1.squashfs","digest":"sha256:%s","size":68719476736}],`+
				`"annotations":{"org.bakery.sysext.name":"app","org.opencontainers.image.version":"1.0"}}`, strings.Repeat("1", 64), strings.Repeat("2", 64))
			w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
			w.Write([]byte(manifest))
		default: // the blob and the recipe's source
			trickle(w, r)
		}
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	recipe := filepath.Join(t.TempDir(), "recipe.yaml")
	os.WriteFile(recipe, []byte(fmt.Sprintf("name: endless\nversion: \"1\"\narches: [x86-64]\nsources:\n  - url: %s/endless.tar.gz\n    sha256: %s\n    extract: {}\n",
		srv.URL, strings.Repeat("3", 64))), 0o644)
	for _, c := range []struct {
		name string
		args func(out string) []string
	}{
		{"bake", func(out string) []string { return []string{"bake", recipe, "--out", out} }},
		{"pull", func(out string) []string {
			return []string{"pull", host + "/ns/app:1.0", "--insecure", "--arch", "x86-64", "--out", out}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, cache := t.TempDir(), t.TempDir()
			cmd := exec.Command(bakeryBin, c.args(out)...)
			cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+cache)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second) // well into the download
			cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err == nil {
					t.Errorf("exit 0 after SIGTERM")
				}
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("still running 10 s after SIGTERM:\n%s", stderr.String())
			}
			for _, dir := range []string{out, cache} {
				filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
					if err == nil && !d.IsDir() {
						t.Errorf("left %s behind", p)
					}
					return nil
				})
			}
		})
	}
}
