package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestMergeCommands(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "usr/lib"), 0o755)
	os.WriteFile(filepath.Join(root, "usr/lib/os-release"), []byte("ID=debian\n"), 0o644)
	os.MkdirAll(filepath.Join(root, "var/lib/extensions"), 0o755)
	os.WriteFile(filepath.Join(root, "var/lib/extensions/app.raw"), []byte("image"), 0o644)
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	badClass := filepath.Join(t.TempDir(), "sync.yaml")
	os.WriteFile(badClass, []byte("registry: r\nextensions: [{name: a, class: portable}]\n"), 0o644)
	cfg := filepath.Join(t.TempDir(), "sync.yaml")
	os.WriteFile(cfg, []byte("registry: 127.0.0.1:1/ns\ninsecure: true\nextensions: []\n"), 0o644)
	requiring := filepath.Join(t.TempDir(), "sync.yaml")
	os.WriteFile(requiring, []byte("registry: r\nkeys: [/k.pub]\npolicy: {require-signature: true}\n"), 0o644)
	relative := filepath.Join(t.TempDir(), "sync.yaml")
	os.WriteFile(relative, []byte("registry: r\nkeys: [k.pub]\n"), 0o644)
	missingKey := filepath.Join(t.TempDir(), "sync.yaml")
	os.WriteFile(missingKey, []byte("registry: r\nkeys: [/etc/bakery/none.pub]\nextensions: [{name: a}]\n"), 0o644)
	bad := filepath.Join(t.TempDir(), "sync.yaml")
	os.WriteFile(bad, []byte("registry: r\nextensions: [{name: a, tag: x, digest: sha256:1}]\n"), 0o644)
	cases := []struct {
		name   string
		args   []string
		code   int
		stdout string // substring of stdout
		stderr string // substring of stderr
	}{
		{"merge takes no arguments", []string{"merge", "x"}, 2, "", "no arguments"},
		{"unknown flag", []string{"status", "--bogus"}, 2, "", "bogus"},
		{"status json", []string{"status", "--root", root, "--json"}, 0, `"extensions": "none"`, ""},
		{"status human", []string{"status", "--root", root}, 0, "HIERARCHY EXTENSIONS SINCE", ""},
		{"list json", []string{"list", "--root", root, "--json"}, 0, `"type": "raw"`, ""},
		{"list human", []string{"list", "--root", root}, 0, "app  raw", ""},
		{"merge where every image is refused", []string{"merge", "--root", root}, 1, "", "every one refused"},
		{"merge json where every image is refused", []string{"merge", "--root", root, "--json"}, 1, `"refused"`, "every one refused"},
		{"merge with the policy of a given config", []string{"merge", "--root", root, "--config", requiring}, 1, "", "not verified"},
		{"sync with nothing to do", []string{"sync", "--root", root, "--config", cfg, "--no-refresh", "--json"}, 0, `"installed": []`, ""},
		{"sync with a bad config", []string{"sync", "--root", root, "--config", bad}, 1, "", "not both"},
		{"sync without a config", []string{"sync", "--root", root}, 1, "", "sync.yaml"},
		{"sync with a relative key path", []string{"sync", "--root", root, "--config", relative}, 1, "", `keys[0] "k.pub": give an absolute path`},
		{"sync with a missing key", []string{"sync", "--root", root, "--config", missingKey}, 1, "", "keys[0] /etc/bakery/none.pub (read as " + root + "/etc/bakery/none.pub under --root)"},
		{"an unknown class is a usage error", []string{"merge", "--class", "portable", "--root", root}, 2, "", `--class: unknown image class "portable": use sysext or confext`},
		{"status of an unknown class", []string{"status", "--class", "Confext"}, 2, "", "unknown image class"},
		{"status confext json", []string{"status", "--root", root, "--class", "confext", "--json"}, 0, `"hierarchy": "/etc"`, ""},
		{"status sysext", []string{"status", "--root", root, "--json"}, 0, `"hierarchy": "/usr"`, ""},
		{"list confext finds no sysext", []string{"list", "--root", root, "--class", "confext"}, 0, "", "No configuration extensions found."},
		{"merge confext with nothing to merge", []string{"merge", "--root", root, "--class", "confext", "--json"}, 0, `"class": "confext"`, ""},
		{"unmerge json", []string{"unmerge", "--root", root, "--class", "confext", "--no-reload", "--json"}, 0, `"reloaded": false`, ""},
		{"sync with an unknown class", []string{"sync", "--root", root, "--config", badClass}, 1, "", `extension a: class: unknown image class "portable"`},
		{"rollback without history", []string{"sync", "--root", root, "--rollback", "app"}, 1, "", "no previous image"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stdout, stderr, code := run(t, c.args...)
			if code != c.code || !strings.Contains(stdout, c.stdout) || !strings.Contains(stderr, c.stderr) {
				t.Errorf("bakery %q: exit %d, stdout %q, stderr %q; want exit %d with %q / %q", c.args, code, stdout, stderr, c.code, c.stdout, c.stderr)
			}
			if strings.Contains(strings.Join(c.args, " "), "--json") && code == 0 {
				var v any
				if err := json.Unmarshal([]byte(stdout), &v); err != nil {
					t.Errorf("stdout is not one JSON document: %v", err)
				}
			}
		})
	}
}

// TestMergeCommandsKernel merges, shows status and unmerges through the
// CLI, in a private mount namespace.
func TestMergeCommandsKernel(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, tool := range []string{"unshare", "mksquashfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
	root, src := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(root, "usr/lib"), 0o755)
	os.WriteFile(filepath.Join(root, "usr/lib/os-release"), []byte("ID=debian\n"), 0o644)
	os.MkdirAll(filepath.Join(root, "var/lib/extensions"), 0o755)
	os.MkdirAll(filepath.Join(src, "usr/lib/extension-release.d"), 0o755)
	os.WriteFile(filepath.Join(src, "usr/lib/extension-release.d/extension-release.app"), []byte("ID=_any\n"), 0o644)
	if out, err := exec.Command("mksquashfs", src, filepath.Join(root, "var/lib/extensions/app.raw"), "-all-root", "-noappend", "-quiet", "-no-progress").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v\n%s", err, out)
	}
	conf := t.TempDir()
	os.MkdirAll(filepath.Join(conf, "etc/extension-release.d"), 0o755)
	os.WriteFile(filepath.Join(conf, "etc/extension-release.d/extension-release.cfg"), []byte("ID=_any\n"), 0o644)
	os.WriteFile(filepath.Join(conf, "etc/cfg.conf"), []byte("from the confext\n"), 0o644)
	os.MkdirAll(filepath.Join(root, "var/lib/confexts"), 0o755)
	if out, err := exec.Command("mksquashfs", conf, filepath.Join(root, "var/lib/confexts/cfg.raw"), "-all-root", "-noappend", "-quiet", "-no-progress").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v\n%s", err, out)
	}
	script := `set -e
"$1" merge --root "$2"
"$1" status --root "$2" --json
"$1" merge --root "$2" && exit 9 || true
"$1" merge --root "$2" --class confext
"$1" status --root "$2" --class confext --json
cat "$2/etc/cfg.conf"
"$1" unmerge --root "$2" --class confext --json
"$1" unmerge --root "$2" --json`
	out, err := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", bakeryBin, root).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"Merged into /usr: app", `"app"`, "already merged", `"unmerged": [`,
		"Merged into /etc: cfg", `"hierarchy": "/etc"`, "from the confext", `"/etc"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
