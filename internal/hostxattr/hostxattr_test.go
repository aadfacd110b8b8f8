package hostxattr

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	big := []byte(strings.Repeat("v", 3000)) // near ext4's 4 KiB limit for all of a file's xattrs
	for _, tc := range []struct {
		name string
		set  map[string][]byte
	}{
		{"none", nil},
		{"one", map[string][]byte{"user.a": []byte("1")}},
		{"empty value", map[string][]byte{"user.empty": {}}},
		{"large value and several", map[string][]byte{"user.big": big, "user.b": []byte("2"), "trusted.t": []byte("x")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.set {
				if err := unix.Lsetxattr(p, k, v, 0); err != nil {
					if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) {
						t.Skipf("cannot set %s here: %v", k, err)
					}
					t.Fatal(err)
				}
			}
			got, err := Read(p)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.set) {
				t.Fatalf("got %d xattrs, want %d: %v", len(got), len(tc.set), got)
			}
			for k, v := range tc.set {
				if !bytes.Equal(got[k], v) {
					t.Errorf("%s = %d bytes, want %d", k, len(got[k]), len(v))
				}
			}
		})
	}
}

func TestReadDoesNotFollowSymlinks(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(target, "user.a", []byte("1"), 0); err != nil {
		t.Skipf("no user xattrs here: %v", err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	got, err := Read(link)
	if err != nil || got != nil {
		t.Errorf("Read(symlink) = %v, %v; want the link's own (none)", got, err)
	}
	if _, err := Read(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Read(missing) error = %v, want not-exist", err)
	}
}
