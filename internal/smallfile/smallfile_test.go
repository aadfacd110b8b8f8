package smallfile

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	os.WriteFile(small, []byte("key\n"), 0o644)
	big := filepath.Join(dir, "big")
	os.WriteFile(big, make([]byte, 65), 0o644)
	link := filepath.Join(dir, "link")
	os.Symlink("small", link)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path, want, err string
	}{
		{small, "key\n", ""},
		{link, "key\n", ""},
		{big, "", big + ": larger than 64 bytes"},
		{fifo, "", fifo + " is a fifo, not a regular file"},
		{dir, "", dir + " is a directory, not a regular file"},
		{"/dev/zero", "", "/dev/zero is a character device, not a regular file"},
		{filepath.Join(dir, "missing"), "", "no such file or directory"},
	} {
		data, err := Read(c.path, 64)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("Read(%s) = %v", c.path, err)
		case c.err == "" && string(data) != c.want:
			t.Errorf("Read(%s) = %q, want %q", c.path, data, c.want)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("Read(%s) = %v, want an error containing %q", c.path, err, c.err)
		}
	}
}
