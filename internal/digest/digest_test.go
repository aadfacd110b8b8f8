package digest

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	data := []byte("hello digest")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	h, n, err := File(p)
	sum := sha256.Sum256(data)
	if err != nil || n != int64(len(data)) || h.String() != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Errorf("File = %v, %d, %v", h, n, err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{fifo, dir, "/dev/zero"} {
		if _, _, err := File(bad); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("File(%s) = %v, want a refusal", bad, err)
		}
	}
}
