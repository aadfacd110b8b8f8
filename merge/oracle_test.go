package merge

import (
	"cmp"
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

// release is an image's extension-release file (a sysext's).
func release(name, content string) map[string]string {
	return releaseOf(sysext.Sysext, name, content)
}

// releaseOf is the extension-release file of an image of class c.
func releaseOf(c sysext.Class, name, content string) map[string]string {
	return map[string]string{c.ReleasePath(name): content}
}

// with adds files to a file map.
func with(m map[string]string, kv ...string) map[string]string {
	m = maps.Clone(m)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// scenario is one root to merge with bakery and with systemd-sysext (or
// systemd-confext).
type scenario struct {
	name string
	// class is the image class merged; the zero Class is sysext.
	class sysext.Class
	// host is the root's files besides the images; default: a Debian 12
	// /usr/lib/os-release and a /usr/bin/host file (and /etc/host.conf
	// for confext).
	host   map[string]string
	images []fixture
	// merged is the expected status, checked for bakery and for each
	// systemd version that systemdDiffers does not list.
	merged bool
	// systemdDiffers maps a systemd version ("252", "257") to the status
	// it reaches on this root, unlike bakery: the test asserts it, then
	// fixOracle adapts that version's copy of the root so that the rest
	// can be compared (without fixOracle, nothing more is compared with
	// that version). The comment on each use says what differs and why.
	systemdDiffers map[string]string
	fixOracle      func(root string)
	// flat says that the images, listed lowest first, merge as their
	// files copied over the host's would: bakery's merge is compared with
	// flatOutcome too, which holds where systemd cannot merge.
	flat bool
}

// classOf is sc's class.
func (sc scenario) classOf() sysext.Class {
	if sc.class.Name == "" {
		return sysext.Sysext
	}
	return sc.class
}

var debianHost = map[string]string{
	"usr/lib/os-release": "ID=debian\nVERSION_ID=12\n",
	"usr/bin/host":       "host\n",
}

// confHost is the host of the confext scenarios: /etc has content of
// its own.
var confHost = with(debianHost, "etc/host.conf", "host\n", "etc/ssh/sshd_config", "host\n")

func anyExt(name string, kv ...string) map[string]string {
	return with(release(name, "ID=_any\n"), kv...)
}

// anyConf is a confext called name for any host, with files kv.
func anyConf(name string, kv ...string) map[string]string {
	return with(releaseOf(sysext.Confext, name, "ID=_any\n"), kv...)
}

// confWith is a confext called name whose extension-release is rel.
func confWith(name, rel string, kv ...string) map[string]string {
	return with(releaseOf(sysext.Confext, name, rel), kv...)
}

// manyExts are n images of class c, ext001 to extNNN, in its install
// directory, each holding a file of its own and its version of
// a file they all hold, so that the tree shows the stacking order: fleets
// merge 20 to 50 extensions, and one lowerdir option of fsconfig holds
// only about 15 layers.
func manyExts(c sysext.Class, n int) []fixture {
	top := c.Hierarchies[0] + "/many/"
	var images []fixture
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("ext%03d", i)
		images = append(images, fixture{
			at:    c.InstallDir + "/" + name + ".raw",
			files: with(releaseOf(c, name, "ID=_any\n"), top+name, name+"\n", top+"all", name+"\n"),
		})
	}
	return images
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
		// systemd 257 matches ID against the host's ID_LIKE too (added in
		// 256); 252 does not, and merges nothing. 252's copy of the host
		// says ID=debian instead (in /etc, outside the compared tree): the
		// same merge in 252's terms.
		systemdDiffers: map[string]string{"252": "not-merged"},
		fixOracle: func(root string) {
			if err := os.WriteFile(filepath.Join(root, "etc/os-release"), []byte("ID=debian\nVERSION_ID=12\n"), 0o644); err != nil {
				panic(err)
			}
		}},
	{name: "broken image beside a good one", merged: true, images: []fixture{
		{at: "var/lib/extensions/good.raw", files: anyExt("good", "usr/bin/good", "good\n")},
		{at: "var/lib/extensions/bad.raw", files: nil}},
		// In systemd, 252 and 257 alike, one image that fails to dissect
		// aborts the whole merge (257: "Failed to read metadata for image
		// bad: Package not installed"); bakery, by design (DESIGN.md, "On
		// the node"), reports and skips it and merges the rest. systemd's
		// copies have the broken image removed.
		systemdDiffers: map[string]string{"252": "not-merged", "257": "not-merged"},
		fixOracle:      func(root string) { os.Remove(filepath.Join(root, "var/lib/extensions/bad.raw")) }},
	{name: "usr/lib/extensions is no search directory", merged: false, images: []fixture{
		{at: "usr/lib/extensions/vendor.raw", files: anyExt("vendor", "usr/bin/vendor", "v\n")},
		{at: "usr/local/lib/extensions/local.raw", files: anyExt("local", "usr/bin/local", "l\n")}},
		// systemd 252 also merges images from /usr/lib/extensions and
		// /usr/local/lib/extensions; 257 does not (they lie below the very
		// /usr the merge covers), nor does bakery (the sysext class's
		// SearchDirs). 252's copy has them removed.
		systemdDiffers: map[string]string{"252": "ok"},
		fixOracle: func(root string) {
			os.RemoveAll(filepath.Join(root, "usr/lib/extensions"))
			os.RemoveAll(filepath.Join(root, "usr/local/lib/extensions"))
		}},

	{name: "14 extensions", merged: true, flat: true, images: manyExts(sysext.Sysext, 14)},
	{name: "50 extensions", merged: true, flat: true, images: manyExts(sysext.Sysext, 50)},
	{name: "128 extensions", merged: true, flat: true, images: manyExts(sysext.Sysext, 128),
		// systemd, 252 and 257 alike, mounts its overlay with mount(2),
		// all layers in one lowerdir option naming each by its path
		// (/run/systemd/sysext/extensions/NAME/usr, 41 bytes here), and
		// the kernel reads a page of options, 4096 bytes: about 95 layers.
		// Beyond, it merges nothing ("Failed to mount sysext (type
		// overlay)"); bakery is compared with flatOutcome alone.
		systemdDiffers: map[string]string{"252": "not-merged", "257": "not-merged"}},

	// Configuration extensions, against systemd-confext 257 (252 has none).
	{name: "confext: plain", class: sysext.Confext, merged: true, images: []fixture{
		{at: "var/lib/confexts/app.raw", files: anyConf("app", "etc/app/app.conf", "app\n")}}},
	{name: "confext: c10 above c9", class: sysext.Confext, merged: true, images: []fixture{
		{at: "var/lib/confexts/c9.raw", files: anyConf("c9", "etc/conflict.conf", "c9\n", "etc/host.conf", "c9 shadows host\n")},
		{at: "var/lib/confexts/c10.raw", files: anyConf("c10", "etc/conflict.conf", "c10\n")}}},
	{name: "confext: empty directory masks", class: sysext.Confext, merged: true, images: []fixture{
		{at: "run/confexts/foo", files: map[string]string{}},
		{at: "var/lib/confexts/foo.raw", files: anyConf("foo", "etc/foo.conf", "masked\n")},
		{at: "var/lib/confexts/bar.raw", files: anyConf("bar", "etc/bar.conf", "bar\n")}}},
	{name: "confext: run shadows var-lib", class: sysext.Confext, merged: true, images: []fixture{
		{at: "run/confexts/foo.raw", files: anyConf("foo", "etc/foo.conf", "from run\n")},
		{at: "var/lib/confexts/foo.raw", files: anyConf("foo", "etc/foo.conf", "from var\n")}}},
	{name: "confext: var-lib shadows usr-local-lib", class: sysext.Confext, merged: true, images: []fixture{
		{at: "var/lib/confexts/foo.raw", files: anyConf("foo", "etc/foo.conf", "from var\n")},
		{at: "usr/local/lib/confexts/foo.raw", files: anyConf("foo", "etc/foo.conf", "from usr/local\n")}}},
	{name: "confext: usr-local-lib shadows usr-lib", class: sysext.Confext, merged: true, images: []fixture{
		{at: "usr/local/lib/confexts/foo.raw", files: anyConf("foo", "etc/foo.conf", "from usr/local\n")},
		{at: "usr/lib/confexts/foo.raw", files: anyConf("foo", "etc/foo.conf", "from usr\n")},
		{at: "usr/lib/confexts/vendor.raw", files: anyConf("vendor", "etc/vendor.conf", "vendor\n")}}},
	// systemd-confext 257 does not search /etc/confexts (it would lie in
	// the very /etc it covers).
	{name: "confext: etc/confexts is no search directory", class: sysext.Confext, merged: false, images: []fixture{
		{at: "etc/confexts/foo.raw", files: anyConf("foo", "etc/foo.conf", "foo\n")}}},
	{name: "confext: ID and VERSION_ID match", class: sysext.Confext, merged: true, images: []fixture{
		{at: "var/lib/confexts/deb.raw", files: confWith("deb", "ID=debian\nVERSION_ID=12\n", "etc/deb.conf", "deb\n")}}},
	{name: "confext: VERSION_ID mismatch", class: sysext.Confext, merged: false, images: []fixture{
		{at: "var/lib/confexts/deb.raw", files: confWith("deb", "ID=debian\nVERSION_ID=11\n", "etc/deb.conf", "deb\n")}}},
	{name: "confext: CONFEXT_LEVEL match", class: sysext.Confext, merged: true,
		host:   with(confHost, "usr/lib/os-release", "ID=debian\nVERSION_ID=12\nCONFEXT_LEVEL=2\nSYSEXT_LEVEL=1\n"),
		images: []fixture{{at: "var/lib/confexts/lvl.raw", files: confWith("lvl", "ID=debian\nCONFEXT_LEVEL=2\n", "etc/lvl.conf", "lvl\n")}}},
	// The confext's level is compared with the host's CONFEXT_LEVEL,
	// never its SYSEXT_LEVEL.
	{name: "confext: CONFEXT_LEVEL mismatch", class: sysext.Confext, merged: false,
		host:   with(confHost, "usr/lib/os-release", "ID=debian\nVERSION_ID=12\nCONFEXT_LEVEL=2\nSYSEXT_LEVEL=1\n"),
		images: []fixture{{at: "var/lib/confexts/lvl.raw", files: confWith("lvl", "ID=debian\nCONFEXT_LEVEL=1\n", "etc/lvl.conf", "lvl\n")}}},
	{name: "confext: ARCHITECTURE mismatch", class: sysext.Confext, merged: false, images: []fixture{
		{at: "var/lib/confexts/s390.raw", files: confWith("s390", "ID=_any\nARCHITECTURE=s390x\n", "etc/s390.conf", "s\n")}}},
	{name: "confext: CONFEXT_SCOPE=initrd", class: sysext.Confext, merged: false, images: []fixture{
		{at: "var/lib/confexts/early.raw", files: confWith("early", "ID=_any\nCONFEXT_SCOPE=initrd\n", "etc/early.conf", "e\n")}}},
	// A confext's SYSEXT_SCOPE means nothing to systemd-confext.
	{name: "confext: SYSEXT_SCOPE=initrd is not its scope", class: sysext.Confext, merged: true, images: []fixture{
		{at: "var/lib/confexts/early.raw", files: confWith("early", "ID=_any\nSYSEXT_SCOPE=initrd\n", "etc/early.conf", "e\n")}}},
	// systemd-confext 257 merges only the image's etc/; its usr/ is
	// ignored, not refused.
	{name: "confext: image holding usr/ too", class: sysext.Confext, merged: true, images: []fixture{
		{at: "var/lib/confexts/both.raw", files: anyConf("both", "etc/both.conf", "both\n", "usr/bin/both", "ignored\n")}}},
	// systemd-confext 257 refuses an image holding usr/lib/os-release
	// (dissection takes it for an OS image: "No medium found"), as
	// bakery refuses it for every class.
	{name: "confext: image holding usr/lib/os-release", class: sysext.Confext, merged: false, images: []fixture{
		{at: "var/lib/confexts/osr.raw", files: anyConf("osr", "etc/osr.conf", "osr\n", "usr/lib/os-release", "ID=evil\n")}}},
	// ... but not one holding etc/os-release, which it merges over the
	// host's (only usr/lib/os-release is forbidden).
	{name: "confext: image holding etc/os-release", class: sysext.Confext, merged: true, images: []fixture{
		{at: "var/lib/confexts/eosr.raw", files: anyConf("eosr", "etc/os-release", "ID=debian\nVERSION_ID=12\n")}}},
	{name: "confext: a sysext in a confext directory", class: sysext.Confext, merged: false, images: []fixture{
		{at: "var/lib/confexts/sys.raw", files: anyExt("sys", "usr/bin/sys", "sys\n")}}},
	{name: "confext: directory image", class: sysext.Confext, merged: true, images: []fixture{
		{at: "run/confexts/tree", files: anyConf("tree", "etc/tree.conf", "tree\n", "etc/tree.d/", "")}}},
	{name: "confext: erofs image", class: sysext.Confext, merged: true, images: []fixture{
		{at: "var/lib/confexts/ero.raw", erofs: true, files: anyConf("ero", "etc/ero.conf", "ero\n")}}},
	{name: "confext: 50 extensions", class: sysext.Confext, merged: true, flat: true, images: manyExts(sysext.Confext, 50)},
}

