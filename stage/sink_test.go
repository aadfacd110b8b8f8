package stage

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// replay is a Sink that describes the staging root as listing does, from
// what it is told alone (reading a file's content as it is told of it).
type replay struct {
	dir  string
	seen map[string]string
}

func (r *replay) Dir(p string, mode fs.FileMode) error {
	r.seen[p] = fmt.Sprintf("dir %04o", octal(mode))
	return nil
}

func (r *replay) File(p string, mode fs.FileMode, size int64) error {
	b, err := os.ReadFile(filepath.Join(r.dir, p))
	if err != nil || int64(len(b)) != size {
		return fmt.Errorf("%s: told %d bytes, %d on disk (%v)", p, size, len(b), err)
	}
	r.seen[p] = fmt.Sprintf("file %04o %x", octal(mode), sha256.Sum256(b))
	return nil
}

func (r *replay) Symlink(p, target string) error {
	r.seen[p] = "link -> " + target
	return nil
}

func (r *replay) Link(p, target string) error {
	if !strings.HasPrefix(r.seen[target], "file ") {
		return fmt.Errorf("%s: link to %s, not a file told of", p, target)
	}
	r.seen[p] = r.seen[target]
	return nil
}

func (r *replay) Remove(p string) error {
	if _, ok := r.seen[p]; !ok {
		return fmt.Errorf("%s: removed, not told of", p)
	}
	for q := range r.seen {
		if strings.HasPrefix(q, p+"/") {
			return fmt.Errorf("%s: removed before %s in it", p, q)
		}
	}
	delete(r.seen, p)
	return nil
}

// TestSink stages archives, a tree and a file through a Sink and checks
// that what it was told describes the staging root exactly: every entry,
// with its final mode (directories denying their owner access included)
// and the last of the members written to one path.
func TestSink(t *testing.T) {
	sb := newSandbox(t)
	r := &replay{dir: sb.dir, seen: map[string]string{}}
	ctx := WithSink(testCtx, r)
	members := append(sample,
		dir("./usr/locked/", 0o500),
		reg("./usr/lib/again", 0o644, "first"),
		reg("./usr/lib/again", 0o600, "second"),
		sym("./usr/lib/swap", "x"),
		sym("./usr/lib/swap", "y"),
		hard("./usr/lib/hard2", "./usr/lib/again"),
		dir("./usr/bin/", 0o750),
	)
	src := writeSource(t, "a.tar.gz", archiveFor(t, TarGzip, members))
	if _, err := Archive(ctx, sb.root, src, Options{}); err != nil {
		t.Fatal(err)
	}
	src = writeSource(t, "b.tar", archiveFor(t, Tar, []tm{reg("bin/x", 0o755, "x"), reg("share/y", 0o644, "y")}))
	if _, err := Archive(ctx, sb.root, src, Options{To: "/opt/b", Include: []string{"bin"}}); err != nil {
		t.Fatal(err)
	}
	tree := t.TempDir()
	makeTree(t, tree, map[string]string{"etc/unit.service": "[Unit]\n", "etc/sub": "/"}, nil)
	if err := Tree(ctx, sb.root, tree, Options{To: "/usr/lib/systemd"}); err != nil {
		t.Fatal(err)
	}
	if err := File(ctx, sb.root, strings.NewReader("single"), "test", "/usr/lib/again", 0o640); err != nil {
		t.Fatal(err)
	}
	if got, want := r.seen, listing(t, sb.dir); !maps.Equal(got, want) {
		for p := range want {
			if got[p] != want[p] {
				t.Errorf("%s: told %q, on disk %q", p, got[p], want[p])
			}
		}
		for p := range got {
			if _, ok := want[p]; !ok {
				t.Errorf("%s: told %q, not on disk", p, got[p])
			}
		}
	}
	sb.checkJail(t)
}

// failing is a Sink that refuses the file fail.
type failing struct{ noSink }

func (failing) File(p string, _ fs.FileMode, _ int64) error {
	if p == "usr/bin/tool" {
		return errors.New("refused by the sink")
	}
	return nil
}

// TestSinkError checks that a Sink's error stops the staging with it.
func TestSinkError(t *testing.T) {
	sb := newSandbox(t)
	src := writeSource(t, "a.tar", archiveFor(t, Tar, sample))
	if _, err := Archive(WithSink(testCtx, failing{}), sb.root, src, Options{}); err == nil || !strings.Contains(err.Error(), "refused by the sink") {
		t.Fatalf("Archive = %v, want the sink's error", err)
	}
}
