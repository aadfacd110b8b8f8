package bakery

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"

	"github.com/sysext-bakery/bakery/internal/fixture"
	"github.com/sysext-bakery/bakery/recipes"
	"github.com/sysext-bakery/bakery/sources"
	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/ddi"
	"github.com/sysext-bakery/bakery/sysext/formats"
)

// repoRoot is the module root, two levels up from this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	abs, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// needTool skips the test when a command is not installed.
func needTool(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (scripts/setup installs it)", tool)
		}
	}
}

// needRoot skips the test unless it runs as root with loop devices.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (loop mounts in a private mount namespace)")
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skip("needs loop devices (/dev/loop-control is missing)")
	}
	needTool(t, "unshare", "mount")
}

// copyTree copies a directory tree (files, dirs, symlinks) for a test.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	out, err := exec.Command("cp", "-a", src+"/.", dst).CombinedOutput()
	if err != nil {
		t.Fatalf("cp -a %s %s: %v: %s", src, dst, err, out)
	}
}

// helloRecipe copies testdata/hello into a fresh directory and loads it.
func helloRecipe(t *testing.T) *recipes.Recipe {
	t.Helper()
	dir := t.TempDir()
	copyTree(t, filepath.Join(repoRoot(t), "testdata", "hello"), dir)
	r, err := recipes.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// testBuilder is a builder every image test runs with, and the format it
// writes.
type testBuilder struct {
	builder sysext.Builder
	format  sysext.Format
}

// testBuilders are every builder of every format.
var testBuilders = func() []testBuilder {
	var out []testBuilder
	for _, f := range formats.All() {
		for _, b := range f.Builders() {
			out = append(out, testBuilder{b, f})
		}
	}
	return out
}()

// squashfsFormat and erofsFormat are the formats of the tests that bake
// with one builder.
var (
	squashfsFormat, _ = formats.ByName("squashfs")
	erofsFormat, _    = formats.ByName("erofs")
)

// bakeOptions are the options tests bake with: a private cache, the given
// builder and its default compression, a fixed epoch.
func bakeOptions(t testing.TB, out string, b sysext.Builder, format sysext.Format) Options {
	return Options{
		OutDir:  out,
		Format:  format,
		Builder: b,
		Build:   sysext.BuildOptions{Compression: b.Compressions()[0], Epoch: 1700000000, AllRoot: true},
		Fetcher: &sources.Fetcher{Cache: sources.Cache{Dir: t.TempDir()}, Backoff: 1},
	}
}

// writeRecipe writes a recipe.yaml (and the files it names) into a new
// directory and loads it.
func writeRecipe(t *testing.T, yaml string, files map[string]string) *recipes.Recipe {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, "recipe.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := recipes.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// tarEntry is one member of a test archive.
type tarEntry struct {
	hdr  tar.Header
	body string
}

// tarGz builds a gzip-compressed tar of entries. A member whose header
// claims more bytes than its body has gets a short body and ends the
// archive, as a hostile archive would.
func tarGz(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := e.hdr
		if h.Typeflag == tar.TypeReg && h.Size == 0 {
			h.Size = int64(len(e.body))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Size > int64(len(e.body)) {
			tw.Write(make([]byte, 4096)) // the rest never comes
			tw.Flush()
			gz.Close()
			return buf.Bytes()
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// dirListing describes a tree, one sorted line per entry: path, type,
// mode, size and content hash of files, target of symlinks. It reads the
// tree through a shell so that it can run inside a mount namespace.
const dirListing = `cd "$1" && find . -mindepth 1 \( -type f -printf '%P f %#m %s ' -exec sh -c 'sha256sum < "$1" | cut -c1-16' _ {} \; \) -o \( -type l -printf '%P l %l\n' \) -o \( -type d -printf '%P d %#m\n' \) | sort`

// listTree lists a directory as dirListing does.
func listTree(t *testing.T, dir string) string {
	t.Helper()
	out, err := exec.Command("sh", "-c", dirListing, "_", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("list %s: %v: %s", dir, err, out)
	}
	return string(out)
}

// listImage loop-mounts an image read-only in a private mount namespace and
// lists it as listTree does, plus a last line with the owners found; the
// namespace's end unmounts it and frees the loop device.
func listImage(t *testing.T, image, fstype string) string {
	t.Helper()
	mnt := t.TempDir()
	opts := "loop,ro"
	if f, err := os.Open(image); err == nil && ddi.Detect(f) { // a DDI: its root partition
		fi, _ := f.Stat()
		im, err := ddi.Open(f, fi.Size(), "")
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		opts += fmt.Sprintf(",offset=%d,sizelimit=%d", im.Root.Offset, im.Root.Size)
	}
	script := `set -e; mount -t "$3" -o "$4" "$2" "$1"; ` + dirListing + `; echo owners $(find "$1" -printf '%U:%G\n' | sort -u)`
	out, err := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script, "_", mnt, image, fstype, opts).CombinedOutput()
	if err != nil {
		t.Fatalf("mount and list %s: %v: %s", image, err, out)
	}
	return string(out)
}

// snapshot describes everything below dir (path, mode, content hash), for
// "left unchanged" checks.
func snapshot(t *testing.T, dir string) []string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		line := p + " " + fi.Mode().String()
		if fi.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += " " + sha256Hex(data)
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return lines
}

// bakeCtx is the context tests bake with.
var bakeCtx = context.Background()

// archiveRecipe serves archive on a loopback server and writes a recipe
// NAME, version 1, for x86-64, whose first source is that archive pinned
// by its sha256 and extracted with extract (a YAML flow map such as
// "{to: /usr}"); more holds further source entries and files the files
// the recipe's folder holds, as for writeRecipe.
func archiveRecipe(t *testing.T, name string, archive []byte, extract, more string, files map[string]string) *recipes.Recipe {
	t.Helper()
	srv := fixture.Serve(t, map[string][]byte{"/a.tar.gz": archive})
	return writeRecipe(t, fmt.Sprintf(`name: %s
version: "1"
arches: [x86-64]
sources:
  - url: %s/a.tar.gz
    sha256: %s
    extract: %s
%s`, name, srv.URL, sha256Hex(archive), extract, more), files)
}
