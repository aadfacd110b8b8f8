package recipes

import (
	"fmt"

	"github.com/sysext-bakery/bakery/sysext"
)

// defaultArches is what a recipe without arches builds for.
var defaultArches = []string{"x86-64", "arm64"}

// lookupArch finds an architecture by its systemd name in sysext's table;
// given a GOARCH instead, the error tells the systemd spelling.
func lookupArch(name string) (sysext.Arch, error) {
	a, err := sysext.ArchByName(name)
	if err == nil {
		return a, nil
	}
	if g, gerr := sysext.ArchByGoArch(name); gerr == nil {
		return sysext.Arch{}, fmt.Errorf("architecture %q is spelled %q here (systemd ARCHITECTURE names)", name, g.Name)
	}
	return sysext.Arch{}, err
}
