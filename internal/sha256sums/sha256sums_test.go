package sha256sums

import (
	"os"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	h := strings.Repeat("ab", 32)
	tests := []struct {
		name, in string
		want     map[string]string
		wantErr  string
	}{
		{"two spaces", h + "  a.raw\n", map[string]string{"a.raw": h}, ""},
		{"binary marker", h + " *b.raw\n\n", map[string]string{"b.raw": h}, ""},
		{"upper case hex", strings.ToUpper(h) + "  c.raw", map[string]string{"c.raw": h}, ""},
		{"short hash", "abcd  a.raw\n", nil, "line 1"},
		{"no name", h + "\n", nil, "line 1"},
		{"not hex", strings.Repeat("zz", 32) + "  a.raw\n", nil, "line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s: %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(strings.Repeat("0", 64) + "  x.raw\n"))
	f.Add([]byte("# comment\n\n" + strings.Repeat("f", 64) + " *y\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			return
		}
		for name, h := range m {
			if name == "" || len(h) != 64 {
				t.Fatalf("accepted entry %q → %q", name, h)
			}
		}
	})
}

func TestRenderAndUpdate(t *testing.T) {
	a, b := strings.Repeat("a", 64), strings.Repeat("b", 64)
	sums, err := Parse([]byte(b + "  z.raw\n" + a + " *a.raw\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(Render(sums)); got != a+"  a.raw\n"+b+"  z.raw\n" {
		t.Errorf("rendered %q", got)
	}
	p := t.TempDir() + "/SHA256SUMS"
	if err := Update(p, map[string]string{"a.raw": a, "z.raw": a}); err != nil {
		t.Fatal(err)
	}
	if err := Update(p, map[string]string{"z.raw": b}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil || string(got) != a+"  a.raw\n"+b+"  z.raw\n" {
		t.Errorf("after update: %q, %v", got, err)
	}
}
