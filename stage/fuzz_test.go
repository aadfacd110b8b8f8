package stage

import (
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzArchive unpacks arbitrary bytes: it must never panic and never write
// outside the root, whatever it returns.
func FuzzArchive(f *testing.F) {
	f.Add([]byte{})
	for _, format := range []Format{Tar, TarGzip, TarZstd, Zip} {
		members := []tm{dir("d/", 0o755), reg("d/f", 0o4755, "x"), sym("d/l", "/etc")}
		if format != Zip {
			members = append(members, hard("d/h", "d/f"))
		}
		f.Add(archiveFor(f, format, members))
	}
	f.Add(tarBytes(f, []tm{sym("x", "../.."), reg("x/pwned", 0o644, "x")}))
	f.Add(tarBytes(f, []tm{reg("../pwned", 0o644, "x")}))
	f.Add(zipBytes(f, []tm{sym("x", "/"), reg("x/tmp/pwned", 0o644, "x")}))
	f.Fuzz(func(t *testing.T, data []byte) {
		sb := newSandbox(t)
		src := writeSource(t, "fuzz.bin", data)
		Archive(testCtx, sb.root, src, Options{MaxBytes: 1 << 20, MaxEntries: 1000})
		sb.checkJail(t)
		if _, err := os.Lstat(filepath.Join(filepath.Dir(sb.jail), "pwned")); err == nil {
			t.Error("pwned written beside the jail")
		}
	})
}

// FuzzMemberPath checks that an accepted member path is always a clean
// relative path that stays inside the extraction directory.
func FuzzMemberPath(f *testing.F) {
	for _, s := range []string{"a/b", "./a", "../a", "/a", "a/../..", "a//b/./c/", "."} {
		f.Add(s, 0)
		f.Add(s, 1)
	}
	f.Fuzz(func(t *testing.T, name string, strip int) {
		if strip < 0 || strip > 8 {
			return
		}
		rel, skip, err := memberPath(name, strip)
		if err != nil || skip {
			return
		}
		clean := rel == "" || path.Clean(rel) == rel
		inside := !strings.HasPrefix(rel, "/") && rel != ".." && !strings.HasPrefix(rel, "../")
		if !clean || !inside {
			t.Errorf("memberPath(%q, %d) = %q: not a clean path inside the extraction directory", name, strip, rel)
		}
	})
}
