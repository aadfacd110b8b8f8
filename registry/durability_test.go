package registry

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/sysext-bakery/bakery/sign"
)

// TestMain doubles as the embedded registry's process for
// TestDurability: with BAKERY_TEST_SERVE_ROOT set, the test binary only
// serves, until it is killed.
func TestMain(m *testing.M) {
	if root := os.Getenv("BAKERY_TEST_SERVE_ROOT"); root != "" {
		if err := Serve(context.Background(), os.Getenv("BAKERY_TEST_SERVE_ADDR"), root); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// serveProcess runs the embedded registry in a child process on a fresh
// loopback port and returns its address and the process.
func serveProcess(t *testing.T, root string) (string, *exec.Cmd, <-chan struct{}) {
	t.Helper()
	addr := freePort(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "BAKERY_TEST_SERVE_ROOT="+root, "BAKERY_TEST_SERVE_ADDR="+addr)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	waitHTTP(t, addr, exited)
	return addr, cmd, exited
}

// TestDurability pushes to the embedded registry, kills it with SIGKILL,
// starts it again on the same root and pulls: same digests, same bytes.
func TestDurability(t *testing.T) {
	root := t.TempDir()
	dir := bakeDir(t, "durable", "2.1", 256<<10, "x86-64", "arm64")
	key := newKey(t, sign.Ed25519)
	ctx := context.Background()

	addr, cmd, exited := serveProcess(t, root)
	pushed, err := Push(ctx, addr+"/ns/durable", []string{dir}, WithSigner(key))
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no shutdown path runs
		t.Fatal(err)
	}
	<-exited

	addr, _, _ = serveProcess(t, root)
	ref := addr + "/ns/durable"
	vr, err := Verify(ctx, ref+":2.1", WithKeys(key.Public()))
	if err != nil {
		t.Fatalf("verify after kill -9 and restart: %v", err)
	}
	if vr.Digest != pushed.IndexDigest {
		t.Errorf("index digest %s after restart, pushed %s", vr.Digest, pushed.IndexDigest)
	}
	for _, img := range pushed.Images {
		res, err := Pull(ctx, ref+":latest", WithArch(img.Arch), WithOutDir(t.TempDir()), WithKeys(key.Public()))
		if err != nil {
			t.Fatalf("pull %s after restart: %v", img.Arch, err)
		}
		if res.Digest != img.LayerDigest || res.ManifestDigest != img.ManifestDigest || "sha256:"+fileSHA(t, res.Path) != img.LayerDigest {
			t.Errorf("%s: pulled %+v, pushed %+v", img.Arch, res, img)
		}
	}
	cat, err := Catalog(ctx, addr+"/ns", WithKeys(key.Public()))
	if err != nil || len(cat.Catalog.Extensions) != 1 {
		t.Errorf("catalog after restart: %+v, %v", cat, err)
	}
}
