package lint

import (
	"testing"

	"github.com/sysext-bakery/bakery/recipes"
)

// TestCatalogLints lints every recipe of the shipped catalog (make test
// runs it): each must parse, expand for all its arches, fetch over https
// only, say what it holds and under which license, and ship units when it
// reloads the service manager.
func TestCatalogLints(t *testing.T) {
	reports := Catalog()
	if len(reports) != len(recipes.CatalogNames()) {
		t.Fatalf("%d reports for %d catalog recipes", len(reports), len(recipes.CatalogNames()))
	}
	for _, rep := range reports {
		t.Run(rep.Name, func(t *testing.T) {
			for _, p := range rep.Problems {
				t.Error(p)
			}
		})
	}
}
