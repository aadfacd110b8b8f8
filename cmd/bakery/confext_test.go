package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfextPublishing bakes the sample confext, inspects it, publishes
// it signed and pulls it back as a user would: it is a confext all the way,
// with its own media types, and a pull asking for a sysext refuses it.
func TestConfextPublishing(t *testing.T) {
	out := t.TempDir()
	if _, stderr, code := run(t, "bake", "../../testdata/hello-conf", "--out", out, "--epoch", "0"); code != 0 {
		t.Fatalf("bake: %s", stderr)
	}
	img := filepath.Join(out, "hello-conf-1.0.0-x86-64.raw")
	stdout, stderr, code := run(t, "image", "inspect", img, "--json")
	var info struct {
		Class   string
		Release map[string]string `json:"extensionRelease"`
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &info) != nil || info.Class != "confext" || info.Release["CONFEXT_LEVEL"] != "1.0" || info.Release["CONFEXT_ID"] != "hello-conf" {
		t.Fatalf("inspect: %d %s %s", code, stdout, stderr)
	}
	keys := t.TempDir()
	run(t, "keygen", "--out", filepath.Join(keys, "k"))
	addr := serveRegistry(t)
	ref := addr + "/sysext/hello-conf"
	if _, stderr, code := run(t, "push", out, ref, "--key", filepath.Join(keys, "k.key"), "--insecure"); code != 0 {
		t.Fatalf("push: %s", stderr)
	}
	stdout, stderr, code = run(t, "pull", ref+":1.0.0", "--arch", "x86-64", "--key", filepath.Join(keys, "k.pub"), "--out", t.TempDir(), "--insecure", "--json")
	if code != 0 || !strings.Contains(stdout, `"class": "confext"`) {
		t.Fatalf("pull: %d %s %s", code, stdout, stderr)
	}
	if _, stderr, code := run(t, "pull", ref+":1.0.0", "--arch", "x86-64", "--class", "sysext", "--out", t.TempDir(), "--insecure"); code != 1 || !strings.Contains(stderr, "is a confext, not a sysext") {
		t.Errorf("pull --class sysext of a confext: %d %s", code, stderr)
	}
	stdout, _, _ = run(t, "catalog", addr+"/sysext", "--insecure", "--json", "--key", filepath.Join(keys, "k.pub"))
	if !strings.Contains(stdout, `"class": "confext"`) {
		t.Errorf("the catalog does not say hello-conf is a confext:\n%s", stdout)
	}
}
