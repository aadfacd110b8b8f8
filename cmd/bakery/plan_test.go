package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sysext-bakery/bakery/internal/fixture"
)

// planJob is one entry of plan --json's matrix.
type planJob struct {
	Recipe       string `json:"recipe"`
	Name         string `json:"name"`
	Version      string `json:"version"`
	Arch         string `json:"arch"`
	OS           string `json:"os"`
	OSVersion    string `json:"osVersion"`
	InputsDigest string `json:"inputsDigest"`
	Skip         bool   `json:"skip"`
}

// plan runs bakery plan --json with args and returns its matrix; the
// document must be a GitHub Actions matrix: an object whose only key is
// include.
func plan(t *testing.T, args ...string) []planJob {
	t.Helper()
	stdout, stderr, code := run(t, append([]string{"plan", "--json", "--epoch", "0"}, args...)...)
	if code != 0 {
		t.Fatalf("plan %s: exit %d\n%s", strings.Join(args, " "), code, stderr)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil || len(doc) != 1 || doc["include"] == nil {
		t.Fatalf("plan --json is not {\"include\": […]}: %v\n%s", err, stdout)
	}
	var jobs []planJob
	if err := json.Unmarshal(doc["include"], &jobs); err != nil {
		t.Fatal(err)
	}
	return jobs
}

// skips lists the skip flag of each job.
func skips(jobs []planJob) []bool {
	var out []bool
	for _, j := range jobs {
		out = append(out, j.Skip)
	}
	return out
}

// writeToolRecipe writes a two-arch recipe of a files tree holding a unit.
func writeToolRecipe(t *testing.T, dir, version, unit string) string {
	t.Helper()
	os.MkdirAll(filepath.Join(dir, "files/usr/lib/systemd/system"), 0o755)
	os.WriteFile(filepath.Join(dir, "files/usr/lib/systemd/system/tool.service"), []byte(unit), 0o644)
	p := filepath.Join(dir, "recipe.yaml")
	os.WriteFile(p, []byte(fmt.Sprintf("name: tool\ndescription: t\nlicense: MIT\nversion: %q\narches: [x86-64, arm64]\nsources:\n  - files: files/\n", version)), 0o644)
	return p
}

// TestPlanSkipsWhatIsPublished bakes and pushes a recipe, then plans it
// against the registry: the published version is skipped, and bake
// --push does nothing again; a changed files/ file or version is not
// skipped. Arches baked apart and pushed together are skipped too.
func TestPlanSkipsWhatIsPublished(t *testing.T) {
	reg := fixture.ServeRegistry(t)
	ns := reg.Host + "/sysext"
	dir := t.TempDir()
	recipe := writeToolRecipe(t, dir, "1.0", "[Service]\nExecStart=/usr/bin/true\n")

	jobs := plan(t, recipe, "--registry", ns)
	if len(jobs) != 2 || jobs[0].Arch != "x86-64" || jobs[1].Arch != "arm64" || jobs[0].Recipe != recipe || jobs[0].Name != "tool" ||
		!strings.HasPrefix(jobs[0].InputsDigest, "sha256:") || jobs[0].InputsDigest == jobs[1].InputsDigest || slices.Contains(skips(jobs), true) {
		t.Fatalf("plan before any push: %+v", jobs)
	}
	key := filepath.Join(t.TempDir(), "bakery")
	if _, stderr, code := run(t, "keygen", "--out", key); code != 0 {
		t.Fatal(stderr)
	}
	stdout, stderr, code := run(t, "bake", recipe, "--registry", ns, "--push", "--key", key+".key", "--out", t.TempDir(), "--epoch", "0", "--json")
	var baked struct {
		Images  []struct{ InputsDigest string }
		Skipped bool
		Push    *struct{ Signature string }
	}
	if err := json.Unmarshal([]byte(stdout), &baked); code != 0 || err != nil || baked.Skipped || baked.Push == nil || baked.Push.Signature == "" || len(baked.Images) != 2 {
		t.Fatalf("bake --push --key: exit %d, %v\n%s\n%s", code, err, stdout, stderr)
	}
	if _, stderr, code := run(t, "verify", ns+"/tool:1.0", "--key", key+".pub"); code != 0 {
		t.Errorf("verify the pushed version: %s", stderr)
	}
	if baked.Images[0].InputsDigest != jobs[0].InputsDigest {
		t.Errorf("bake's inputs digest %s, plan's %s", baked.Images[0].InputsDigest, jobs[0].InputsDigest)
	}
	if got := skips(plan(t, recipe, "--registry", ns)); !slices.Equal(got, []bool{true, true}) {
		t.Errorf("after the push: skip %v, want both", got)
	}

	manifests := reg.ManifestGets.Load()
	stdout, stderr, code = run(t, "bake", recipe, "--registry", ns, "--push", "--out", t.TempDir(), "--epoch", "0", "--json")
	if code != 0 || !strings.Contains(stderr, "nothing to bake or push") || !strings.Contains(stdout, `"skipped": true`) || strings.Contains(stdout, `"push"`) {
		t.Errorf("bake --push of a published version: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if n := reg.ManifestGets.Load() - manifests; n > 2 {
		t.Errorf("the skipped bake read %d manifests; the catalog's should do", n)
	}

	writeToolRecipe(t, dir, "1.0", "[Service]\nExecStart=/usr/bin/false\n")
	if got := skips(plan(t, recipe, "--registry", ns)); !slices.Equal(got, []bool{false, false}) {
		t.Errorf("a changed files/ file: skip %v, want none", got)
	}
	writeToolRecipe(t, dir, "1.1", "[Service]\nExecStart=/usr/bin/true\n")
	if got := skips(plan(t, recipe, "--registry", ns)); !slices.Equal(got, []bool{false, false}) {
		t.Errorf("a new version: skip %v, want none", got)
	}

	// Sharded: each arch baked apart, the output directories pushed together.
	var outs []string
	for _, arch := range []string{"x86-64", "arm64"} {
		out := t.TempDir()
		if _, stderr, code := run(t, "bake", recipe, "--arch", arch, "--out", out, "--epoch", "0"); code != 0 {
			t.Fatalf("bake --arch %s: %s", arch, stderr)
		}
		outs = append(outs, out)
	}
	if _, stderr, code := run(t, append(append([]string{"push"}, outs...), ns+"/tool")...); code != 0 {
		t.Fatalf("push: %s", stderr)
	}
	if got := skips(plan(t, recipe, "--registry", ns)); !slices.Equal(got, []bool{true, true}) {
		t.Errorf("after pushing the shards: skip %v, want both", got)
	}
}

func TestPlanKernelBound(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "files/usr/lib/modules"), 0o755)
	os.WriteFile(filepath.Join(dir, "files/usr/lib/modules/README"), []byte("modules\n"), 0o644)
	kmod := filepath.Join(dir, "recipe.yaml")
	os.WriteFile(kmod, []byte("name: kmod\nversion: \"1\"\narches: [x86-64, arm64]\nrelease: {id: \"{{.OSID}}\", version-id: \"{{.OSVersion}}\"}\nsources:\n  - files: files/\n"), 0o644)
	jobs := plan(t, kmod, "--os", "flatcar", "--os-versions", "4081.2.0,4152.2.0")
	var got []string
	for _, j := range jobs {
		got = append(got, j.Arch+" "+j.OS+" "+j.OSVersion)
	}
	want := []string{"x86-64 flatcar 4081.2.0", "arm64 flatcar 4081.2.0", "x86-64 flatcar 4152.2.0", "arm64 flatcar 4152.2.0"}
	if !slices.Equal(got, want) {
		t.Errorf("jobs %q, want %q", got, want)
	}
	if jobs[0].InputsDigest == jobs[2].InputsDigest {
		t.Error("two OS releases share an inputs digest")
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{kmod}, "kmod is kernel-bound"},
		{[]string{kmod, "--os", "flatcar"}, "--os and --os-versions go together"},
		{[]string{kmod, "--os-versions", "1"}, "--os and --os-versions go together"},
		{[]string{kmod, "--os", "Flatcar", "--os-versions", "1"}, "is not an os-release value"},
		{[]string{kmod, "--registry", "not a registry/x", "--os", "flatcar", "--os-versions", "1"}, "--registry"},
	} {
		if _, stderr, code := run(t, append([]string{"plan"}, c.args...)...); code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("plan %s: exit %d, want 2 saying %q:\n%s", strings.Join(c.args, " "), code, c.want, stderr)
		}
	}
}

// TestBakePushUsage: bake's registry flags are checked before anything
// is fetched or baked.
func TestBakePushUsage(t *testing.T) {
	recipe := writeToolRecipe(t, t.TempDir(), "1.0", "[Service]\n")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--push"}, "--push needs --registry"},
		{[]string{"--registry", "127.0.0.1:1/ns"}, "add --push"},
		{[]string{"--key", "k.pem"}, "with bake --registry HOST/ns --push, --key alone signs the pushed index"},
		{[]string{"--registry", "127.0.0.1:1/ns", "--push", "--arch", "x86-64"}, "--push publishes one index holding every arch"},
		{[]string{"--registry", "127.0.0.1:1/Bad Namespace", "--push"}, "--registry"},
	} {
		out := t.TempDir()
		if _, stderr, code := run(t, append([]string{"bake", recipe, "--out", out}, c.args...)...); code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("bake %s: exit %d, want 2 saying %q:\n%s", strings.Join(c.args, " "), code, c.want, stderr)
		}
		if ents, _ := os.ReadDir(out); len(ents) != 0 {
			t.Errorf("bake %s wrote %d files", strings.Join(c.args, " "), len(ents))
		}
	}
}
