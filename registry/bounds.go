package registry

import "github.com/sysext-bakery/bakery/internal/httpbound"

// ErrHostileResponse means a registry answered in a way no honest one
// does: endless redirects or an oversized API response (see package
// internal/httpbound, under every client of this package).
var ErrHostileResponse = httpbound.ErrHostile
