package merge

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sysext-bakery/bakery/sysext"
	"golang.org/x/sys/unix"
)

// fixture is one extension image in a scenario root.
type fixture struct {
	// at is the image's path relative to the root, e.g.
	// "var/lib/extensions/foo.raw"; a name ending in .raw is built with
	// mksquashfs (or mkfs.erofs with erofs set), anything else is a
	// directory image.
	at    string
	erofs bool
	// files are the image's files; a name ending in "/" is a directory.
	files map[string]string
	// relaxed marks the image's extension-release files with
	// user.extension-release.strict=0.
	relaxed bool
}

// release is an image's extension-release file.
func release(name, content string) map[string]string {
	return map[string]string{"usr/lib/extension-release.d/extension-release." + name: content}
}

// with adds files to a file map.
func with(m map[string]string, kv ...string) map[string]string {
	m = maps.Clone(m)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// scenario is one root to merge with bakery and with systemd-sysext.
type scenario struct {
	name string
	// host is the root's files besides the images; default: a Debian 12
	// /usr/lib/os-release and a /usr/bin/host file.
	host   map[string]string
	images []fixture
	// oracleFix adapts the oracle's copy of the root where systemd 252
	// differs from the 257 rules bakery follows, so that the two can still
	// be compared; the comment on each use says what differs.
	oracleFix func(root string)
	// merged is the expected status, checked for both.
	merged bool
}

var debianHost = map[string]string{
	"usr/lib/os-release": "ID=debian\nVERSION_ID=12\n",
	"usr/bin/host":       "host\n",
}

func anyExt(name string, kv ...string) map[string]string {
	return with(release(name, "ID=_any\n"), kv...)
}

var scenarios = []scenario{
	{name: "plain merge", merged: true, images: []fixture{
		{at: "var/lib/extensions/hello.raw", files: anyExt("hello", "usr/bin/hello", "hello\n")}}},
	{name: "conflicting file: b10 above b9", merged: true, images: []fixture{
		{at: "var/lib/extensions/b9.raw", files: anyExt("b9", "usr/share/conflict", "b9\n", "usr/bin/host", "b9 shadows host\n")},
		{at: "var/lib/extensions/b10.raw", files: anyExt("b10", "usr/share/conflict", "b10\n")}}},
	{name: "etc shadows var-lib", merged: true, images: []fixture{
		{at: "etc/extensions/foo.raw", files: anyExt("foo", "usr/share/foo", "from etc\n")},
		{at: "var/lib/extensions/foo.raw", files: anyExt("foo", "usr/share/foo", "from var\n")}}},
	{name: "run shadows var-lib", merged: true, images: []fixture{
		{at: "run/extensions/foo.raw", files: anyExt("foo", "usr/share/foo", "from run\n")},
		{at: "var/lib/extensions/foo.raw", files: anyExt("foo", "usr/share/foo", "from var\n")}}},
	{name: "empty directory masks", merged: true, images: []fixture{
		{at: "etc/extensions/foo", files: map[string]string{}},
		{at: "var/lib/extensions/foo.raw", files: anyExt("foo", "usr/share/foo", "masked\n")},
		{at: "var/lib/extensions/bar.raw", files: anyExt("bar", "usr/share/bar", "bar\n")}}},
	{name: "ID=_any on another distribution", merged: true,
		host:   map[string]string{"usr/lib/os-release": "ID=fedora\nVERSION_ID=41\n", "usr/bin/host": "host\n"},
		images: []fixture{{at: "var/lib/extensions/any.raw", files: anyExt("any", "usr/bin/any", "any\n")}}},
	{name: "ID and VERSION_ID match", merged: true, images: []fixture{
		{at: "var/lib/extensions/deb.raw", files: with(release("deb", "ID=debian\nVERSION_ID=12\n"), "usr/bin/deb", "deb\n")}}},
	{name: "VERSION_ID mismatch", merged: false, images: []fixture{
		{at: "var/lib/extensions/deb.raw", files: with(release("deb", "ID=debian\nVERSION_ID=11\n"), "usr/bin/deb", "deb\n")}}},
	{name: "ID mismatch", merged: false, images: []fixture{
		{at: "var/lib/extensions/fed.raw", files: with(release("fed", "ID=fedora\nVERSION_ID=12\n"), "usr/bin/fed", "fed\n")}}},
	{name: "SYSEXT_LEVEL", merged: true,
		host:   map[string]string{"usr/lib/os-release": "ID=debian\nVERSION_ID=12\nSYSEXT_LEVEL=1.0\n", "usr/bin/host": "host\n"},
		images: []fixture{{at: "var/lib/extensions/lvl.raw", files: with(release("lvl", "ID=debian\nSYSEXT_LEVEL=1.0\n"), "usr/bin/lvl", "lvl\n")}}},
	{name: "ARCHITECTURE mismatch", merged: false, images: []fixture{
		{at: "var/lib/extensions/s390.raw", files: with(release("s390", "ID=_any\nARCHITECTURE=s390x\n"), "usr/bin/s390", "s\n")}}},
	{name: "SYSEXT_SCOPE=initrd", merged: false, images: []fixture{
		{at: "var/lib/extensions/early.raw", files: with(release("early", "ID=_any\nSYSEXT_SCOPE=initrd\n"), "usr/bin/early", "e\n")}}},
	{name: "image holding usr/lib/os-release", merged: false, images: []fixture{
		{at: "var/lib/extensions/osr.raw", files: anyExt("osr", "usr/lib/os-release", "ID=evil\n")}}},
	{name: "name mismatch", merged: false, images: []fixture{
		{at: "var/lib/extensions/foo.raw", files: anyExt("bar", "usr/bin/bar", "bar\n")}}},
	{name: "name mismatch with strict=0", merged: true, images: []fixture{
		{at: "var/lib/extensions/foo.raw", relaxed: true, files: anyExt("bar", "usr/bin/bar", "bar\n")}}},
	{name: "directory image", merged: true, images: []fixture{
		{at: "run/extensions/tree", files: anyExt("tree", "usr/bin/tree", "tree\n", "usr/share/tree/", "")}}},
	{name: "opt content", merged: true, images: []fixture{
		{at: "var/lib/extensions/opt.raw", files: anyExt("opt", "opt/tool/bin/tool", "tool\n")}}},
	{name: "only metadata in usr", merged: true, images: []fixture{
		{at: "var/lib/extensions/meta.raw", files: anyExt("meta")}}},
	{name: "host without usr payload", merged: true,
		host:   map[string]string{"etc/os-release": "ID=debian\nVERSION_ID=12\n", "usr/": ""},
		images: []fixture{{at: "var/lib/extensions/hello.raw", files: anyExt("hello", "usr/bin/hello", "hello\n")}}},
	{name: "erofs image", merged: true, images: []fixture{
		{at: "var/lib/extensions/ero.raw", erofs: true, files: anyExt("ero", "usr/bin/ero", "ero\n")}}},
	{name: "no images at all", merged: false},
	{name: "ID_LIKE", merged: true,
		host:   map[string]string{"etc/os-release": "ID=mydistro\nID_LIKE=debian\nVERSION_ID=12\n", "usr/bin/host": "host\n"},
		images: []fixture{{at: "var/lib/extensions/deb.raw", files: with(release("deb", "ID=debian\nVERSION_ID=12\n"), "usr/bin/deb", "deb\n")}},
		// systemd 257 matches ID against the host's ID_LIKE too; 252 does
		// not. The oracle's copy of the host says ID=debian instead (in
		// /etc, outside the compared tree): the same merge in 252's terms.
		oracleFix: func(root string) {
			if err := os.WriteFile(filepath.Join(root, "etc/os-release"), []byte("ID=debian\nVERSION_ID=12\n"), 0o644); err != nil {
				panic(err)
			}
		}},
	{name: "broken image beside a good one", merged: true, images: []fixture{
		{at: "var/lib/extensions/good.raw", files: anyExt("good", "usr/bin/good", "good\n")},
		{at: "var/lib/extensions/bad.raw", files: nil}},
		// In systemd 252 one image that fails to dissect aborts the whole
		// merge; 257 (and bakery) skip it and merge the rest. The oracle's
		// copy has the broken image removed.
		oracleFix: func(root string) { os.Remove(filepath.Join(root, "var/lib/extensions/bad.raw")) }},
}

// buildRoot writes a scenario's root below dir.
func buildRoot(t *testing.T, dir string, sc scenario) {
	t.Helper()
	host := sc.host
	if host == nil {
		host = debianHost
	}
	writeFiles(t, dir, host)
	for _, img := range sc.images {
		p := filepath.Join(dir, img.at)
		switch {
		case img.files == nil:
			mkfile(t, p, "this is not a file system image\n")
		case strings.HasSuffix(img.at, ".raw"):
			buildImage(t, p, img.erofs, img.relaxed, img.files)
		default:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			writeFiles(t, p, img.files)
		}
	}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	for name, content := range files {
		p := filepath.Join(dir, name)
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		mkfile(t, p, content)
	}
}

func mkfile(t *testing.T, p, content string) {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// buildImage builds a squashfs (or erofs) image of files at p. t may be nil
// (from an oracleFix), then failures panic.
func buildImage(t *testing.T, p string, erofs, relaxed bool, files map[string]string) {
	src, err := os.MkdirTemp("", "bakery-merge-src-")
	if err == nil {
		defer os.RemoveAll(src)
		writeFiles(t, src, files)
		err = os.MkdirAll(filepath.Dir(p), 0o755)
	}
	if err == nil && relaxed {
		matches, _ := filepath.Glob(filepath.Join(src, sysext.Sysext.ReleaseDir, "extension-release.*"))
		for _, m := range matches {
			if err = unix.Lsetxattr(m, sysext.StrictXattr, []byte("0"), 0); err != nil {
				break
			}
		}
	}
	if err == nil {
		os.Remove(p)
		cmd := exec.Command("mksquashfs", src, p, "-all-root", "-noappend", "-quiet", "-no-progress")
		if erofs {
			cmd = exec.Command("mkfs.erofs", "--all-root", "-T0", p, src)
		}
		if out, cerr := cmd.CombinedOutput(); cerr != nil {
			err = fmt.Errorf("%s: %w: %s", cmd.Path, cerr, out)
		}
	}
	if err != nil {
		if t == nil {
			panic(err)
		}
		t.Fatalf("build image %s: %v", p, err)
	}
}

// outcome is what a merger did to a root, in the oracle's words.
type outcome struct {
	status      string
	hierarchies []string // "hierarchy /usr b10,b9"
	extensions  string   // "extensions b9,b10"
	tree        string   // "tree HASH"
}

// parseOracle reads sysext-oracle's output.
func parseOracle(out string) outcome {
	var o outcome
	for _, l := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(l, "status "):
			o.status = strings.TrimPrefix(l, "status ")
		case strings.HasPrefix(l, "hierarchy "):
			o.hierarchies = append(o.hierarchies, l)
		case strings.HasPrefix(l, "extensions "):
			o.extensions = l
		case strings.HasPrefix(l, "tree "):
			o.tree = l
		}
	}
	slices.Sort(o.hierarchies)
	return o
}

