package bakery

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"

	"github.com/sysext-bakery/bakery/internal/atomicfile"
)

// ParseChecksums reads a SHA256SUMS file (`HEX  NAME` or `HEX *NAME` per line).
func ParseChecksums(data []byte) (map[string]string, error) {
	sums := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		sum, name, ok := strings.Cut(line, " ")
		name = strings.TrimPrefix(strings.TrimPrefix(name, " "), "*")
		if !ok || !isSHA256Hex(sum) || name == "" {
			return nil, fmt.Errorf("line %d: want \"<sha256>  <file name>\", got %q", n, line)
		}
		sums[name] = sum
	}
	return sums, sc.Err()
}

// RenderChecksums writes sums in sha256sum's format, sorted by name.
func RenderChecksums(sums map[string]string) []byte {
	names := make([]string, 0, len(sums))
	for n := range sums {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	for _, n := range names {
		fmt.Fprintf(&b, "%s  %s\n", sums[n], n)
	}
	return b.Bytes()
}

// UpdateChecksums atomically sets the entries of sums in the SHA256SUMS
// file at p, keeping its other entries.
func UpdateChecksums(p string, sums map[string]string) error {
	all := map[string]string{}
	data, err := os.ReadFile(p)
	switch {
	case err == nil:
		if all, err = ParseChecksums(data); err != nil {
			return fmt.Errorf("%s: %w; move the file away to start a new one", p, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	for n, s := range sums {
		all[n] = s
	}
	return atomicfile.WriteFile(p, RenderChecksums(all), 0o644)
}
