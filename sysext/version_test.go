package sysext

import "testing"

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"b9", "b10", -1},
		{"a", "b", -1},
		{"foo", "foo", 0},
		{"1.0", "1.0.1", -1},
		{"1.0~rc1", "1.0", -1},
		{"1.0", "1.0^patch", -1},
		{"1.0-1", "1.0.1", -1},
		{"007", "7", 0},
		{"1a", "1", 1},
		{"abc", "abcde", -1},
		{"", "a", -1},
		{"kubernetes", "kubernetes-v1.32", -1},
		{"v1.9", "v1.10", -1},
		{"x_1", "x_2", -1},
		{"1", "a", 1},
	}
	for _, tt := range tests {
		if got := CompareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := CompareVersions(tt.b, tt.a); got != -tt.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
}

func FuzzCompareVersions(f *testing.F) {
	for _, s := range []string{"b9", "b10", "1.0~rc1", "1.0^p", "1-2", "", "~", "0a.-^"} {
		f.Add(s, "b10")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if x, y := CompareVersions(a, b), CompareVersions(b, a); x != -y {
			t.Fatalf("not antisymmetric: (%q,%q)=%d, reversed %d", a, b, x, y)
		}
		if CompareVersions(a, a) != 0 {
			t.Fatalf("%q does not equal itself", a)
		}
	})
}
