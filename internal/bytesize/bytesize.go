// Package bytesize reads and writes byte counts with binary units
// ("512MiB", "8GiB"), for flags and messages.
package bytesize

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// sizeUnits are the suffixes Parse accepts, largest first.
var sizeUnits = []struct {
	suffix string
	bytes  int64
}{
	{"TiB", 1 << 40},
	{"GiB", 1 << 30},
	{"MiB", 1 << 20},
	{"KiB", 1 << 10},
	{"B", 1},
}

// Parse reads a positive byte count written as a whole number with an
// optional binary unit: "1048576", "512MiB", "8GiB" (B, KiB, MiB, GiB,
// TiB; the unit's case does not matter).
func Parse(s string) (int64, error) {
	num, unit := s, int64(1)
	for _, u := range sizeUnits {
		if len(s) > len(u.suffix) && strings.EqualFold(s[len(s)-len(u.suffix):], u.suffix) {
			num, unit = s[:len(s)-len(u.suffix)], u.bytes
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	switch {
	case err != nil:
		return 0, fmt.Errorf("size %q: want a whole number of bytes, optionally with KiB, MiB, GiB or TiB, such as 512MiB", s)
	case n <= 0:
		return 0, fmt.Errorf("size %q: must be more than 0", s)
	case n > math.MaxInt64/unit:
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n * unit, nil
}

// Format writes n bytes with the largest binary unit that divides it,
// such as "8GiB", so that Parse reads the result back.
func Format(n int64) string {
	for _, u := range sizeUnits {
		if n != 0 && n%u.bytes == 0 {
			return strconv.FormatInt(n/u.bytes, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

// Human writes n bytes rounded for people, with one decimal in the largest
// binary unit below it: "512 B", "1.5 KiB", "3.2 GiB".
func Human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
