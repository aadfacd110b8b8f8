package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sysext-bakery/bakery/internal/fixture"
	"github.com/sysext-bakery/bakery/sysext"
)

// TestSyncFromRegistry is the node's life end to end: bake, push signed to
// a real registry process, then `bakery sync` on a root pulls for this
// machine's arch, verifies, installs, records the digest and refreshes the
// merge, all in a private mount namespace; a sync trusting another key
// installs nothing.
func TestSyncFromRegistry(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (loop devices, overlayfs)")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("needs unshare (util-linux)")
	}
	work := t.TempDir()
	for _, prefix := range []string{"good", "other"} {
		if _, stderr, code := run(t, "keygen", "--out", filepath.Join(work, prefix)); code != 0 {
			t.Fatalf("keygen: %s", stderr)
		}
	}
	out := filepath.Join(work, "out")
	if _, stderr, code := run(t, "bake", "../../testdata/hello", "--out", out, "--epoch", "0"); code != 0 {
		t.Fatalf("bake: %s", stderr)
	}
	addr := serveRegistry(t)
	if _, stderr, code := run(t, "push", out, addr+"/demo/hello:1.0.0", "--key", filepath.Join(work, "good.key"), "--insecure"); code != 0 {
		t.Fatalf("push: %s", stderr)
	}
	image, err := os.ReadFile(filepath.Join(out, "hello-1.0.0-x86-64.raw"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(image)
	want := hex.EncodeToString(sum[:])

	// An attacker with write access copies another extension's signed
	// index, with its signature, to hello:latest.
	evilOut := t.TempDir()
	sysextImage(t, evilOut, "evil", "9.9.9", sysext.HostArch().Name)
	if _, stderr, code := run(t, "push", evilOut, addr+"/demo/evil", "--key", filepath.Join(work, "good.key"), "--insecure"); code != 0 {
		t.Fatalf("push evil: %s", stderr)
	}
	fixture.CopySigned(t, addr+"/demo/evil:9.9.9", addr+"/demo/hello:stolen")

	for _, c := range []struct {
		name, key, tag string
		installed      bool
		stderr         string
	}{
		{"trusting the publisher", "good", "1.0.0", true, ""},
		{"trusting another key", "other", "1.0.0", false, "no valid signature"},
		{"another extension's signed index under the name", "good", "stolen", false, `is extension "evil", not "hello"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			for _, d := range []string{"etc/bakery", "usr/lib", "var/lib/extensions"} {
				os.MkdirAll(filepath.Join(root, d), 0o755)
			}
			os.WriteFile(filepath.Join(root, "etc/os-release"), []byte("ID=flatcar\nSYSEXT_LEVEL=1.0\n"), 0o644)
			pub, _ := os.ReadFile(filepath.Join(work, c.key+".pub"))
			os.WriteFile(filepath.Join(root, "etc/bakery/trusted.pub"), pub, 0o644)
			os.WriteFile(filepath.Join(root, "etc/bakery/sync.yaml"), []byte(fmt.Sprintf(
				"registry: %s/demo\ninsecure: true\nkeys: [/etc/bakery/trusted.pub]\npolicy: {require-signature: true}\nextensions:\n  - name: hello\n    tag: %s\n", addr, c.tag)), 0o644)
			script := `"$0" sync --root "$1"; echo "sync exit $?"; "$0" status --root "$1" --json; cat "$1/usr/share/hello/greeting.txt" 2>/dev/null; "$0" unmerge --root "$1" >/dev/null 2>&1; true`
			cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script, bakeryBin, root)
			cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+t.TempDir())
			outb, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v\n%s", err, outb)
			}
			got := string(outb)
			if !strings.Contains(got, c.stderr) {
				t.Errorf("sync output does not say %q:\n%s", c.stderr, got)
			}
			installed, _ := os.ReadFile(filepath.Join(root, "var/lib/extensions/hello.raw"))
			state, _ := os.ReadFile(filepath.Join(root, "var/lib/bakery/state.json"))
			if !c.installed {
				if !strings.Contains(got, "sync exit 1") || installed != nil || strings.Contains(got, "Hello from") || strings.Contains(string(state), "9.9.9") {
					t.Errorf("a refused image was installed, merged or recorded:\n%s\nstate: %s", got, state)
				}
				return
			}
			isum := sha256.Sum256(installed)
			if hex.EncodeToString(isum[:]) != want {
				t.Errorf("installed image sha256 %x, want the pushed x86-64 image %s", isum, want)
			}
			if !strings.Contains(string(state), want) {
				t.Errorf("state.json does not record the verified digest %s:\n%s", want, state)
			}
			if !strings.Contains(got, "sync exit 0") || !strings.Contains(got, "Hello from the hello system extension!") {
				t.Errorf("sync did not install and merge hello:\n%s", got)
			}
			start := strings.Index(got, "[")
			var status []map[string]any
			if start < 0 || json.NewDecoder(strings.NewReader(got[start:])).Decode(&status) != nil || !strings.Contains(fmt.Sprint(status), "hello") {
				t.Errorf("status --json does not show hello merged:\n%s", got)
			}
		})
	}
}
