package bytesize

import (
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  string
	}{
		{in: "1", want: 1},
		{in: "4096B", want: 4096},
		{in: "512MiB", want: 512 << 20},
		{in: "8GiB", want: 8 << 30},
		{in: "8gib", want: 8 << 30},
		{in: "2 TiB", want: 2 << 40},
		{in: "3KiB", want: 3 << 10},
		{in: "", err: "want a whole number"},
		{in: "GiB", err: "want a whole number"},
		{in: "1.5GiB", err: "want a whole number"},
		{in: "8GB", err: "want a whole number"},
		{in: "0", err: "more than 0"},
		{in: "-1MiB", err: "more than 0"},
		{in: "9000000TiB", err: "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			switch {
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("Parse(%q) = %d, %v; want an error saying %q", tt.in, got, err, tt.err)
			case tt.err == "" && (err != nil || got != tt.want):
				t.Fatalf("Parse(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			case tt.err == "":
				if back, err := Parse(Format(got)); err != nil || back != got {
					t.Errorf("Format(%d) = %q, which reads back as %d, %v", got, Format(got), back, err)
				}
			}
		})
	}
}

func TestHuman(t *testing.T) {
	for in, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 3 << 30: "3.0 GiB", 1 << 60: "1.0 EiB"} {
		if got := Human(in); got != want {
			t.Errorf("Human(%d) = %q, want %q", in, got, want)
		}
	}
}
