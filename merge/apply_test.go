package merge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/sysext-bakery/bakery/sysext"
)

// fakeMounter is the kernel's stand-in for apply's phases: it opens
// images from memory, "builds" a merge by noting which extensions have
// content in a hierarchy, and "swaps it in" by copying their files under
// that hierarchy into the root (so that the merged extension-release
// files are visible there, as through an overlay) and noting the marker.
// Every call is logged, in order, with the reloader's.
type fakeMounter struct {
	root  string
	class sysext.Class
	trees map[string]fakeTree
	log   *[]string
	// merges are the marker lists of the merged hierarchies; shown, the
	// files each merge copied into the root.
	merges map[string][]string
	shown  map[string][]string
}

// fakeMerge is a merge built aside.
type fakeMerge struct {
	exts []Extension // with content in the hierarchy, lowest first
	all  []string
}

func (fakeMerge) Close() error { return nil }

func (f *fakeMounter) logf(format string, args ...any) {
	*f.log = append(*f.log, fmt.Sprintf(format, args...))
}

func (f *fakeMounter) Open(img Image, policy Policy) (Tree, string, error) {
	f.logf("open %s", img.Name)
	t, ok := f.trees[img.Name]
	if !ok {
		return nil, "", errors.New("not a squashfs or erofs image (no known superblock magic)")
	}
	return t, "", nil
}

func (f *fakeMounter) merged(h string) ([]string, bool, error) {
	names, ok := f.merges[h]
	return names, ok, nil
}

func (f *fakeMounter) build(h string, exts []Extension, all []string) (io.Closer, []string, error) {
	var in []Extension
	var names []string
	for i := len(exts) - 1; i >= 0; i-- {
		if entries, err := fs.ReadDir(exts[i].Tree, h); err == nil && len(entries) > 0 {
			in = append([]Extension{exts[i]}, in...)
			names = append(names, exts[i].Name)
		}
	}
	f.logf("build %s %s", h, strings.Join(names, ","))
	if len(in) == 0 {
		return nil, nil, nil
	}
	return fakeMerge{exts: in, all: all}, names, nil
}

func (f *fakeMounter) swapIn(h string, b io.Closer) error {
	m := b.(fakeMerge)
	f.logf("swap %s %s", h, strings.Join(m.all, ","))
	f.hide(h)
	for _, e := range m.exts {
		err := fs.WalkDir(e.Tree, h, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := fs.ReadFile(e.Tree, p)
			if err != nil {
				return err
			}
			dst := filepath.Join(f.root, p)
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			f.shown[h] = append(f.shown[h], dst)
			return os.WriteFile(dst, data, 0o644)
		})
		if err != nil {
			return err
		}
	}
	f.merges[h] = m.all
	return nil
}

func (f *fakeMounter) unmerge(h string) error {
	if _, ok := f.merges[h]; ok {
		f.logf("unmerge %s", h)
	}
	f.hide(h)
	delete(f.merges, h)
	return nil
}

// hide removes the files a merge of h copied into the root.
func (f *fakeMounter) hide(h string) {
	for _, p := range f.shown[h] {
		os.Remove(p)
	}
	delete(f.shown, h)
}

// countingReloader counts reloads and logs them beside the mounter's calls.
type countingReloader struct {
	log *[]string
	err error
}

func (r countingReloader) Reload(context.Context) error {
	*r.log = append(*r.log, "reload")
	return r.err
}

// classTree is an image of class c called name: its extension-release
// (ID=_any, plus extra lines) and files.
func classTree(c sysext.Class, name, extra string, files ...string) fakeTree {
	m := fstest.MapFS{c.ReleasePath(name): file("ID=_any\n" + extra)}
	for _, f := range files {
		m[f] = file(f)
	}
	return fakeTree{MapFS: m}
}

const reloadLine = "EXTENSION_RELOAD_MANAGER=1\n"