// hostFiles are the files of sc's root besides its images.
func (sc scenario) hostFiles() map[string]string {
	switch {
	case sc.host != nil:
		return sc.host
	case sc.classOf().Name == sysext.Confext.Name:
		return confHost
	default:
		return debianHost
	}
}

// flatOutcome is what merging sc (a flat one) must show, found without
// overlayfs: the host's files and then every image's, lowest first,
// written into dir, described as the oracle describes a merge.
func flatOutcome(t *testing.T, oracle string, sc scenario, dir string) outcome {
	t.Helper()
	c := sc.classOf()
	writeFiles(t, dir, sc.hostFiles())
	var all []string
	holders := map[string][]string{}
	for _, img := range sc.images {
		name := strings.TrimSuffix(filepath.Base(img.at), ".raw")
		all = append(all, name)
		writeFiles(t, dir, img.files)
		for _, h := range c.Hierarchies {
			for f := range img.files {
				if strings.HasPrefix(f, h+"/") {
					holders[h] = append([]string{name}, holders[h]...)
					break
				}
			}
		}
	}
	o := outcome{status: "ok", extensions: "extensions " + strings.Join(all, ",")}
	for h, names := range holders {
		o.hierarchies = append(o.hierarchies, "hierarchy /"+h+" "+strings.Join(names, ","))
	}
	slices.Sort(o.hierarchies)
	o.tree = treeLine(t, oracle, c, dir)
	return o
}

