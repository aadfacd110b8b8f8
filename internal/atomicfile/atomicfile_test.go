package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileReplacesWholly(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "f")
	for _, content := range []string{"old", "new content"} {
		if err := WriteFile(dst, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(dst)
		if err != nil || string(got) != content {
			t.Fatalf("content = %q, %v; want %q", got, err, content)
		}
	}
	if fi, _ := os.Stat(dst); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode = %v, want 0640", fi.Mode().Perm())
	}
	assertOnly(t, dir, "f")
}

func TestAbortLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "f")
	if err := os.WriteFile(dst, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("partial")
	f.Abort()
	if err := f.Commit(0o644); err == nil {
		t.Error("Commit after Abort succeeded")
	}
	got, _ := os.ReadFile(dst)
	if string(got) != "keep" {
		t.Errorf("destination changed to %q", got)
	}
	assertOnly(t, dir, "f")
}

func TestCopyFailingReaderKeepsOld(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "f")
	os.WriteFile(dst, []byte("keep"), 0o644)
	boom := errors.New("boom")
	if err := Copy(dst, failingReader{boom}, 0o644); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	got, _ := os.ReadFile(dst)
	if string(got) != "keep" {
		t.Errorf("destination changed to %q", got)
	}
	assertOnly(t, dir, "f")
}

type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }

func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != len(names) {
		var got []string
		for _, e := range ents {
			got = append(got, e.Name())
		}
		t.Fatalf("dir holds %v, want %v", got, names)
	}
}

// TestRemoveStale removes the temporary files of killed writers and keeps
// those being written and everything else.
func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "image.raw")
	live, err := Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Abort()
	stale := []string{filepath.Join(dir, ".image.raw.tmp-123"), filepath.Join(dir, ".other.raw.tmp-9")}
	keep := []string{filepath.Join(dir, "image.raw"), filepath.Join(dir, ".image.raw.partial"), filepath.Join(dir, "x.tmp-1")}
	for _, p := range append(stale, keep...) {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := RemoveStale(dst); len(got) != 1 || got[0] != stale[0] {
		t.Errorf("RemoveStale removed %v, want %v", got, stale[:1])
	}
	if got := RemoveStaleIn(dir); len(got) != 1 || got[0] != stale[1] {
		t.Errorf("RemoveStaleIn removed %v, want %v", got, stale[1:])
	}
	for _, p := range append(keep, live.Name()) {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was removed: %v", p, err)
		}
	}
	if _, err := live.Write([]byte("still writing")); err != nil {
		t.Fatal(err)
	}
	if err := live.Commit(0o644); err != nil {
		t.Fatalf("the live writer's Commit: %v", err)
	}
}

// TestCreateMakesTheDirectory covers callers such as pull --out DIR and
// keygen --out DIR/key that name a directory that does not exist yet.
func TestCreateMakesTheDirectory(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "new", "deeper", "f")
	if err := WriteFile(dst, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(dst); err != nil || string(got) != "x" {
		t.Errorf("read back %q, %v", got, err)
	}
}
