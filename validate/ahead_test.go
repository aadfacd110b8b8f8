package validate

import (
	"context"
	"debug/elf"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"unicode/utf8"

	"github.com/sysext-bakery/bakery/internal/fixture"
	"github.com/sysext-bakery/bakery/recipes"
	"github.com/sysext-bakery/bakery/sysext/tree"
)

// validators are the two ways to validate a tree, which TestValidate
// runs each case through: Tree on the tree as it is, and an Ahead that
// read the files as a Builder was told of them in walk order.
var validators = []struct {
	name     string
	validate func(t *testing.T, m fstest.MapFS, arch string, r *recipes.Recipe) ([]AllowedELF, error)
}{
	{"Tree", func(t *testing.T, m fstest.MapFS, arch string, r *recipes.Recipe) ([]AllowedELF, error) {
		return Tree(m, arch, r)
	}},
	{"Ahead", func(t *testing.T, m fstest.MapFS, arch string, r *recipes.Recipe) ([]AllowedELF, error) {
		if len(m) > 1000 {
			t.Skip("thousands of files: the batches are Tree's, and files are slow to make on some disks")
		}
		b, _ := stageTree(t, m)
		return readAhead(t, b, arch, r)
	}},
}

// stageTree writes m into a directory in walk order as a stager does,
// telling a Builder, and returns it with the directory; a test of special
// files, which stagers never make, is skipped.
func stageTree(t *testing.T, m fstest.MapFS) (*tree.Builder, string) {
	t.Helper()
	var paths []string
	fs.WalkDir(m, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && p != "." {
			paths = append(paths, p)
		}
		return err
	})
	dir := t.TempDir()
	b := tree.NewBuilder(dir, 0, 0)
	for _, p := range paths {
		if !utf8.ValidString(p) {
			t.Skipf("%q: the Builder refuses a name that is not UTF-8 before validation", p)
		}
		f := m[p]
		host := filepath.Join(dir, p)
		var err error
		switch {
		case f == nil || f.Mode.IsDir(): // a directory MapFS makes up
			if err = os.Mkdir(host, 0o755); err == nil {
				err = b.Dir(p, 0o755)
			}
		case f.Mode.IsRegular():
			if err = os.WriteFile(host, f.Data, 0o644); err == nil {
				err = b.File(p, f.Mode, int64(len(f.Data)))
			}
		case f.Mode&fs.ModeSymlink != 0:
			if err = os.Symlink(string(f.Data), host); err == nil {
				err = b.Symlink(p, string(f.Data))
			}
		default:
			t.Skipf("%s: a stager makes no %v", p, f.Mode.Type())
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return b, dir
}

// readAhead reads b's files with an Ahead, then closes b and validates
// its tree.
func readAhead(t *testing.T, b *tree.Builder, arch string, r *recipes.Recipe) ([]AllowedELF, error) {
	t.Helper()
	ctx := context.Background()
	a, err := ReadAhead(ctx, b.Stream(), arch)
	if err != nil {
		return nil, err
	}
	b.Close(nil)
	built, err := b.Built(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return a.Tree(ctx, built, r)
}

// TestAheadReadsOnce checks that an Ahead's Tree takes what it read as
// the files were staged, for every name of a file, and reads the files
// again only when the stream did not hand them out in walk order: each
// case changes a foreign executable into a text file after the reading,
// so only a tree read again lets it through.
func TestAheadReadsOnce(t *testing.T) {
	arm := fixture.ELF(elf.ELFCLASS64, elf.ELFDATA2LSB, elf.ET_EXEC, elf.EM_AARCH64)
	dirs := []string{"usr", "usr/bin", "usr/lib"}
	cases := []struct {
		name  string
		files []string // in the order staged; the first is arm's, the rest hard links to it or text
		links []string
		error string // empty: read again, valid
	}{
		{"in walk order", []string{"usr/bin/arm", "usr/lib/text"}, nil, "/usr/bin/arm: ELF binary"},
		{"a second name", []string{"usr/bin/arm", "usr/lib/text"}, []string{"usr/lib/zz"}, "/usr/bin/arm: ELF binary"},
		{"not in walk order", []string{"usr/lib/arm", "usr/lib/y", "usr/bin/text"}, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			b := tree.NewBuilder(dir, 0, 0)
			for _, d := range dirs {
				if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
					t.Fatal(err)
				}
				b.Dir(d, 0o755)
			}
			a, err := ReadAhead(context.Background(), b.Stream(), "x86-64")
			if err != nil {
				t.Fatal(err)
			}
			for i, p := range c.files {
				data := arm
				if i > 0 {
					data = []byte(strings.Repeat("t", len(arm)))
				}
				if err := os.WriteFile(filepath.Join(dir, p), data, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := b.File(p, 0o755, int64(len(data))); err != nil {
					t.Fatal(err)
				}
			}
			for _, l := range c.links {
				if err := os.Link(filepath.Join(dir, c.files[0]), filepath.Join(dir, l)); err != nil {
					t.Fatal(err)
				}
				if err := b.Link(l, c.files[0]); err != nil {
					t.Fatal(err)
				}
			}
			b.Close(nil)
			a.Wait()
			// The executable becomes text of the same size.
			if err := os.WriteFile(filepath.Join(dir, c.files[0]), []byte(strings.Repeat("x", len(arm))), 0o755); err != nil {
				t.Fatal(err)
			}
			built, err := b.Built(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			_, err = a.Tree(context.Background(), built, &recipes.Recipe{})
			switch {
			case c.error == "" && err != nil:
				t.Fatalf("the tree was not read again: %v", err)
			case c.error != "" && (err == nil || !strings.Contains(err.Error(), c.error)):
				t.Fatalf("got %v, want %q: the tree was read again", err, c.error)
			}
			// Tree on the tree as it is now lets it through.
			if _, err := Tree(built.FS(), "x86-64", &recipes.Recipe{}); err != nil {
				t.Fatalf("Tree: %v", err)
			}
		})
	}
}

// TestAheadHardLinkNames checks that every name of a foreign executable
// read ahead is judged by the recipe's rules: one name allowed, another
// refused.
func TestAheadHardLinkNames(t *testing.T) {
	arm := fixture.ELF(elf.ELFCLASS64, elf.ELFDATA2LSB, elf.ET_EXEC, elf.EM_AARCH64)
	b, dir := stageTree(t, fstest.MapFS{"usr/lib/firmware/nic.bin": &fstest.MapFile{Data: arm, Mode: 0o755}})
	if err := os.Mkdir(filepath.Join(dir, "usr/lib/zz"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := b.Dir("usr/lib/zz", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, "usr/lib/firmware/nic.bin"), filepath.Join(dir, "usr/lib/zz/nic")); err != nil {
		t.Fatal(err)
	}
	if err := b.Link("usr/lib/zz/nic", "usr/lib/firmware/nic.bin"); err != nil {
		t.Fatal(err)
	}
	r := &recipes.Recipe{Validate: recipes.Validation{ForeignELF: []recipes.ForeignELF{{Path: "/usr/lib/firmware/*", Reason: "firmware"}}}}
	if _, err := readAhead(t, b, "x86-64", r); err == nil || !strings.Contains(err.Error(), "/usr/lib/zz/nic: ELF binary") {
		t.Fatalf("got %v, want the second name refused", err)
	}
}