// treeLine is the oracle's tree line of c's hierarchies under root.
func treeLine(t *testing.T, oracle string, c sysext.Class, root string) string {
	t.Helper()
	cmd := exec.Command(oracle, "--tree", root)
	cmd.Env = append(os.Environ(), "HIER="+strings.Join(c.Hierarchies, " "))
	out, err := cmd.Output()
	if err != nil {
		t.Errorf("sysext-oracle --tree: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// sameOutcome reports where bakery's outcome got differs from want, what
// the merger called by name did.
func sameOutcome(t *testing.T, got, want outcome, name string) {
	t.Helper()
	if !slices.Equal(got.hierarchies, want.hierarchies) {
		t.Errorf("hierarchies: bakery %q, %s %q", got.hierarchies, name, want.hierarchies)
	}
	if got.extensions != want.extensions {
		t.Errorf("marker list: bakery %q, %s %q", got.extensions, name, want.extensions)
	}
	if got.tree != want.tree {
		t.Errorf("merged tree: bakery %q, %s %q", got.tree, name, want.tree)
	}
}

// buildRoot writes a scenario's root below dir.
func buildRoot(t *testing.T, dir string, sc scenario) {
	t.Helper()
	writeFiles(t, dir, sc.hostFiles())
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
// (from a fixOracle), then failures panic.
func buildImage(t *testing.T, p string, erofs, relaxed bool, files map[string]string) {
	src, err := os.MkdirTemp("", "bakery-merge-src-")
	if err == nil {
		defer os.RemoveAll(src)
		writeFiles(t, src, files)
		err = os.MkdirAll(filepath.Dir(p), 0o755)
	}
	if err == nil && relaxed {
		var matches []string
		for _, c := range sysext.Classes() {
			m, _ := filepath.Glob(filepath.Join(src, c.ReleaseDir, "extension-release.*"))
			matches = append(matches, m...)
		}
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

// debian13Ready tells whether the Debian 13 root holding systemd 257, as
// ../shared/tools/debian13-root makes it, is there.
func debian13Ready() bool {
	dir := cmp.Or(os.Getenv("BAKERY_DEBIAN13"), "/var/cache/bakery-oracle/debian13")
	_, err := os.Stat(filepath.Join(dir, ".complete"))
	return err == nil
}

// runOracle merges root with systemd version (252, 257) through
// sysext-oracle, as the class's tool, and parses what it printed.
func runOracle(t *testing.T, oracle, version string, c sysext.Class, root string) (outcome, string) {
	t.Helper()
	args := []string{"--systemd", version}
	if c.Name == sysext.Confext.Name {
		args = append(args, "--confext")
	}
	out, err := exec.Command(oracle, append(args, root)...).CombinedOutput()
	if err != nil {
		t.Fatalf("sysext-oracle %q: %v\n%s", args, err, out)
	}
	return parseOracle(string(out)), string(out)
}

// TestOracle merges every scenario with bakery and with systemd-sysext or
// systemd-confext (through ../shared/tools/sysext-oracle), systemd 252
// (sysext only: 252 has no systemd-confext) and 257, on identical roots,
// and compares the status, the stacking order per hierarchy, the marker
// list and the merged tree. Where a version differs from bakery (252 from
// the 257 rules bakery follows, or both from a deliberate choice of
// bakery's), the test asserts that version's status on the root as it
// is, then compares on its copy adapted by the scenario's fixOracle.
// 257 runs from the Debian 13 root (../shared/tools/debian13-root); its
// subtests skip when that is not made. Note: the oracle's tree listing
// skips each hierarchy's marker directory.
func TestOracle(t *testing.T) {
	oracle := oraclePath(t)
	if !inNamespace(t, "systemd-sysext", "mkfs.erofs") {
		return
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			class := sc.classOf()
			base := t.TempDir()
			ours := filepath.Join(base, "bakery")
			buildRoot(t, ours, sc)
			copyRoot := func(name string) string {
				p := filepath.Join(base, name)
				if out, err := exec.Command("cp", "-a", ours, p).CombinedOutput(); err != nil {
					t.Fatalf("copy root: %v: %s", err, out)
				}
				return p
			}
			got := mergeAndDescribe(t, oracle, class, ours)
			t.Logf("bakery: %+v", got)
			wantStatus := map[bool]string{true: "ok", false: "not-merged"}[sc.merged]
			if got.status != wantStatus {
				t.Errorf("status: bakery %q, want %q", got.status, wantStatus)
			}
			for _, version := range []string{"252", "257"} {
				if version == "252" && class.Name != sysext.Sysext.Name {
					continue // 252 has no systemd-confext
				}
				if version == "257" && !debian13Ready() {
					t.Logf("systemd 257: skipped, no Debian 13 root (make it with ../shared/tools/debian13-root)")
					continue
				}
				theirs := copyRoot("systemd" + version)
				if differs, ok := sc.systemdDiffers[version]; ok {
					o, out := runOracle(t, oracle, version, class, theirs)
					if o.status != differs {
						t.Errorf("systemd %s on the root as is: status %q, want %q (the difference documented on the scenario)\n%s", version, o.status, differs, out)
					}
					os.RemoveAll(theirs)
					if sc.fixOracle == nil {
						continue
					}
					theirs = copyRoot("systemd" + version + "-fixed")
					sc.fixOracle(theirs)
				}
				want, out := runOracle(t, oracle, version, class, theirs)
				t.Logf("systemd %s:\n%s", version, out)
				if want.status != wantStatus {
					t.Errorf("status: systemd %s %q, want %q", version, want.status, wantStatus)
				}
				sameOutcome(t, got, want, "systemd "+version)
			}
			if sc.flat {
				sameOutcome(t, got, flatOutcome(t, oracle, sc, filepath.Join(base, "flat")), "files copied")
			}
			checkClean(t, base)
		})
	}
}

// mergeAndDescribe merges root's images of class c with bakery, describes
// the result as the oracle would (its --tree line on the merged root,
// over c's hierarchies), checks the mount options of every merged
// hierarchy and unmerges.
func mergeAndDescribe(t *testing.T, oracle string, c sysext.Class, root string) outcome {
	t.Helper()
	return mergeAndDescribeWith(t, oracle, Options{Root: root, Class: c})
}

// mergeAndDescribeWith is mergeAndDescribe with the merge's options.
func mergeAndDescribeWith(t *testing.T, oracle string, opts Options) outcome {
	t.Helper()
	root, c := opts.Root, opts.class()
	res, err := Merge(opts)
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
		checkMountOptions(t, filepath.Join(root, h), c)
	}
	slices.Sort(o.hierarchies)
	if data, err := os.ReadFile(filepath.Join(root, c.Hierarchies[0], c.Marker, c.MarkerList)); err == nil {
		o.extensions = "extensions " + strings.Join(splitLines(string(data)), ",")
	}
	o.tree = treeLine(t, oracle, c, root)
	if _, err := Unmerge(Options{Root: root, Class: c}); err != nil {
		t.Errorf("unmerge: %v", err)
	}
	return o
}

// checkMountOptions checks that the merge on dir is read-only and nodev,
// and nosuid and noexec for a class that asks for it (confext), as
// systemd mounts them.
func checkMountOptions(t *testing.T, dir string, c sysext.Class) {
	t.Helper()
	want := []string{"ro", "nodev"}
	if c.NoExec {
		want = append(want, "nosuid", "noexec")
	}
	data, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var opts []string
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) > 5 && f[4] == dir {
			opts = strings.Split(f[5], ",") // the last mount on dir is on top
		}
	}
	for _, w := range want {
		if !slices.Contains(opts, w) {
			t.Errorf("merge on %s is mounted %q, want %s among the options", dir, opts, w)
		}
	}
	if !c.NoExec && slices.Contains(opts, "noexec") {
		t.Errorf("merge on %s is mounted noexec: a %s's programs must run", dir, c)
	}
}
