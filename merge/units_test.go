package merge

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sysext-bakery/bakery/sysext"
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
	conflicts := ""
	for _, l := range strings.Split(string(merge), "\n") {
		if v, ok := strings.CutPrefix(l, "Conflicts="); ok {
			conflicts = v
		}
	}
	for _, c := range sysext.Classes() {
		if !slices.Contains(strings.Fields(conflicts), "systemd-"+c.Name+".service") {
			t.Errorf("bakery-merge.service must conflict with systemd-%s.service", c.Name)
		}
		for _, want := range []string{
			"ExecStart=/usr/bin/bakery merge --class " + c.Name + "\n",
			"ExecStop=/usr/bin/bakery unmerge --class " + c.Name + "\n",
			"RequiresMountsFor=", "/" + c.InstallDir,
		} {
			if !strings.Contains(string(merge), want) {
				t.Errorf("bakery-merge.service lacks %q: it must merge every image class in place of systemd-%s", want, c.Name)
			}
		}
		for _, d := range c.SearchDirs {
			if !strings.Contains(string(merge), "ConditionDirectoryNotEmpty=|/"+d+"\n") {
				t.Errorf("bakery-merge.service does not start for images in /%s", d)
			}
		}
	}
}
