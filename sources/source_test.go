package sources

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sysext-bakery/bakery/internal/fixture"
	"github.com/sysext-bakery/bakery/recipes"
)

// TestResolveFetchesNoArtifact resolves url sources, pinned and by
// sha256-url, and checks that only the checksum document was requested.
func TestResolveFetchesNoArtifact(t *testing.T) {
	const hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	srv := fixture.Serve(t, map[string][]byte{"/SHA256SUMS": []byte(hash + "  tool.tar.gz\n")})
	f := &Fetcher{Cache: Cache{Dir: t.TempDir()}, Backoff: 1}
	for _, src := range []recipes.BuildSource{
		{Kind: recipes.URLSource, URL: srv.URL + "/tool.tar.gz", SHA256: hash},
		{Kind: recipes.URLSource, URL: srv.URL + "/tool.tar.gz", SHA256URL: srv.URL + "/SHA256SUMS"},
	} {
		s, err := Open(f, "", src)
		if err != nil {
			t.Fatal(err)
		}
		d, err := s.Resolve(context.Background())
		if err != nil || d.String() != "sha256:"+hash {
			t.Errorf("Resolve = %v, %v", d, err)
		}
	}
	if n := srv.Requests.Load(); n != 1 {
		t.Errorf("%d requests, want 1 (the checksum document only)", n)
	}
}

// TestFilesDigest changes a files source's tree in every way that matters
// and checks that each change changes its digest.
func TestFilesDigest(t *testing.T) {
	dir := t.TempDir()
	write := func(p, s string, mode os.FileMode) {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, p), []byte(s), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(filepath.Join(dir, p), mode)
	}
	write("usr/lib/systemd/system/a.service", "[Unit]\n", 0o644)
	s, _ := Open(nil, "", recipes.BuildSource{Kind: recipes.FilesSource, FilesDir: dir})
	seen := map[string]string{}
	resolve := func(what string) {
		d, err := s.Resolve(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if prev, dup := seen[d.String()]; dup {
			t.Errorf("%s gives the digest of %s", what, prev)
		}
		seen[d.String()] = what
	}
	resolve("the first tree")
	write("usr/lib/systemd/system/a.service", "[Unit]\nDescription=x\n", 0o644)
	resolve("new content")
	os.Chmod(filepath.Join(dir, "usr/lib/systemd/system/a.service"), 0o755)
	resolve("new mode")
	os.Symlink("a.service", filepath.Join(dir, "usr/lib/systemd/system/b.service"))
	resolve("a new link")
	os.Rename(filepath.Join(dir, "usr/lib/systemd/system/a.service"), filepath.Join(dir, "usr/lib/systemd/system/c.service"))
	resolve("a renamed file")
}

// TestOpenUnknownKind: a kind without an implementation is an error about
// its own key, before anything is fetched.
func TestOpenUnknownKind(t *testing.T) {
	_, err := Open(&Fetcher{}, "", recipes.BuildSource{Kind: recipes.SourceKind(42)})
	var ke *KeyError
	if !errors.As(err, &ke) || ke.Key != "SourceKind(42)" || !strings.Contains(err.Error(), "not supported yet") {
		t.Errorf("Open = %v, want a KeyError about the kind", err)
	}
}

// TestMirrors fetches through mirrors: the longest matching prefix wins,
// a mirror may point at local files anywhere, and the recipe's own URLs
// are what the file-URL rule checks.
func TestMirrors(t *testing.T) {
	body := []byte("the artifact\n")
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	srv := fixture.Serve(t, map[string][]byte{"/deep/tool": body})
	local := t.TempDir()
	os.WriteFile(filepath.Join(local, "tool"), body, 0o644)
	tests := []struct {
		name    string
		mirrors []Mirror
		url     string
		wantErr string
	}{
		{"http mirror", []Mirror{{"https://upstream.invalid/", srv.URL + "/deep/"}}, "https://upstream.invalid/tool", ""},
		{"longest prefix", []Mirror{{"https://upstream.invalid/", "https://nowhere.invalid/"}, {"https://upstream.invalid/x/", srv.URL + "/deep/"}}, "https://upstream.invalid/x/tool", ""},
		{"file mirror outside the recipe", []Mirror{{"https://upstream.invalid/", "file://" + local + "/"}}, "https://upstream.invalid/tool", ""},
		{"no mirror", nil, "https://upstream.invalid/tool", "upstream.invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &Fetcher{Cache: Cache{Dir: t.TempDir()}, Mirrors: tt.mirrors, Backoff: 1}
			p, err := f.Fetch(context.Background(), tt.url, hash, t.TempDir())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Fetch = %v, want an error saying %q", err, tt.wantErr)
				}
				return
			}
			if got, _ := os.ReadFile(p); err != nil || string(got) != string(body) {
				t.Fatalf("Fetch = %s, %v", p, err)
			}
		})
	}
	for _, bad := range []string{"", "x", "=y", "x="} {
		if _, err := ParseMirror(bad); err == nil {
			t.Errorf("ParseMirror(%q) accepted", bad)
		}
	}
}

