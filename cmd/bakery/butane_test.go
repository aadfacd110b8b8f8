package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sysext-bakery/bakery/sysext"
)

// ignitionBin is Ignition itself as Debian packages it (for dracut).
const ignitionBin = "/usr/lib/dracut/modules.d/30ignition/ignition"

// ignitionFiles applies an Ignition config to the node root as Ignition
// does at first boot, with its file platform (the config read from
// $IGNITION_CONFIG_FILE): the fetch-offline and fetch stages, then files.
// Debian builds Ignition with SELinux relabeling, so the root gets an
// SELinux configuration whose only context says "leave the label" (as a
// Flatcar root has one), for the real setfiles. It returns Ignition's log.
func ignitionFiles(t *testing.T, config, root string) (string, error) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("Ignition's files stage writes as root")
	}
	for _, tool := range []string{ignitionBin, "setfiles", "ignition-validate"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (apt-get install ignition policycoreutils; scripts/setup does)", tool)
		}
	}
	if out, err := exec.Command("ignition-validate", config).CombinedOutput(); err != nil {
		t.Fatalf("ignition-validate refuses the config: %v\n%s", err, out)
	}
	os.MkdirAll(filepath.Join(root, "etc/selinux/bakery-test/contexts/files"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/selinux/config"), []byte("SELINUX=disabled\nSELINUXTYPE=bakery-test\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/selinux/bakery-test/contexts/files/file_contexts"), []byte("/.*\t<<none>>\n"), 0o644)
	run := t.TempDir()
	var log bytes.Buffer
	for _, stage := range []string{"fetch-offline", "fetch", "files"} {
		cmd := exec.Command(ignitionBin, "-platform", "file", "-stage", stage, "-root", root, "-log-to-stdout",
			"-config-cache", filepath.Join(run, "ignition.json"), "-state-file", filepath.Join(run, "state"), "-neednet", filepath.Join(run, "neednet"))
		cmd.Env = append(os.Environ(), "IGNITION_CONFIG_FILE="+config)
		cmd.Stdout, cmd.Stderr = &log, &log
		if err := cmd.Run(); err != nil {
			return log.String(), err
		}
	}
	return log.String(), nil
}

// dropinCommands reads the ExecStartPre= commands of a unit's drop-ins.
func dropinCommands(t *testing.T, dir string) [][]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	re := regexp.MustCompile(`(?m)^ExecStartPre=(.*)$`)
	for _, e := range ents {
		data, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		for _, m := range re.FindAllStringSubmatch(string(data), -1) {
			out = append(out, strings.Fields(m[1]))
		}
	}
	return out
}

