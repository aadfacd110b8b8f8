package stage

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestArchiveMatchesGNUTar unpacks archives written by GNU tar, including
// its sparse formats and every compression, and checks the tree equals what
// GNU tar itself extracts with the same strip-components.
func TestArchiveMatchesGNUTar(t *testing.T) {
	gnutar, err := exec.LookPath("tar")
	if err != nil {
		t.Skip("GNU tar not installed: it is the reference for this test")
	}
	if out, err := exec.Command(gnutar, "--version").Output(); err != nil || string(out[:13]) != "tar (GNU tar)" {
		t.Skip("tar is not GNU tar: it is the reference for this test")
	}
	src := t.TempDir()
	makeTree(t, src, map[string]string{
		"pkg/bin/a":              "#!/bin/sh\n",
		"pkg/bin/suid":           "suid",
		"pkg/lib/libx.so":        "->libx.so.1",
		"pkg/lib/libx.so.1":      "elf",
		"pkg/share/doc/README":   "readme",
		"pkg/share/doc/private/": "/",
	}, map[string]os.FileMode{"pkg/bin/a": 0o755, "pkg/bin/suid": 0o4755 | os.ModeSetuid, "pkg/share/doc/private/": 0o700})
	if err := os.Link(filepath.Join(src, "pkg/bin/a"), filepath.Join(src, "pkg/bin/b")); err != nil {
		t.Fatal(err)
	}
	// An 8 MiB sparse file with data in the middle and a hole at the end.
	sparse, err := os.Create(filepath.Join(src, "pkg/sparse"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sparse.WriteAt([]byte("data in a hole"), 4<<20); err != nil {
		t.Fatal(err)
	}
	if err := sparse.Truncate(8 << 20); err != nil {
		t.Fatal(err)
	}
	sparse.Close()

	archives := t.TempDir()
	for i, tc := range []struct {
		flags []string
		strip int
	}{
		{[]string{"--format=gnu", "--sparse"}, 0},
		{[]string{"--format=gnu", "--sparse", "-z"}, 1},
		{[]string{"--format=posix", "--sparse", "-J"}, 2},
		{[]string{"--format=posix", "--sparse", "--zstd"}, 1},
		{[]string{"--format=ustar", "-j"}, 0},
	} {
		name := fmt.Sprintf("%v strip %d", tc.flags, tc.strip)
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(archives, fmt.Sprint(i))
			args := append([]string{"-c", "-f", file, "-C", src}, tc.flags...)
			args = append(args, ".")
			if out, err := exec.Command(gnutar, args...).CombinedOutput(); err != nil {
				t.Skipf("tar %v: %v: %s", args, err, out)
			}
			ref := t.TempDir()
			if out, err := exec.Command(gnutar, "-x", "--no-same-owner", "-p", fmt.Sprintf("--strip-components=%d", tc.strip), "-f", file, "-C", ref).CombinedOutput(); err != nil {
				t.Fatalf("tar -x: %v: %s", err, out)
			}
			sb := newSandbox(t)
			f, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := Archive(testCtx, sb.root, f, Options{StripComponents: tc.strip}); err != nil {
				t.Fatalf("Archive: %v", err)
			}
			want, got := listing(t, ref), listing(t, sb.dir)
			if len(want) < 3 {
				t.Fatalf("GNU tar extracted only %q", want)
			}
			if !maps.Equal(got, want) {
				t.Errorf("tree differs from GNU tar's:\n got %q\nwant %q", got, want)
			}
			sb.checkJail(t)
		})
	}
}