// TestApplyPhases drives merge, refresh and unmerge over the fake mounter,
// without root: the phases must run in order (host and images read and
// checked before anything is opened, every merge built before any is
// swapped in, the reload last), each class must touch only its own
// hierarchies, and the service manager must be reloaded exactly when an
// extension with EXTENSION_RELOAD_MANAGER=1 is merged or taken away.
func TestApplyPhases(t *testing.T) {
	sys, conf := sysext.Sysext, sysext.Confext
	trees := map[string]fakeTree{
		"app":    classTree(sys, "app", "", "usr/bin/app"),
		"units":  classTree(sys, "units", reloadLine, "usr/lib/systemd/system/u.service", "opt/units/x"),
		"tool":   classTree(sys, "tool", "", "opt/tool/bin/tool"),
		"cfg":    classTree(conf, "cfg", "", "etc/cfg.conf"),
		"cfgrel": classTree(conf, "cfgrel", reloadLine, "etc/systemd/system/c.service"),
		"wrong":  classTree(sys, "wrong", "", "usr/bin/wrong"), // a sysext in a confext directory
	}
	type step struct {
		do      string   // merge, refresh, unmerge
		install []string // the images installed before the step, by class dir
		noHost  bool     // without a host os-release
		log     []string
		reload  bool
		errText string
	}
	tests := []struct {
		name  string
		class sysext.Class
		steps []step
	}{
		{"sysext without reload", sys, []step{
			{do: "merge", install: []string{"app", "tool"}, log: []string{
				"open app", "open tool", "build usr tool,app", "build opt tool", "swap usr app,tool", "swap opt app,tool"}},
			{do: "unmerge", log: []string{"unmerge usr", "unmerge opt"}},
		}},
		{"sysext with EXTENSION_RELOAD_MANAGER", sys, []step{
			{do: "merge", install: []string{"app", "units"}, reload: true, log: []string{
				"open app", "open units", "build usr units,app", "build opt units", "swap usr app,units", "swap opt app,units", "reload"}},
			{do: "unmerge", reload: true, log: []string{"unmerge usr", "unmerge opt", "reload"}},
		}},
		{"refresh dropping the reloading extension", sys, []step{
			{do: "merge", install: []string{"units"}, reload: true, log: []string{
				"open units", "build usr units", "build opt units", "swap usr units", "swap opt units", "reload"}},
			{do: "refresh", install: []string{"app"}, reload: true, log: []string{
				"open app", "build usr app", "build opt ", "swap usr app", "unmerge opt", "reload"}},
			{do: "refresh", install: []string{"app"}, log: []string{
				"open app", "build usr app", "build opt ", "swap usr app"}},
			{do: "refresh", log: []string{"build usr ", "build opt ", "unmerge usr"}},
		}},
		{"refresh to nothing after a reloading extension", sys, []step{
			{do: "merge", install: []string{"units"}, reload: true, log: []string{
				"open units", "build usr units", "build opt units", "swap usr units", "swap opt units", "reload"}},
			{do: "refresh", reload: true, log: []string{"build usr ", "build opt ", "unmerge usr", "unmerge opt", "reload"}},
		}},
		{"a failing refresh touches nothing", sys, []step{
			{do: "merge", install: []string{"units"}, reload: true, log: []string{
				"open units", "build usr units", "build opt units", "swap usr units", "swap opt units", "reload"}},
			{do: "refresh", install: []string{"app"}, noHost: true, errText: "no host os-release"},
			{do: "merge", install: []string{"app"}, errText: "/usr: already merged"},
		}},
		{"confext", conf, []step{
			{do: "merge", install: []string{"cfg", "wrong"}, log: []string{"open cfg", "open wrong", "build etc cfg", "swap etc cfg"}},
			{do: "refresh", install: []string{"cfg", "cfgrel"}, reload: true, log: []string{
				"open cfg", "open cfgrel", "build etc cfgrel,cfg", "swap etc cfg,cfgrel", "reload"}},
			{do: "unmerge", reload: true, log: []string{"unmerge etc", "reload"}},
			{do: "unmerge"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			var log []string
			m := &fakeMounter{root: root, class: tt.class, trees: trees, log: &log, merges: map[string][]string{}, shown: map[string][]string{}}
			opts := Options{Root: root, Class: tt.class, Reloader: countingReloader{log: &log}}
			dir := filepath.Join(root, tt.class.InstallDir)
			for i, s := range tt.steps {
				os.RemoveAll(dir)
				writeFiles(t, root, map[string]string{"etc/os-release": "ID=debian\nVERSION_ID=12\n"})
				if s.noHost {
					os.Remove(filepath.Join(root, "etc/os-release"))
				}
				for _, n := range s.install {
					mkfile(t, filepath.Join(dir, n+".raw"), "image")
				}
				log = nil
				var reloaded bool
				var err error
				switch s.do {
				case "merge":
					var res *Result
					if res, err = mergeWith(opts, m); err == nil {
						reloaded = res.Reloaded
						if tt.class.Name == conf.Name {
							checkRefused(t, res.Refused, []string{"wrong: no /" + path.Join(conf.ReleaseDir, "extension-release.wrong")})
						}
					}
				case "refresh":
					var res *Result
					if res, err = apply(opts, m); err == nil {
						reloaded = res.Reloaded
					}
				case "unmerge":
					var res *UnmergeResult
					if res, err = unmergeWith(opts, m); err == nil {
						reloaded = res.Reloaded
					}
				}
				if s.errText != "" {
					if err == nil || !strings.Contains(err.Error(), s.errText) {
						t.Errorf("step %d (%s): err = %v, want %q", i, s.do, err, s.errText)
					}
				} else if err != nil {
					t.Fatalf("step %d (%s): %v", i, s.do, err)
				}
				if !slices.Equal(log, s.log) {
					t.Errorf("step %d (%s): calls\n  %q\nwant\n  %q", i, s.do, log, s.log)
				}
				if reloaded != s.reload {
					t.Errorf("step %d (%s): reloaded = %v, want %v", i, s.do, reloaded, s.reload)
				}
			}
		})
	}
}

// TestApplyReloadFailure: a reload that fails is reported after the
// merge, which stays in place.
func TestApplyReloadFailure(t *testing.T) {
	root := t.TempDir()
	var log []string
	m := &fakeMounter{root: root, class: sysext.Sysext, trees: map[string]fakeTree{"units": classTree(sysext.Sysext, "units", reloadLine, "usr/bin/u")},
		log: &log, merges: map[string][]string{}, shown: map[string][]string{}}
	writeFiles(t, root, map[string]string{"etc/os-release": "ID=debian\n", "var/lib/extensions/units.raw": "image"})
	res, err := apply(Options{Root: root, Reloader: countingReloader{log: &log, err: errors.New("no bus")}}, m)
	if err == nil || !strings.Contains(err.Error(), "no bus") || res == nil || res.Reloaded || !slices.Equal(res.Extensions, []string{"units"}) {
		t.Errorf("apply = %+v, %v; want units merged and the reload error", res, err)
	}
	if _, ok := m.merges["usr"]; !ok {
		t.Error("the merge was not kept after a failed reload")
	}
}

// TestOfflineRootNeverReloads: with a root other than /, Options.kernel
// drops the reloader, as systemd-sysext --root does.
func TestOfflineRootNeverReloads(t *testing.T) {
	r := countingReloader{log: new([]string)}
	for _, tt := range []struct {
		root   string
		reload bool
	}{{"", true}, {"/", true}, {"//", true}, {"/mnt/node", false}, {"node", false}} {
		opts, _ := Options{Root: tt.root, Reloader: r}.kernel()
		if got := opts.Reloader != nil; got != tt.reload {
			t.Errorf("root %q: reloader kept = %v, want %v", tt.root, got, tt.reload)
		}
	}
}
