package pathmatch

import "testing"

func TestSubtree(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"bin", "bin", true},
		{"bin", "bin/tool", true},
		{"b*", "bin/tool", true},
		{"bin/*", "bin/tool", true},
		{"bin/*", "bin", false},
		{"bin", "binary", false},
		{"*.so", "lib/x.so", false},
		{"lib/*.so", "lib/x.so", true},
		{"/usr/lib/firmware/*", "/usr/lib/firmware/nic.bin", true},
		{"/usr/lib/firmware/*", "/usr/lib/firmware/vendor/nic.bin", true},
		{"/usr/lib/firmware", "/usr/lib/firmware2/x", false},
		{"/usr/lib/*/testdata", "/usr/lib/go/testdata/a/b", true},
		{"/usr/lib/*/testdata", "/usr/lib/go/src/testdata", false},
		{"*", "", false},
		{"[", "[", false},
	}
	for _, tt := range tests {
		if got := Subtree(tt.pattern, tt.name); got != tt.want {
			t.Errorf("Subtree(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}
