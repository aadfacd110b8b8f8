package merge

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
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