// TestFilesFromFS stages a files source whose tree is an fs.FS (a catalog
// recipe's, embedded in bakery): Fetch writes it once into the cache under
// its digest, with modes that do not depend on the fs.FS or the umask, and
// staging copies it from there; a tree holding anything but directories and
// regular files is refused before anything is staged.
func TestFilesFromFS(t *testing.T) {
	tree := fstest.MapFS{
		"usr/lib/systemd/system/tool.service": {Data: []byte("[Service]\nExecStart=/usr/bin/tool\n"), Mode: 0o444},
		"usr/share/tool/tool.conf":            {Data: []byte("level = 1\n"), Mode: 0o400},
	}
	ctx := context.Background()
	f := &Fetcher{Cache: Cache{Dir: t.TempDir()}}
	src := recipes.BuildSource{Kind: recipes.FilesSource, FilesDir: "recipes/catalog/tool/files", FilesFS: tree}
	stage := func(t *testing.T, src recipes.BuildSource) (string, error) {
		s, err := Open(f, "", src)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Fetch(ctx); err != nil {
			return "", err
		}
		dir := t.TempDir()
		root, err := os.OpenRoot(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()
		return dir, s.Stage(ctx, root, 100)
	}
	for i := range 2 { // the second time from the cache
		dir, err := stage(t, src)
		if err != nil {
			t.Fatalf("stage %d: %v", i+1, err)
		}
		for p, want := range map[string]os.FileMode{
			"usr": fs.ModeDir | 0o755, "usr/lib/systemd/system": fs.ModeDir | 0o755,
			"usr/lib/systemd/system/tool.service": 0o644, "usr/share/tool/tool.conf": 0o644,
		} {
			fi, err := os.Lstat(filepath.Join(dir, p))
			if err != nil || fi.Mode() != want {
				t.Errorf("stage %d: %s: %v, %v, want mode %v", i+1, p, fi, err, want)
			}
		}
		if got, _ := os.ReadFile(filepath.Join(dir, "usr/share/tool/tool.conf")); string(got) != "level = 1\n" {
			t.Errorf("stage %d: tool.conf holds %q", i+1, got)
		}
	}
	trees, _ := filepath.Glob(filepath.Join(f.Cache.Dir, "trees", "sha256", "*"))
	if len(trees) != 1 {
		t.Errorf("the cache holds %q, want one tree and no temporary folder", trees)
	}

	bad := fstest.MapFS{"usr/bin/link": {Data: []byte("tool"), Mode: fs.ModeSymlink | 0o777}}
	_, err := stage(t, recipes.BuildSource{Kind: recipes.FilesSource, FilesDir: "recipes/catalog/bad/files", FilesFS: bad})
	var ke *KeyError
	if !errors.As(err, &ke) || ke.Key != "files" || !strings.Contains(err.Error(), "usr/bin/link is a symbolic link; a tree read from bakery itself holds only directories and regular files") {
		t.Errorf("staging a tree with a link: %v", err)
	}
	if _, err := Open(nil, "", src); err == nil {
		t.Error("Open of an fs.FS tree without a Fetcher succeeded")
	}
}

// TestFilesHashRefusesAFifo hashes a tree's file that a fifo replaced
// after the walk saw a regular file: refused at once, not waited on.
func TestFilesHashRefusesAFifo(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mkfifo(filepath.Join(dir, "swapped"), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := Open(nil, "", recipes.BuildSource{Kind: recipes.FilesSource, FilesDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := src.(*filesSource).hashFile("swapped"); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("hashFile of a fifo = %v, want it refused", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("hashFile of a fifo blocked")
	}
}
