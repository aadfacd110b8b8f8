package clip

import (
	"strings"
	"testing"
)

func TestQuote(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"short", 8, `"short"`},
		{"exactly8", 8, `"exactly8"`},
		{"abcdefghijkl", 8, `"abcd...ijkl"`},
		{"\x1b[2J" + strings.Repeat("x", 100) + "\n", 8, `"\x1b[2J...xxx\n"`},
	} {
		if got := Quote(tc.in, tc.max); got != tc.want {
			t.Errorf("Quote(%q, %d) = %s, want %s", tc.in, tc.max, got, tc.want)
		}
	}
}