// TestButaneRelease: the release flavour end to end. The Ignition config
// bakery butane writes from a signed release on loopback passes
// ignition-validate; Ignition's files stage applies it to an empty node
// root; the node then holds the pinned image, its symlink, the transfer
// definitions and the keyring, and systemd-sysupdate 257, run as the
// drop-in runs it, installs the next version. An image swapped after the
// config was written is refused by Ignition (the sha512 pin).
func TestButaneRelease(t *testing.T) {
	tool := debian13(t)
	arch := sysext.HostArch().Name
	work := t.TempDir()
	if _, stderr, code := run(t, "keygen", "--gpg", "--out", filepath.Join(work, "k")); code != 0 {
		t.Fatalf("keygen: %s", stderr)
	}
	pub := filepath.Join(work, "public")
	serving := atomic.Pointer[string]{}
	serving.Store(&pub)
	base := serveSwitchable(t, &serving)
	rel := func(version string) {
		t.Helper()
		img := sysextImage(t, t.TempDir(), "hello", version, arch)
		if _, stderr, code := run(t, "release", pub, img, "--base-url", base, "--gpg-key", filepath.Join(work, "k.key")); code != 0 {
			t.Fatalf("release: %s", stderr)
		}
	}
	rel("1.0")
	config := filepath.Join(work, "node.ign")
	if _, stderr, code := run(t, "butane", "hello", "--release", base, "--key", filepath.Join(work, "k.pub"), "--ignition", "--out", config); code != 0 {
		t.Fatalf("butane --ignition: %s", stderr)
	}
	butane, stderr, code := run(t, "butane", "hello", "--release", base, "--key", filepath.Join(work, "k.pub"))
	if code != 0 || !strings.Contains(butane, "variant: flatcar") || !strings.Contains(butane, "hash: sha512-") {
		t.Fatalf("butane: %d %s\n%s", code, stderr, butane)
	}
	again, _, _ := run(t, "butane", "hello", "--release", base, "--key", filepath.Join(work, "k.pub"))
	if again != butane {
		t.Error("the same inputs gave two configs")
	}

	root := t.TempDir()
	if log, err := ignitionFiles(t, config, root); err != nil {
		t.Fatalf("Ignition's files stage: %v\n%s", err, log)
	}
	first := "hello-1.0-" + arch + ".raw"
	files, link := installed(t, root, "hello")
	if !slices.Equal(files, []string{first}) || link != "../../opt/extensions/hello/"+first {
		t.Fatalf("after Ignition: installed %v, current %q", files, link)
	}
	got, _ := os.ReadFile(filepath.Join(root, "opt/extensions/hello", first))
	if want, _ := os.ReadFile(filepath.Join(pub, first)); !bytes.Equal(got, want) {
		t.Error("the image Ignition wrote is not the released one")
	}
	ring, _ := os.ReadFile(filepath.Join(root, "etc/systemd/import-pubring.gpg"))
	if want, _ := os.ReadFile(filepath.Join(work, "k.pubring.gpg")); !bytes.Equal(ring, want) {
		t.Error("/etc/systemd/import-pubring.gpg is not the release key's binary keyring")
	}
	if preset, _ := os.ReadFile(filepath.Join(root, "etc/systemd/system-preset/20-ignition.preset")); !strings.Contains(string(preset), "enable systemd-sysupdate.timer") {
		t.Errorf("systemd-sysupdate.timer is not enabled:\n%s", preset)
	}

	// The node updates as its drop-in says, and the noop definitions let
	// the service's own run over /etc/sysupdate.d succeed.
	rel("1.1")
	cmds := dropinCommands(t, filepath.Join(root, "etc/systemd/system/systemd-sysupdate.service.d"))
	if len(cmds) != 1 || cmds[0][0] != "/usr/lib/systemd/systemd-sysupdate" {
		t.Fatalf("drop-in commands %q", cmds)
	}
	if out, err := sysupdate(t, tool, root, cmds[0][1:]...); err != nil {
		t.Fatalf("%q: %v\n%s", cmds[0], err, out)
	}
	files, link = installed(t, root, "hello")
	if next := "hello-1.1-" + arch + ".raw"; !slices.Contains(files, next) || !strings.HasSuffix(link, next) {
		t.Fatalf("after the drop-in's update: installed %v, current %q", files, link)
	}
	if out, err := sysupdate(t, tool, root, "update"); err != nil {
		t.Errorf("systemd-sysupdate update over /etc/sysupdate.d (the service's own run): %v\n%s", err, out)
	}

	// An attacker swaps the image after the config was written.
	evilDir := copyDir(t, pub)
	os.WriteFile(filepath.Join(evilDir, first), evilImage(t, "hello", "1.0", arch), 0o644)
	serving.Store(&evilDir)
	defer serving.Store(&pub)
	if log, err := ignitionFiles(t, config, t.TempDir()); err == nil || !strings.Contains(log, "hash") {
		t.Errorf("Ignition wrote a swapped image (err %v):\n%s", err, log)
	}
}