// TestOracle merges every scenario with bakery and with systemd-sysext
// (through ../shared/tools/sysext-oracle) on identical roots and compares
// the status, the stacking order per hierarchy, the extensions marker and
// the merged tree. Differences between systemd 252 and the 257 rules are
// bridged by each scenario's oracleFix. Note: the oracle's tree listing
// skips usr/.systemd-sysext but not opt/.systemd-sysext, whose dev file
// holds the overlay's anonymous device number; both mergers get the same
// number here because the kernel hands out the lowest free one and the two
// merges run one after the other with the same mounts in between.
func TestOracle(t *testing.T) {
	oracle := oraclePath(t)
	if oracle == "" {
		t.Skip("needs ../shared/tools/sysext-oracle")
	}
	if !inNamespace(t, "systemd-sysext", "mkfs.erofs") {
		return
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			base := t.TempDir()
			ours, theirs := filepath.Join(base, "bakery"), filepath.Join(base, "oracle")
			buildRoot(t, ours, sc)
			if out, err := exec.Command("cp", "-a", ours, theirs).CombinedOutput(); err != nil {
				t.Fatalf("copy root: %v: %s", err, out)
			}
			if sc.oracleFix != nil {
				sc.oracleFix(theirs)
			}
			out, err := exec.Command(oracle, theirs).CombinedOutput()
			if err != nil {
				t.Fatalf("sysext-oracle: %v\n%s", err, out)
			}
			want := parseOracle(string(out))

			got := mergeAndDescribe(t, oracle, ours)
			t.Logf("oracle:\n%sbakery: %+v", out, got)
			if wantStatus := map[bool]string{true: "ok", false: "not-merged"}[sc.merged]; got.status != wantStatus || want.status != wantStatus {
				t.Fatalf("status: bakery %q, systemd-sysext %q, want %q", got.status, want.status, wantStatus)
			}
			if !slices.Equal(got.hierarchies, want.hierarchies) {
				t.Errorf("hierarchies: bakery %q, systemd-sysext %q", got.hierarchies, want.hierarchies)
			}
			if got.extensions != want.extensions {
				t.Errorf("extensions marker: bakery %q, systemd-sysext %q", got.extensions, want.extensions)
			}
			if got.tree != want.tree {
				t.Errorf("merged tree: bakery %q, systemd-sysext %q", got.tree, want.tree)
			}
			checkClean(t, base)
		})
	}
}

