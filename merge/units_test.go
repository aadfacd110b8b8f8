package merge

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestUnits checks the shipped systemd units with systemd-analyze verify.
// The units run /usr/bin/bakery, which is not installed here, so the check
// runs on copies that run this test binary instead.
func TestUnits(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("needs systemd-analyze")
	}
	src := filepath.Join(repoRoot(t), "units")
	dir := t.TempDir()
	units := []string{"bakery-merge.service", "bakery-sync.service", "bakery-sync.timer"}
	var paths []string
	for _, u := range units {
		data, err := os.ReadFile(filepath.Join(src, u))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(u, ".service") && !strings.Contains(string(data), "ExecStart=/usr/bin/bakery ") {
			t.Errorf("%s does not run /usr/bin/bakery", u)
		}
		text := strings.ReplaceAll(string(data), "/usr/bin/bakery", os.Args[0])
		p := filepath.Join(dir, u)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	out, err := exec.Command("systemd-analyze", append([]string{"verify"}, paths...)...).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	merge, _ := os.ReadFile(filepath.Join(src, "bakery-merge.service"))
	if !strings.Contains(string(merge), "Conflicts=systemd-sysext.service") {
		t.Error("bakery-merge.service must conflict with systemd-sysext.service")
	}
}
