// Package sha256sums reads and writes SHA256SUMS files in sha256sum(1)'s
// format, so that `sha256sum -c` checks what bakery wrote.
package sha256sums

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/sysext-bakery/bakery/internal/atomicfile"
)

// Parse reads "HEX  NAME" or "HEX *NAME" lines (blank lines and # comments
// are skipped) into NAME → lower-case hex.
func Parse(data []byte) (map[string]string, error) {
	sums := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sum, name, ok := strings.Cut(line, " ")
		name = strings.TrimPrefix(strings.TrimLeft(name, " "), "*")
		if _, err := hex.DecodeString(sum); err != nil || !ok || len(sum) != 64 || name == "" {
			return nil, fmt.Errorf("line %d: want \"<sha256 hex>  <file name>\", got %q", n, line)
		}
		sums[name] = strings.ToLower(sum)
	}
	return sums, sc.Err()
}

// Render writes sums sorted by name.
func Render(sums map[string]string) []byte {
	var b bytes.Buffer
	for _, n := range slices.Sorted(maps.Keys(sums)) {
		fmt.Fprintf(&b, "%s  %s\n", sums[n], n)
	}
	return b.Bytes()
}

// Update atomically sets the entries of sums in the SHA256SUMS file at p,
// keeping its other entries.
func Update(p string, sums map[string]string) error {
	all := map[string]string{}
	data, err := os.ReadFile(p)
	switch {
	case err == nil:
		if all, err = Parse(data); err != nil {
			return fmt.Errorf("%s: %w; move the file away to start a new one", p, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	for n, s := range sums {
		all[n] = s
	}
	return atomicfile.WriteFile(p, Render(all), 0o644)
}
