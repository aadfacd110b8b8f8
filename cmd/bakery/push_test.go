package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sysextImage makes NAME-VERSION-ARCH.raw in dir with mksquashfs.
func sysextImage(t *testing.T, dir, name, version, arch string) string {
	t.Helper()
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		t.Skip("mksquashfs not installed (apt-get install squashfs-tools)")
	}
	tree := t.TempDir()
	rel := filepath.Join(tree, "usr/lib/extension-release.d")
	os.MkdirAll(rel, 0o755)
	os.WriteFile(filepath.Join(rel, "extension-release."+name), []byte(fmt.Sprintf("ID=_any\nARCHITECTURE=%s\nSYSEXT_ID=%s\nSYSEXT_VERSION_ID=%s\n", arch, name, version)), 0o644)
	os.MkdirAll(filepath.Join(tree, "usr/bin"), 0o755)
	os.WriteFile(filepath.Join(tree, "usr/bin", name), []byte("#!/bin/sh\necho "+arch+"\n"), 0o755)
	img := filepath.Join(dir, fmt.Sprintf("%s-%s-%s.raw", name, version, arch))
	if out, err := exec.Command("mksquashfs", tree, img, "-all-root", "-noappend", "-no-progress").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v\n%s", err, out)
	}
	return img
}

// serveRegistry runs `bakery registry serve` on a free loopback port, with
// extra flags.
func serveRegistry(t *testing.T, flags ...string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bakeryBin, append([]string{"registry", "serve", "--addr", addr, "--root", t.TempDir()}, flags...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Signal(os.Interrupt); <-exited })
	for i := 0; i < 200; i++ {
		if resp, err := http.Get("http://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			return addr
		}
		select {
		case <-exited:
			t.Fatal("bakery registry serve exited")
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatal("bakery registry serve did not come up")
	return ""
}

// TestRegistryCommands runs keygen, registry serve, push, verify, pull and
// catalog as a user would, reading their --json output.
func TestRegistryCommands(t *testing.T) {
	out := t.TempDir()
	sysextImage(t, out, "hello", "1.0+1", "x86-64")
	sysextImage(t, out, "hello", "1.0+1", "arm64")
	keys := t.TempDir()
	if _, stderr, code := run(t, "keygen", "--out", filepath.Join(keys, "k")); code != 0 {
		t.Fatalf("keygen: %d %s", code, stderr)
	}
	if fi, err := os.Stat(filepath.Join(keys, "k.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("k.key: %v %v", fi, err)
	}
	addr := serveRegistry(t)
	ref := addr + "/sysext/hello"

	stdout, stderr, code := run(t, "push", out, ref, "--key", filepath.Join(keys, "k.key"), "--insecure", "--json",
		"--annotation", "org.opencontainers.image.description=hello world")
	if code != 0 {
		t.Fatalf("push: %d %s", code, stderr)
	}
	var pushed struct {
		IndexDigest string
		Tags        []string
		Signature   string
	}
	if err := json.Unmarshal([]byte(stdout), &pushed); err != nil || pushed.Signature == "" {
		t.Fatalf("push --json: %v %q", err, stdout)
	}

	stdout, stderr, code = run(t, "verify", ref+":1.0_1", "--key", filepath.Join(keys, "k.pub"), "--insecure", "--json")
	if code != 0 || !strings.Contains(stdout, pushed.IndexDigest) {
		t.Fatalf("verify: %d %s %s", code, stdout, stderr)
	}

	dest := t.TempDir()
	stdout, stderr, code = run(t, "pull", ref+":latest", "--arch", "arm64", "--key", filepath.Join(keys, "k.pub"), "--out", dest, "--insecure", "--json")
	if code != 0 {
		t.Fatalf("pull: %d %s", code, stderr)
	}
	var pulled struct {
		Path     string
		Verified bool
	}
	json.Unmarshal([]byte(stdout), &pulled)
	want, _ := os.ReadFile(filepath.Join(out, "hello-1.0+1-arm64.raw"))
	got, err := os.ReadFile(pulled.Path)
	if err != nil || string(got) != string(want) || !pulled.Verified {
		t.Fatalf("pulled %+v: same bytes %v, %v", pulled, string(got) == string(want), err)
	}

	stdout, stderr, code = run(t, "catalog", addr+"/sysext", "--insecure", "--json", "--key", filepath.Join(keys, "k.pub"))
	if code != 0 || !strings.Contains(stdout, `"hello world"`) || !strings.Contains(stdout, `"verified": true`) {
		t.Fatalf("catalog: %d %s %s", code, stdout, stderr)
	}
	if stdout, stderr, code = run(t, "catalog", addr+"/sysext", "--insecure"); code != 0 || !strings.Contains(stdout, "hello") || !strings.Contains(stdout, "x86-64,arm64") && !strings.Contains(stdout, "arm64,x86-64") {
		t.Fatalf("catalog table: %d %s %s", code, stdout, stderr)
	}
	// The catalog re-signed by the publisher: a new sequence, still verified.
	if stdout, stderr, code = run(t, "catalog", addr+"/sysext", "--insecure", "--json", "--sign", filepath.Join(keys, "k.key"), "--catalog-validity", "48h"); code != 0 || !strings.Contains(stdout, `"verified": true`) {
		t.Fatalf("catalog --sign: %d %s %s", code, stdout, stderr)
	}
	if stdout, stderr, code = run(t, "catalog", addr+"/sysext", "--insecure", "--key", filepath.Join(keys, "k.pub")); code != 0 || !strings.Contains(stdout, "signed by key") || !strings.Contains(stdout, "yes") {
		t.Fatalf("verified catalog table: %d %s %s", code, stdout, stderr)
	}

	// pull and keygen create the directory they are told to write into.
	newDir := filepath.Join(t.TempDir(), "new", "dir")
	if _, stderr, code = run(t, "pull", ref+":latest", "--arch", "x86-64", "--out", newDir, "--insecure", "--key", filepath.Join(keys, "k.pub")); code != 0 {
		t.Fatalf("pull --out into a new directory: %d %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(newDir, "hello-1.0+1-x86-64.raw")); err != nil {
		t.Errorf("pull --out into a new directory: %v", err)
	}
	if _, stderr, code = run(t, "keygen", "--out", filepath.Join(t.TempDir(), "new", "release")); code != 0 {
		t.Fatalf("keygen --out into a new directory: %d %s", code, stderr)
	}

	// A wrong key: failure (1), and nothing written.
	other := t.TempDir()
	run(t, "keygen", "--out", filepath.Join(other, "o"), "--algorithm", "ed25519")
	empty := t.TempDir()
	if _, stderr, code = run(t, "pull", ref+":latest", "--arch", "arm64", "--key", filepath.Join(other, "o.pub"), "--out", empty, "--insecure"); code != 1 || !strings.Contains(stderr, "no valid signature") {
		t.Fatalf("pull with a wrong key: %d %s", code, stderr)
	}
	if es, _ := os.ReadDir(empty); len(es) != 0 {
		t.Errorf("refused pull wrote %v", es)
	}
}

func TestRegistryUsageErrors(t *testing.T) {
	cases := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"push without ref", []string{"push", "out/"}, "DIR|IMAGE.raw"},
		{"pull without ref", []string{"pull"}, "one REF"},
		{"verify without key", []string{"verify", "h/n/x:1"}, "--key"},
		{"keygen without out", []string{"keygen"}, "out"},
		{"keygen bad algorithm", []string{"keygen", "--out", "x", "--algorithm", "rsa"}, "ecdsa-p256 or ed25519"},
		{"catalog without target", []string{"catalog"}, "HOST"},
		{"serve with half TLS", []string{"registry", "serve", "--tls-cert", "c.pem"}, "go together"},
		{"bad annotation", []string{"push", "a.raw", "h/n/x", "--annotation", "novalue"}, "KEY=VALUE"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"unknown class", []string{"pull", "h/n/x:1", "--class", "portable"}, `unknown image class "portable"`},
		{"unknown subcommand", []string{"registry", "frob"}, `unknown command "frob"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, stderr, code := run(t, c.args...)
			if code != 2 || !strings.Contains(stderr, c.stderr) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr, c.stderr)
			}
		})
	}
}

// TestNoProgressBarsOnDevNull: /dev/null is a character device but not a
// terminal, so scripts that send stderr there get no progress bars.
func TestNoProgressBarsOnDevNull(t *testing.T) {
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	saved := os.Stderr
	os.Stderr = devNull
	defer func() { os.Stderr = saved }()
	if stderrIsTerminal() {
		t.Error("stderr on /dev/null counts as a terminal")
	}
}
