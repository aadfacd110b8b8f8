package merge

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestImageFSType(t *testing.T) {
	at := func(off int, magic string) []byte {
		b := make([]byte, 4096)
		copy(b[off:], magic)
		return b
	}
	tests := []struct {
		name    string
		data    []byte
		want    string
		wantErr string
	}{
		{"squashfs", at(0, "hsqs"), "squashfs", ""},
		{"erofs", at(1024, "\xe2\xe1\xf5\xe0"), "erofs", ""},
		{"GPT disk image", at(512, "EFI PART"), "", "GPT disk image (DDI)"},
		{"garbage", []byte("not an image"), "", "no known superblock magic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "img.raw")
			if err := os.WriteFile(p, tt.data, 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got, err := imageFSType(f)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("imageFSType = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
