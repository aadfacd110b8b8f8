package recipes

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

// updateReadme rewrites README.md's catalog table instead of comparing it:
// go test ./recipes -run TestReadmeCatalogTable -update-readme
var updateReadme = flag.Bool("update-readme", false, "rewrite README.md's catalog table from the shipped recipes")

// The markers around the generated table in README.md.
const (
	tableStart = "<!-- catalog table: generated from recipes/catalog by go test ./recipes -run TestReadmeCatalogTable -update-readme; do not edit -->\n"
	tableEnd   = "<!-- end of catalog table -->\n"
)

// catalogTable is the Markdown table of the shipped recipes.
func catalogTable(t *testing.T) string {
	var b strings.Builder
	b.WriteString("| name | version | arches | what it holds | license |\n|---|---|---|---|---|\n")
	for _, name := range CatalogNames() {
		r, err := LoadCatalog(name)
		if err != nil {
			t.Fatal(err)
		}
		what := r.Description
		if r.KernelBound() {
			what += " (kernel-bound: `--os`, `--os-version`)"
		}
		fmt.Fprintf(&b, "| [%s](%s) | %s | %s | %s | %s |\n", r.Name, r.Homepage, r.Version, strings.Join(r.Arches, ", "),
			strings.ReplaceAll(what, "|", `\|`), r.License)
	}
	return b.String()
}

// TestReadmeCatalogTable fails when README.md's catalog table differs from
// the one the shipped recipes give, so the two cannot drift apart.
func TestReadmeCatalogTable(t *testing.T) {
	const readme = "../README.md"
	data, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	before, rest, ok1 := strings.Cut(doc, tableStart)
	old, after, ok2 := strings.Cut(rest, tableEnd)
	if !ok1 || !ok2 {
		t.Fatalf("%s lacks the catalog table's markers:\n%s…\n%s", readme, tableStart, tableEnd)
	}
	table := catalogTable(t)
	if old == table {
		return
	}
	if *updateReadme {
		if err := os.WriteFile(readme, []byte(before+tableStart+table+tableEnd+after), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s's catalog table is out of date with recipes/catalog; regenerate it: go test ./recipes -run TestReadmeCatalogTable -update-readme", readme)
}
