package registry

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
)

// testRegistry is a registry a test pushes to: its host:port on loopback.
type testRegistry struct {
	name string
	host string
	// referrers tells whether the registry serves the referrers API
	// (otherwise signatures go through the sha256-<hex> fallback tag).
	referrers bool
}

// registryKinds are the registries the integration tests run against.
var registryKinds = []string{"embedded", "docker-registry", "ggcr"}

// startRegistry starts a registry of the given kind for t, or skips t when
// its binary is missing.
func startRegistry(t *testing.T, kind string) testRegistry {
	t.Helper()
	switch kind {
	case "embedded":
		return testRegistry{name: kind, host: startEmbedded(t, t.TempDir())}
	case "ggcr":
		s := httptest.NewServer(ggcrregistry.New(ggcrregistry.WithReferrersSupport(true), ggcrregistry.Logger(log.New(io.Discard, "", 0))))
		t.Cleanup(s.Close)
		return testRegistry{name: kind, host: strings.TrimPrefix(s.URL, "http://"), referrers: true}
	case "docker-registry":
		return testRegistry{name: kind, host: startDockerRegistry(t)}
	}
	t.Fatalf("unknown registry kind %q", kind)
	return testRegistry{}
}

// startEmbedded runs Serve on a random loopback port until t ends.
func startEmbedded(t testing.TB, root string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, "127.0.0.1:0", root, WithReady(func(a string) { addrc <- a })) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	select {
	case a := <-addrc:
		return a
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	}
	return ""
}

// freePort returns a loopback port nothing listens on right now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitHTTP polls http://host/v2/ until it answers.
func waitHTTP(t *testing.T, host string, exited <-chan struct{}) {
	t.Helper()
	for i := 0; i < 200; i++ {
		resp, err := http.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			return
		}
		select {
		case <-exited:
			t.Fatalf("registry on %s exited before serving", host)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("registry on %s did not come up", host)
}

// startDockerRegistry runs Debian's docker-registry (distribution 2.8) on
// a random loopback port with storage in a temp dir.
func startDockerRegistry(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Skip("docker-registry not installed (apt-get install docker-registry; scripts/setup does it)")
	}
	dir := t.TempDir()
	host := freePort(t)
	cfg := fmt.Sprintf(`version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: %s}, delete: {enabled: true}}
http: {addr: %s}
`, filepath.Join(dir, "data"), host)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", cfgPath)
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("docker-registry log:\n%s", logs.String())
		}
	})
	waitHTTP(t, host, exited)
	return host
}
