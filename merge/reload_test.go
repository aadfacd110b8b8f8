package merge

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/sysext-bakery/bakery/sysext"
)

// stubManager stands in for systemd's Manager object on a test bus,
// counting the calls to Reload.
type stubManager struct {
	reloads atomic.Int32
	fail    bool
}

// Reload is the D-Bus method org.freedesktop.systemd1.Manager.Reload.
func (m *stubManager) Reload() *dbus.Error {
	m.reloads.Add(1)
	if m.fail {
		return dbus.MakeFailedError(errTestReload)
	}
	return nil
}

var errTestReload = errors.New("reload refused by the stub")

// privateBus starts a private D-Bus daemon (dbus-daemon --session) for the
// test and returns its address; it skips when dbus-daemon is missing.
func privateBus(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("dbus-daemon"); err != nil {
		t.Skip("needs dbus-daemon (Debian package dbus)")
	}
	cmd := exec.Command("dbus-daemon", "--session", "--nofork", "--print-address")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dbus-daemon: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("read dbus-daemon's address: %v", err)
	}
	return strings.TrimSpace(line)
}

// exportManager claims org.freedesktop.systemd1 on the bus at addr and
// exports m as its Manager at /org/freedesktop/systemd1.
func exportManager(t *testing.T, addr string, m *stubManager) {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatalf("connect the stub to %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.Export(m, managerPath, "org.freedesktop.systemd1.Manager"); err != nil {
		t.Fatal(err)
	}
	reply, err := conn.RequestName(managerService, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("claim %s: %v (reply %d)", managerService, err, reply)
	}
}

// TestSystemdReloaderOnABus runs merges, a refresh and an unmerge (over
// the fake mounter) with the real reloader pointed at a private bus on
// which the test exports a stub of systemd's Manager: the stub must be
// called exactly when an extension with EXTENSION_RELOAD_MANAGER=1 is
// merged or taken away. A Reload that fails, and a bus without the
// manager, are reported.
func TestSystemdReloaderOnABus(t *testing.T) {
	addr := privateBus(t)
	stub := &stubManager{}
	exportManager(t, addr, stub)

	root := t.TempDir()
	var log []string
	m := &fakeMounter{root: root, class: sysext.Sysext, log: &log, merges: map[string][]string{}, shown: map[string][]string{},
		trees: map[string]fakeTree{
			"units": classTree(sysext.Sysext, "units", reloadLine, "usr/lib/systemd/system/u.service"),
			"plain": classTree(sysext.Sysext, "plain", "", "usr/bin/plain"),
		}}
	opts := Options{Root: root, Reloader: SystemdReloader{Address: addr}}
	install := func(names ...string) {
		writeFiles(t, root, map[string]string{"etc/os-release": "ID=debian\n"})
		dir := filepath.Join(root, sysext.Sysext.InstallDir)
		os.RemoveAll(dir)
		for _, n := range names {
			mkfile(t, filepath.Join(dir, n+".raw"), "image")
		}
	}
	steps := []struct {
		what    string
		run     func() (bool, error)
		reloads int32
	}{
		{"merge without EXTENSION_RELOAD_MANAGER", func() (bool, error) {
			install("plain")
			res, err := mergeWith(opts, m)
			return res != nil && res.Reloaded, err
		}, 0},
		{"unmerge of it", func() (bool, error) {
			res, err := unmergeWith(opts, m)
			return res != nil && res.Reloaded, err
		}, 0},
		{"merge with EXTENSION_RELOAD_MANAGER=1", func() (bool, error) {
			install("plain", "units")
			res, err := mergeWith(opts, m)
			return res != nil && res.Reloaded, err
		}, 1},
		{"refresh dropping it", func() (bool, error) {
			install("plain")
			res, err := apply(opts, m)
			return res != nil && res.Reloaded, err
		}, 2},
		{"refresh keeping none", func() (bool, error) {
			res, err := apply(opts, m)
			return res != nil && res.Reloaded, err
		}, 2},
		{"merge with it again", func() (bool, error) {
			install("units")
			res, err := apply(opts, m)
			return res != nil && res.Reloaded, err
		}, 3},
		{"unmerge of it", func() (bool, error) {
			res, err := unmergeWith(opts, m)
			return res != nil && res.Reloaded, err
		}, 4},
	}
	for _, s := range steps {
		before := stub.reloads.Load()
		reloaded, err := s.run()
		if err != nil {
			t.Fatalf("%s: %v", s.what, err)
		}
		if got := stub.reloads.Load(); got != s.reloads || reloaded != (got > before) {
			t.Errorf("%s: %d reloads in all (reported %v), want %d", s.what, got, reloaded, s.reloads)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stub.fail = true
	if err := (SystemdReloader{Address: addr}).Reload(ctx); err == nil || !strings.Contains(err.Error(), "reload refused by the stub") {
		t.Errorf("a failing Reload: err = %v", err)
	}
	other := privateBus(t) // no manager on it
	if err := (SystemdReloader{Address: other}).Reload(ctx); err == nil || !strings.Contains(err.Error(), managerService) {
		t.Errorf("a bus without the manager: err = %v", err)
	}
}

// TestReloadKernel merges real images through the kernel with a counting
// reloader, per class: the extension-release of the merge being replaced
// or unmerged is read from the merged tree itself, so that a refresh that
// drops the reloading extension, and an unmerge of it, reload too.
func TestReloadKernel(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	for _, c := range sysext.Classes() {
		t.Run(c.Name, func(t *testing.T) {
			base := t.TempDir()
			root := filepath.Join(base, "root")
			writeFiles(t, root, confHost)
			dir := filepath.Join(root, c.InstallDir)
			files := func(name string) map[string]string {
				return map[string]string{
					c.ReleasePath(name):                       "ID=_any\n" + map[bool]string{true: reloadLine}[name == "units"],
					path.Join(c.Hierarchies[0], name+".data"): name + "\n",
				}
			}
			var log []string
			opts := Options{Root: root, Class: c, Reloader: countingReloader{log: &log}}
			m := kernel{root: root, class: c}
			reloads := func() int { return len(log) }
			steps := []struct {
				what    string
				install []string
				run     func() error
				want    int
			}{
				{"merge with the reloading extension", []string{"units", "plain"}, func() error { _, err := mergeWith(opts, m); return err }, 1},
				{"refresh dropping it", []string{"plain"}, func() error { _, err := apply(opts, m); return err }, 2},
				{"refresh without it", []string{"plain"}, func() error { _, err := apply(opts, m); return err }, 2},
				{"unmerge without it", nil, func() error { _, err := unmergeWith(opts, m); return err }, 2},
				{"merge with it again", []string{"units"}, func() error { _, err := mergeWith(opts, m); return err }, 3},
				{"unmerge of it", nil, func() error { _, err := unmergeWith(opts, m); return err }, 4},
			}
			for _, s := range steps {
				if s.install != nil {
					os.RemoveAll(dir)
					for _, n := range s.install {
						buildImage(t, filepath.Join(dir, n+".raw"), false, false, files(n))
					}
				}
				if err := s.run(); err != nil {
					t.Fatalf("%s: %v", s.what, err)
				}
				if got := reloads(); got != s.want {
					t.Errorf("%s: %d reloads in all, want %d", s.what, got, s.want)
				}
			}
			checkClean(t, base)
		})
	}
}