// TestButaneRegistry: the registry flavour end to end. The Ignition config
// installs bakery's own extension (bakery image self, pinned), sync.yaml
// and the trusted key; on that node root, merged by the real
// systemd-sysext 257 as a stock node merges at boot, the bakery from the
// extension runs `bakery sync --root`, which pulls, verifies, installs and
// merges hello from a registry on loopback, and the timer is enabled.
func TestButaneRegistry(t *testing.T) {
	tool := debian13(t)
	static := staticBakery(t)
	work := t.TempDir()
	if _, stderr, code := run(t, "keygen", "--out", filepath.Join(work, "release")); code != 0 {
		t.Fatalf("keygen: %s", stderr)
	}
	out := filepath.Join(work, "out")
	if _, stderr, code := run(t, "bake", "../../testdata/hello", "--out", out, "--epoch", "0"); code != 0 {
		t.Fatalf("bake: %s", stderr)
	}
	addr := serveRegistry(t)
	if _, stderr, code := run(t, "push", out, addr+"/demo/hello:1.0.0", "--key", filepath.Join(work, "release.key"), "--insecure"); code != 0 {
		t.Fatalf("push: %s", stderr)
	}
	self := filepath.Join(work, "self")
	selfPath, _ := selfImage(t, "--out", self, "--binary", static, "--epoch", "0", "--version", "1.0.0")
	srv := httptest.NewServer(http.FileServer(http.Dir(self)))
	defer srv.Close()
	config := filepath.Join(work, "node.ign")
	args := []string{"butane", "hello:1.0.0", "--registry", addr + "/demo", "--insecure", "--key", filepath.Join(work, "release.pub"),
		"--bakery-image", srv.URL + "/" + filepath.Base(selfPath)}
	if _, stderr, code := run(t, append(args, "--ignition", "--out", config)...); code != 0 {
		t.Fatalf("butane --ignition: %s", stderr)
	}
	root := t.TempDir()
	if log, err := ignitionFiles(t, config, root); err != nil {
		t.Fatalf("Ignition's files stage: %v\n%s", err, log)
	}
	installedSelf, _ := os.ReadFile(filepath.Join(root, "etc/extensions/bakery.raw"))
	if want, _ := os.ReadFile(selfPath); !bytes.Equal(installedSelf, want) {
		t.Fatal("/etc/extensions/bakery.raw is not bakery's image")
	}
	// What a stock node has besides: an OS.
	os.MkdirAll(filepath.Join(root, "usr/lib"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/os-release"), []byte("ID=flatcar\nVERSION_ID=4081.2.0\nSYSEXT_LEVEL=1.0\n"), 0o644)

	// In the Debian 13 root's private mount namespace: systemd-sysext 257
	// merges the node's extensions (bakery) as at boot, systemctl 257 sees
	// the timer enabled, and the bakery from the extension syncs (which
	// refreshes the merge with bakery's own); then everything is unmerged.
	script := `set -e
root=$0
systemd-sysext merge --root="$root" >/dev/null
echo "timer: $(systemctl --root="$root" is-enabled bakery-sync.timer)"
"$root/usr/bin/bakery" sync --root "$root"
cat "$root/usr/share/hello/greeting.txt"
test -x "$root/usr/bin/bakery" && echo "bakery still merged"
"$root/usr/bin/bakery" unmerge --root "$root" --no-reload >/dev/null`
	cmd := exec.Command(tool, "--bind", root, "sh", "-c", script, root)
	outb, err := cmd.CombinedOutput()
	got := string(outb)
	if err != nil {
		t.Fatalf("node: %v\n%s", err, got)
	}
	for _, want := range []string{"timer: enabled", "Installed hello.", "Hello from the hello system extension!", "bakery still merged"} {
		if !strings.Contains(got, want) {
			t.Errorf("node output lacks %q:\n%s", want, got)
		}
	}
	state, _ := os.ReadFile(filepath.Join(root, "var/lib/bakery/state.json"))
	if !strings.Contains(string(state), `"verification"`) {
		t.Errorf("state.json records no verified signature:\n%s", state)
	}
}

// TestButaneUsage: refusals before anything is fetched.
func TestButaneUsage(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no extension", []string{"butane", "--release", "https://example.com/", "--key", "k"}, "extensions to install"},
		{"both flavours", []string{"butane", "x", "--release", "https://example.com/", "--registry", "r/ns", "--key", "k"}, "one of them"},
		{"no key", []string{"butane", "x", "--release", "https://example.com/"}, "--key"},
		{"plain http release", []string{"butane", "x", "--release", "http://example.com/", "--key", "k"}, "plain http"},
		{"insecure remote registry", []string{"butane", "x", "--registry", "example.com/ns", "--insecure", "--key", "k", "--bakery-image", "https://example.com/b.raw"}, "loopback"},
		{"no bakery image", []string{"butane", "x", "--registry", "example.com/ns", "--key", "k"}, "--bakery-image"},
		{"an invalid namespace", []string{"butane", "x", "--registry", "example.com/Bad NS", "--key", "k", "--bakery-image", "https://example.com/b.raw"}, "--registry"},
		{"help has examples", []string{"butane", "--help"}, "Examples:"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stdout, stderr, code := run(t, c.args...)
			want := 2
			if c.name == "help has examples" {
				want = 0
			}
			if code != want || !strings.Contains(stdout+stderr, c.want) {
				t.Errorf("exit %d, want %d, output lacks %q:\n%s%s", code, want, c.want, stdout, stderr)
			}
		})
	}
}
