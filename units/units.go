// Package units holds bakery's systemd units, as `make install` installs
// them and as bakery's own system extension (bakery image self) carries
// them.
package units

import "embed"

// FS holds the unit files by name.
//
//go:embed *.service *.timer
var FS embed.FS

// InExtension are the units bakery's own system extension carries: sync
// and its timer. Not bakery-merge.service: it takes the place of
// systemd-sysext.service at boot, which an extension that systemd-sysext
// itself merges cannot do.
var InExtension = []string{"bakery-sync.service", "bakery-sync.timer"}

// SyncTimer is the timer that runs bakery sync regularly.
const SyncTimer = "bakery-sync.timer"