// mergeAndDescribe merges root with bakery, describes the result as the
// oracle would (its --tree line on the merged root) and unmerges.
func mergeAndDescribe(t *testing.T, oracle, root string) outcome {
	t.Helper()
	res, err := Merge(Options{Root: root})
	if err != nil {
		t.Fatalf("merge: %v", err)
	}
	for _, r := range res.Refused {
		t.Logf("refused: %s", r)
	}
	o := outcome{status: "not-merged"}
	if len(res.Hierarchies) == 0 {
		return o
	}
	o.status = "ok"
	for h, names := range res.Hierarchies {
		o.hierarchies = append(o.hierarchies, "hierarchy "+h+" "+strings.Join(names, ","))
	}
	slices.Sort(o.hierarchies)
	if data, err := os.ReadFile(filepath.Join(root, "usr", sysext.Sysext.Marker, sysext.Sysext.MarkerList)); err == nil {
		o.extensions = "extensions " + strings.Join(splitLines(string(data)), ",")
	}
	out, err := exec.Command(oracle, "--tree", root).Output()
	if err != nil {
		t.Errorf("sysext-oracle --tree: %v", err)
	}
	o.tree = strings.TrimSpace(string(out))
	if _, err := Unmerge(Options{Root: root}); err != nil {
		t.Errorf("unmerge: %v", err)
	}
	return o
}
