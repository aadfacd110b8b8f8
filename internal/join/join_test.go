package join

import "testing"

func TestOr(t *testing.T) {
	for _, tt := range []struct {
		words []string
		want  string
	}{
		{nil, ""},
		{[]string{"a"}, "a"},
		{[]string{"a", "b"}, "a or b"},
		{[]string{"a", "b", "c"}, "a, b or c"},
	} {
		if got := Or(tt.words); got != tt.want {
			t.Errorf("Or(%q) = %q, want %q", tt.words, got, tt.want)
		}
	}
}
