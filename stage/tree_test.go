package stage

import (
	"errors"
	"io/fs"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// makeTree creates files under dir from a map of path to content; a value
// starting with "->" makes a symbolic link, one ending in "/" a directory.
func makeTree(t *testing.T, dir string, entries map[string]string, modes map[string]fs.FileMode) {
	t.Helper()
	for _, p := range slices.Sorted(maps.Keys(entries)) { // parents first
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		v := entries[p]
		var err error
		switch {
		case strings.HasPrefix(v, "->"):
			err = os.Symlink(v[2:], full)
		case strings.HasSuffix(v, "/"):
			err = os.Mkdir(full, 0o755)
		default:
			err = os.WriteFile(full, []byte(v), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
		if m, ok := modes[p]; ok {
			if err := os.Chmod(full, m); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestTree(t *testing.T) {
	src := t.TempDir()
	makeTree(t, src, map[string]string{
		"usr/lib/systemd/system/x.service": "[Service]\n",
		"usr/bin/tool":                     "tool",
		"usr/bin/link":                     "->/usr/bin/tool",
		"usr/share/x/":                     "/",
		"opt/x/data":                       "",
	}, map[string]fs.FileMode{
		"usr/bin/tool": 0o755 | fs.ModeSetuid,
		"usr/share/x/": 0o750 | fs.ModeSetgid,
		"opt/x/data":   0o600,
	})
	tests := []struct {
		name string
		to   string
		want map[string]string
	}{
		{"to the root", "/", map[string]string{
			"usr": "dir 0755", "usr/lib": "dir 0755", "usr/lib/systemd": "dir 0755", "usr/lib/systemd/system": "dir 0755",
			"usr/lib/systemd/system/x.service": fileEntry(0o644, "[Service]\n"),
			"usr/bin":                          "dir 0755",
			"usr/bin/tool":                     fileEntry(0o4755, "tool"),
			"usr/bin/link":                     "link -> /usr/bin/tool",
			"usr/share":                        "dir 0755",
			"usr/share/x":                      "dir 2750",
			"opt":                              "dir 0755", "opt/x": "dir 0755",
			"opt/x/data": fileEntry(0o600, ""),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sb := newSandbox(t)
			if err := Tree(testCtx, sb.root, src, Options{To: tt.to}); err != nil {
				t.Fatalf("Tree: %v", err)
			}
			if got := listing(t, sb.dir); !maps.Equal(got, tt.want) {
				t.Errorf("tree:\n got %q\nwant %q", got, tt.want)
			}
			sb.checkJail(t)
		})
	}
	t.Run("to a subdirectory", func(t *testing.T) {
		sb := newSandbox(t)
		if err := Tree(testCtx, sb.root, src, Options{To: "/opt/sub"}); err != nil {
			t.Fatalf("Tree: %v", err)
		}
		got := listing(t, sb.dir)
		if got["opt/sub/usr/bin/tool"] != fileEntry(0o4755, "tool") || got["opt/sub"] != "dir 0755" {
			t.Errorf("tree: %q", got)
		}
	})
}

func TestTreeRefuses(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, src, outside string, root *os.Root)
		to    string
		want  error
	}{
		{"fifo", func(t *testing.T, src, _ string, _ *os.Root) {
			if err := syscall.Mkfifo(filepath.Join(src, "fifo"), 0o644); err != nil {
				t.Skipf("mkfifo: %v", err)
			}
		}, "/", ErrDevice},
		{"socket", func(t *testing.T, src, _ string, _ *os.Root) {
			l, err := net.Listen("unix", filepath.Join(src, "sock"))
			if err != nil {
				t.Skipf("unix socket: %v", err)
			}
			t.Cleanup(func() { l.Close() })
		}, "/", ErrDevice},
		{"writing through a symlink of an earlier source", func(t *testing.T, src, outside string, root *os.Root) {
			makeTree(t, src, map[string]string{"usr/bin/tool": "x"}, nil)
			if err := root.Mkdir("usr", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := root.Symlink(outside, "usr/bin"); err != nil {
				t.Fatal(err)
			}
		}, "/", ErrThroughSymlink},
		{"to escaping", func(t *testing.T, src, _ string, _ *os.Root) {
			makeTree(t, src, map[string]string{"f": "x"}, nil)
		}, "/../..", ErrEscape},
		{"invalid UTF-8 name", func(t *testing.T, src, _ string, _ *os.Root) {
			makeTree(t, src, map[string]string{"bad\xff": "x"}, nil)
		}, "/", ErrBadName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, outside := t.TempDir(), t.TempDir()
			sb := newSandbox(t)
			tt.setup(t, src, outside, sb.root)
			err := Tree(testCtx, sb.root, src, Options{To: tt.to})
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if err != nil && !strings.Contains(err.Error(), src) {
				t.Errorf("error %q does not name the tree %s", err, src)
			}
			sb.checkJail(t)
			checkOutside(t, outside)
		})
	}
}

func TestFile(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, root *os.Root, outside string)
		to      string
		mode    fs.FileMode
		want    map[string]string
		wantErr error
	}{
		{"new file, parents 0755", nil, "/usr/bin/kubelet", 0o755, map[string]string{
			"usr": "dir 0755", "usr/bin": "dir 0755", "usr/bin/kubelet": fileEntry(0o755, "content"),
		}, nil},
		{"mode 0 is 0644", nil, "/usr/share/f", 0, map[string]string{
			"usr": "dir 0755", "usr/share": "dir 0755", "usr/share/f": fileEntry(0o644, "content"),
		}, nil},
		{"setuid in raw octal", nil, "/usr/bin/s", 0o4711, map[string]string{
			"usr": "dir 0755", "usr/bin": "dir 0755", "usr/bin/s": fileEntry(0o4711, "content"),
		}, nil},
		{"replaces an earlier file", func(t *testing.T, root *os.Root, _ string) {
			if err := root.WriteFile("f", []byte("old"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "/f", 0o644, map[string]string{"f": fileEntry(0o644, "content")}, nil},
		{"over a directory", func(t *testing.T, root *os.Root, _ string) {
			if err := root.Mkdir("d", 0o755); err != nil {
				t.Fatal(err)
			}
		}, "/d", 0o644, nil, ErrConflict},
		{"over a symlink", func(t *testing.T, root *os.Root, outside string) {
			if err := root.Symlink(outside+"/pwned", "f"); err != nil {
				t.Fatal(err)
			}
		}, "/f", 0o644, nil, ErrThroughSymlink},
		{"under a symlink", func(t *testing.T, root *os.Root, outside string) {
			if err := root.Symlink(outside, "usr"); err != nil {
				t.Fatal(err)
			}
		}, "/usr/bin/x", 0o644, nil, ErrThroughSymlink},
		{"escaping", nil, "/../pwned", 0o644, nil, ErrEscape},
		{"the root itself", nil, "/", 0o644, nil, ErrBadName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outside := t.TempDir()
			sb := newSandbox(t)
			if tt.setup != nil {
				tt.setup(t, sb.root, outside)
			}
			err := File(testCtx, sb.root, strings.NewReader("content"), "https://example.org/x", tt.to, tt.mode)
			sb.checkJail(t)
			checkOutside(t, outside)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.HasPrefix(err.Error(), "https://example.org/x: ") {
					t.Fatalf("err = %v, want %v starting with the origin", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("File: %v", err)
			}
			if got := listing(t, sb.dir); !maps.Equal(got, tt.want) {
				t.Errorf("tree:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}
