package merge

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/sysext-bakery/bakery/sysext"
)

// Reloader asks the service manager to reload its units: what systemd-sysext
// does after a merge that adds or removes an extension with
// EXTENSION_RELOAD_MANAGER=1, so that the units the extension brings or
// took away are seen.
type Reloader interface {
	Reload(ctx context.Context) error
}

// The service manager on D-Bus: systemd's Manager.Reload, as
// `systemctl daemon-reload` calls it.
const (
	managerService = "org.freedesktop.systemd1"
	managerPath    = "/org/freedesktop/systemd1"
	managerReload  = "org.freedesktop.systemd1.Manager.Reload"
)

// reloadTimeout bounds the wait for the service manager's reply: a reload
// of many units takes seconds; one that takes longer is reported failed.
const reloadTimeout = 2 * time.Minute

// SystemdReloader reloads systemd over D-Bus: the method Reload of
// org.freedesktop.systemd1.Manager at /org/freedesktop/systemd1, on the
// system bus, or on the bus at Address.
type SystemdReloader struct {
	// Address is the D-Bus address to call, e.g.
	// "unix:path=/run/dbus/system_bus_socket"; "" is the system bus.
	Address string
}

// Reload implements Reloader: it returns once systemd has reloaded.
func (r SystemdReloader) Reload(ctx context.Context) error {
	var conn *dbus.Conn
	var err error
	if r.Address == "" {
		conn, err = dbus.ConnectSystemBus(dbus.WithContext(ctx))
	} else {
		conn, err = dbus.Connect(r.Address, dbus.WithContext(ctx))
	}
	if err != nil {
		return fmt.Errorf("reload the service manager: connect to D-Bus: %w", err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, reloadTimeout)
	defer cancel()
	if err := conn.Object(managerService, managerPath).CallWithContext(ctx, managerReload, 0).Err; err != nil {
		return fmt.Errorf("reload the service manager (%s on %s): %w", managerReload, managerService, err)
	}
	return nil
}

// wantsReload tells whether one of exts asks for EXTENSION_RELOAD_MANAGER.
func wantsReload(exts []Extension, c sysext.Class) bool {
	for _, e := range exts {
		if e.Release.Extension(c).ReloadManager {
			return true
		}
	}
	return false
}

// mergedWantsReload tells whether the merge on the root (of class c, as m
// sees it) holds an extension with EXTENSION_RELOAD_MANAGER, reading
// their extension-release from the merged tree, where it is visible, as
// systemd's need_reload() does. An extension whose extension-release
// cannot be read there is passed over, as systemd does. Without a
// reloader r there is nothing to ask, and nothing is read.
func mergedWantsReload(r Reloader, root string, c sysext.Class, m mounter) (bool, error) {
	if r == nil {
		return false, nil
	}
	fsys := os.DirFS(root)
	for _, h := range c.Hierarchies {
		names, _, err := m.merged(h)
		if err != nil {
			return false, err
		}
		for _, n := range names {
			rel, _, err := c.ReadExtensionRelease(fsys, n)
			if err == nil && rel.Extension(c).ReloadManager {
				return true, nil
			}
		}
	}
	return false, nil
}

// reload asks r to reload when asked and r is set; it tells whether it did.
func reload(r Reloader, asked bool) (bool, error) {
	if r == nil || !asked {
		return false, nil
	}
	if err := r.Reload(context.Background()); err != nil {
		return false, err
	}
	return true, nil
}

// isRoot tells whether root is the running system's root, the only one
// with a service manager to reload.
func isRoot(root string) bool { return filepath.Clean(root) == "/" }
