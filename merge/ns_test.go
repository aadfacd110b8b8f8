package merge

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// nsEnv marks a test binary re-executed inside a private mount namespace.
const nsEnv = "BAKERY_MERGE_TEST_NS"

// inNamespace makes the calling test run in a private mount namespace: in
// the test process it re-executes the test binary for just this test under
// `unshare -m --propagation private` and returns false (the caller
// returns); in the re-executed child it returns true. Tests that need root,
// loop devices, overlayfs or the given tools skip with the reason.
func inNamespace(t testing.TB, tools ...string) bool {
	t.Helper()
	if os.Getenv(nsEnv) == "1" {
		return true
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root (loop devices and mounts)")
	}
	for _, tool := range append([]string{"unshare", "losetup", "mksquashfs"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skipf("needs loop devices: %v", err)
	}
	name, _, _ := strings.Cut(t.Name(), "/")
	run := "^" + name + "$"
	for _, a := range os.Args[1:] {
		// Keep a subtest filter such as -run 'TestOracle/opt'.
		if pattern, ok := strings.CutPrefix(a, "-test.run="); ok {
			if _, sub, ok := strings.Cut(pattern, "/"); ok {
				run += "/" + sub
			}
		}
	}
	args := []string{"-m", "--propagation", "private", os.Args[0], "-test.run=" + run, "-test.v", "-test.count=1"}
	if _, ok := t.(*testing.B); ok {
		args = append(args[:4], "-test.run=^$", "-test.bench=^"+name+"$", "-test.benchmem")
		for _, a := range os.Args[1:] {
			if strings.HasPrefix(a, "-test.benchtime") {
				args = append(args, a)
			}
		}
	}
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(os.Environ(), nsEnv+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("in a private mount namespace:\n%s", out)
	if err != nil {
		t.Fatalf("test in private mount namespace: %v", err)
	}
	if strings.Contains(string(out), "--- SKIP") && !strings.Contains(string(out), "--- PASS") {
		t.Skip("skipped inside the namespace (see log)")
	}
	return false
}

// repoRoot is the repository's root directory (this file is in merge/).
func repoRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// oraclePath is ../shared/tools/sysext-oracle from the repository root;
// the test is skipped, saying so, when it is missing.
func oraclePath(t *testing.T) string {
	t.Helper()
	p := filepath.Join(repoRoot(t), "..", "shared", "tools", "sysext-oracle")
	if _, err := os.Stat(p); err != nil {
		t.Skip("needs ../shared/tools/sysext-oracle")
	}
	return p
}

// mountsUnder lists the mount points at or below dir.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	f, err := os.Open("/proc/thread-self/mountinfo") // not self: a thread that unshared may be the main one
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			out = append(out, fields[4])
		}
	}
	return out
}

// loopsFor lists the loop devices backed by files below dir.
func loopsFor(t *testing.T, dir string) []string {
	t.Helper()
	out, err := exec.Command("losetup", "-a").Output()
	if err != nil {
		t.Fatalf("losetup -a: %v", err)
	}
	var found []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, dir) {
			found = append(found, l)
		}
	}
	return found
}

// checkClean fails the test if anything is still mounted below dir or a
// loop device still uses a file below it. Auto-clearing loop devices are
// released by the kernel after the last unmount, asynchronously, so this
// polls for a while before failing.
func checkClean(t *testing.T, dir string) {
	t.Helper()
	if m := mountsUnder(t, dir); len(m) > 0 {
		t.Errorf("still mounted: %q", m)
	}
	var loops []string
	for range 100 {
		if loops = loopsFor(t, dir); len(loops) == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("loop devices left behind: %q", loops)
}
