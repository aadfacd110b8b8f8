package bakery

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sysext-bakery/bakery/internal/fixture"
	"github.com/sysext-bakery/bakery/recipes"
	"github.com/sysext-bakery/bakery/sources"
	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/formats"
	"github.com/sysext-bakery/bakery/sysext/inspect"
	"github.com/sysext-bakery/bakery/sysext/squashfs"
	"github.com/sysext-bakery/bakery/sysext/tree"
)

func TestBakeIsReproducible(t *testing.T) {
	for _, tb := range testBuilders {
		t.Run(tb.format.Name()+"/"+tb.builder.Name(), func(t *testing.T) {
			if tb.builder.Name() != "native" {
				needTool(t, tb.builder.Name())
			}
			var sums [2][]string
			for i, umask := range []int{0o022, 0o077} {
				r := helloRecipe(t)
				// Different mtimes on every source file, different umask.
				when := time.Unix(int64(1000000000+i*12345), 0)
				filepath.Walk(filepath.Dir(r.Path), func(p string, _ os.FileInfo, _ error) error {
					return os.Chtimes(p, when, when)
				})
				old := syscall.Umask(umask)
				res, err := Bake(bakeCtx, r, bakeOptions(t, t.TempDir(), tb.builder, tb.format))
				syscall.Umask(old)
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Images) != 2 {
					t.Fatalf("baked %d images, want 2 (x86-64, arm64)", len(res.Images))
				}
				for _, img := range res.Images {
					data, err := os.ReadFile(img.Path)
					if err != nil {
						t.Fatal(err)
					}
					if got := sha256Hex(data); got != img.SHA256 {
						t.Errorf("%s: Result says sha256 %s, file has %s", img.Path, img.SHA256, got)
					}
					sums[i] = append(sums[i], filepath.Base(img.Path)+" "+img.SHA256)
				}
				checkSums(t, res)
			}
			if !slices.Equal(sums[0], sums[1]) {
				t.Errorf("two bakes differ:\n%v\n%v", sums[0], sums[1])
			}
		})
	}
}

// checkSums runs `sha256sum -c` on a bake's SHA256SUMS.
func checkSums(t *testing.T, res *Result) {
	t.Helper()
	cmd := exec.Command("sha256sum", "-c", "--strict", filepath.Base(res.Checksums))
	cmd.Dir = filepath.Dir(res.Checksums)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("sha256sum -c: %v: %s", err, out)
	}
}

func TestMountedImageShowsStagedTree(t *testing.T) {
	needRoot(t)
	for _, tb := range testBuilders {
		t.Run(tb.format.Name()+"/"+tb.builder.Name(), func(t *testing.T) {
			if tb.builder.Name() != "native" {
				needTool(t, tb.builder.Name())
			}
			r := helloRecipe(t)
			opts := bakeOptions(t, t.TempDir(), tb.builder, tb.format)
			res, err := Bake(bakeCtx, r, opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, img := range res.Images {
				staged := stageLikeBake(t, r, img.Architecture, opts)
				want := listTree(t, staged) + "owners 0:0\n"
				got := listImage(t, img.Path, tb.format.KernelType())
				if got != want {
					t.Errorf("%s mounted:\n%s\nstaged:\n%s", filepath.Base(img.Path), got, want)
				}
				release, err := os.ReadFile(filepath.Join(staged, sysext.Sysext.ReleasePath("hello")))
				if err != nil {
					t.Fatal(err)
				}
				rel, err := sysext.ParseRelease(bytes.NewReader(release))
				if err != nil {
					t.Fatal(err)
				}
				if rel["ARCHITECTURE"] != img.Architecture || rel["ID"] != "_any" || rel["SYSEXT_LEVEL"] != "1.0" {
					t.Errorf("extension-release = %v", rel)
				}
			}
		})
	}
}

func TestOracleMergesHostArchAndRefusesOther(t *testing.T) {
	needRoot(t)
	oracle := filepath.Join(repoRoot(t), "..", "shared", "tools", "sysext-oracle")
	if _, err := os.Stat(oracle); err != nil {
		t.Skipf("%s is missing (it lives beside the repo in ../shared)", oracle)
	}
	needTool(t, "systemd-sysext")
	if sysext.HostArch().Name != "x86-64" {
		t.Skipf("host is %s; the test merges an x86-64 image", sysext.HostArch().Name)
	}
	r := helloRecipe(t)
	res, err := Bake(bakeCtx, r, bakeOptions(t, t.TempDir(), squashfs.Builder{}, squashfsFormat))
	if err != nil {
		t.Fatal(err)
	}
	const osRelease = "ID=flatcar\nVERSION_ID=4081.2.0\nSYSEXT_LEVEL=1.0\n"
	host, err := sysext.ParseRelease(strings.NewReader(osRelease))
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range res.Images {
		t.Run(img.Architecture, func(t *testing.T) {
			root := t.TempDir()
			for _, d := range []string{"etc", "usr/bin", "usr/lib", "var/lib/extensions"} {
				os.MkdirAll(filepath.Join(root, d), 0o755)
			}
			os.WriteFile(filepath.Join(root, "etc/os-release"), []byte(osRelease), 0o644)
			os.WriteFile(filepath.Join(root, "usr/bin/host-tool"), []byte("host\n"), 0o755)
			data, err := os.ReadFile(img.Path)
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(root, "var/lib/extensions/hello.raw"), data, 0o644)
			out, err := exec.Command(oracle, root).CombinedOutput()
			if err != nil {
				t.Fatalf("sysext-oracle: %v: %s", err, out)
			}
			merged := strings.Contains(string(out), "status ok") && strings.Contains(string(out), "hierarchy /usr hello")
			switch img.Architecture {
			case "x86-64":
				if !merged {
					t.Errorf("systemd-sysext did not merge the x86-64 image:\n%s", out)
				}
			default:
				// systemd 252 says only "incompatible"; the x86-64 image of the
				// same recipe differs only in ARCHITECTURE, and our Match names it.
				if merged || !strings.Contains(string(out), "incompatible") {
					t.Errorf("systemd-sysext should refuse the %s image as incompatible:\n%s", img.Architecture, out)
				}
				info, err := inspect.Image(img.Path)
				if err != nil {
					t.Fatal(err)
				}
				var ie *sysext.IncompatibleError
				if err := sysext.Sysext.Match(info.Release, host, "system", "x86-64"); !errors.As(err, &ie) || ie.Field != "ARCHITECTURE" {
					t.Errorf("Match = %v, want an ARCHITECTURE mismatch", err)
				}
			}
		})
	}
}

func TestBakeFetchesOverHTTPAndCaches(t *testing.T) {
	needTool(t, "unsquashfs")
	tool := []byte("#!/bin/sh\necho tool\n")
	archive := tarGz(t,
		tarEntry{hdr: tar.Header{Name: "pkg-1/", Typeflag: tar.TypeDir, Mode: 0o755}},
		tarEntry{hdr: tar.Header{Name: "pkg-1/bin/a", Typeflag: tar.TypeReg, Mode: 0o755}, body: "a\n"},
		tarEntry{hdr: tar.Header{Name: "pkg-1/bin/b", Typeflag: tar.TypeReg, Mode: 0o755}, body: "b\n"},
		tarEntry{hdr: tar.Header{Name: "pkg-1/README", Typeflag: tar.TypeReg}, body: "readme\n"},
	)
	srv := fixture.Serve(t, map[string][]byte{
		"/tool":       tool,
		"/pkg.tar.gz": archive,
		"/SHA256SUMS": []byte(fmt.Sprintf("%s  other.tar.gz\n%s  pkg.tar.gz\n", strings.Repeat("0", 64), sha256Hex(archive))),
	})
	r := writeRecipe(t, fmt.Sprintf(`name: tools
version: "2.0"
arches: [x86-64]
sources:
  - url: %[1]s/tool
    sha256: {x86-64: %[2]s}
    install: {to: /usr/bin/tool, mode: "0755"}
  - url: %[1]s/pkg.tar.gz
    sha256-url: %[1]s/SHA256SUMS
    extract: {strip-components: 1, include: ["bin/*"], to: /usr/libexec/pkg}
`, srv.URL, sha256Hex(tool)), nil)
	opts := bakeOptions(t, t.TempDir(), squashfs.Builder{}, squashfsFormat)
	res, err := Bake(bakeCtx, r, opts)
	if err != nil {
		t.Fatal(err)
	}
	img := res.Images[0].Path
	out, err := exec.Command("unsquashfs", "-lls", img).CombinedOutput()
	if err != nil {
		t.Fatalf("unsquashfs: %v: %s", err, out)
	}
	for _, want := range []string{"-rwxr-xr-x root/root                20 2023-11-14 22:13 squashfs-root/usr/bin/tool", "squashfs-root/usr/libexec/pkg/bin/a", "squashfs-root/usr/libexec/pkg/bin/b", "squashfs-root/usr/lib/extension-release.d/extension-release.tools"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("image lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "README") {
		t.Errorf("include [bin/*] let README through:\n%s", out)
	}
	// A rebuild with the same inputs downloads nothing and gives the same bytes.
	before := srv.Requests.Load()
	opts.OutDir = t.TempDir()
	again, err := Bake(bakeCtx, r, opts)
	if err != nil {
		t.Fatal(err)
	}
	if n := srv.Requests.Load() - before; n != 0 {
		t.Errorf("rebuild made %d requests, want 0 (cache)", n)
	}
	if again.Images[0].SHA256 != res.Images[0].SHA256 {
		t.Errorf("rebuild gave sha256 %s, first bake %s", again.Images[0].SHA256, res.Images[0].SHA256)
	}
}

func TestWrongDigestFailsBeforeStaging(t *testing.T) {
	srv := fixture.Serve(t, map[string][]byte{"/tool": []byte("evil\n")})
	r := writeRecipe(t, fmt.Sprintf(`name: tools
version: "2.0"
arches: [x86-64]
sources:
  - files: files/
  - url: %s/tool
    sha256: %s
    install: {to: /usr/bin/tool}
`, srv.URL, sha256Hex([]byte("good\n"))), map[string]string{"files/usr/share/doc/x": "x\n"})
	b, err := r.Expand("", "x86-64")
	if err != nil {
		t.Fatal(err)
	}
	stage := t.TempDir()
	f := &sources.Fetcher{Cache: sources.Cache{Dir: t.TempDir()}}
	err = Stage(bakeCtx, b, stage, Options{Fetcher: f})
	if !errors.Is(err, sources.ErrDigestMismatch) {
		t.Fatalf("err = %v, want a sha256 mismatch", err)
	}
	if !strings.Contains(err.Error(), "source 2") || !strings.Contains(err.Error(), srv.URL+"/tool") {
		t.Errorf("error %q does not name the source and URL", err)
	}
	if ents, _ := os.ReadDir(stage); len(ents) != 0 {
		t.Errorf("staged %d entries before the digest check failed", len(ents))
	}
	if ents, _ := os.ReadDir(filepath.Join(f.Cache.Dir, "blobs", "sha256")); len(ents) != 0 {
		t.Errorf("cache kept %d unverified files", len(ents))
	}
}

func TestHostileArchivesAreRefused(t *testing.T) {
	reg := func(name, body string) tarEntry {
		return tarEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeReg}, body: body}
	}
	cases := []struct {
		name    string
		entries []tarEntry
		want    string
	}{
		{"dot-dot", []tarEntry{reg("usr/../../x", "x")}, ".."},
		{"absolute", []tarEntry{reg("/etc/passwd", "root::0:0::/:/bin/sh\n")}, "/etc/passwd"},
		{"symlink then file through it", []tarEntry{
			{hdr: tar.Header{Name: "usr/evil", Typeflag: tar.TypeSymlink, Linkname: "/"}},
			reg("usr/evil/etc/passwd", "x"),
		}, "usr/evil"},
		{"hard link outside", []tarEntry{{hdr: tar.Header{Name: "usr/passwd", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"}}}, "/etc/passwd"},
		{"device node", []tarEntry{{hdr: tar.Header{Name: "usr/sda", Typeflag: tar.TypeBlock, Devmajor: 8}}}, "usr/sda"},
		{"1 TB sparse claim", []tarEntry{{hdr: tar.Header{Name: "usr/huge", Typeflag: tar.TypeReg, Size: 1 << 40}}}, "usr/huge"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			archive := tarGz(t, c.entries...)
			r := archiveRecipe(t, "evil", archive, "{}", "", nil)
			parent := t.TempDir()
			out := filepath.Join(parent, "out")
			os.MkdirAll(out, 0o755)
			os.WriteFile(filepath.Join(out, "SHA256SUMS"), []byte(strings.Repeat("a", 64)+"  old.raw\n"), 0o644)
			os.WriteFile(filepath.Join(out, "old.raw"), []byte("old"), 0o644)
			before := snapshot(t, parent)
			opts := bakeOptions(t, out, squashfs.Builder{}, squashfsFormat)
			_, err := Bake(bakeCtx, r, opts)
			if err == nil {
				t.Fatal("hostile archive was baked")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not name %q", err, c.want)
			}
			if origin := r.Sources[0].URL + ": member"; !strings.Contains(err.Error(), origin) || strings.Contains(err.Error(), opts.Fetcher.Cache.Dir) {
				t.Errorf("error %q does not start the archive's part with %q, or names the cache", err, origin)
			}
			if after := snapshot(t, parent); !slices.Equal(before, after) {
				t.Errorf("output changed:\nbefore %v\nafter  %v", before, after)
			}
			if _, err := os.Lstat(filepath.Join(parent, "x")); err == nil {
				t.Error("a file was written outside the staging root")
			}
		})
	}
}

func TestInstallErrorNamesTheURL(t *testing.T) {
	srv := fixture.Serve(t, map[string][]byte{"/tool": []byte("tool\n")})
	r := writeRecipe(t, fmt.Sprintf(`name: x
version: "1"
arches: [x86-64]
sources:
  - files: files/
  - url: %s/tool
    sha256: %s
    install: {to: /usr/bin/tool}
`, srv.URL, sha256Hex([]byte("tool\n"))), nil)
	os.MkdirAll(filepath.Join(r.Dir(), "files", "usr"), 0o755)
	os.Symlink("/tmp", filepath.Join(r.Dir(), "files", "usr", "bin"))
	opts := bakeOptions(t, t.TempDir(), squashfs.Builder{}, squashfsFormat)
	_, err := Bake(bakeCtx, r, opts)
	want := "recipe.yaml:8: source 2 install: " + srv.URL + "/tool: "
	if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), opts.Fetcher.Cache.Dir) {
		t.Errorf("err = %v, want one saying %q and not naming the cache", err, want)
	}
}

// stepRecorder keeps a bake's progress steps.
type stepRecorder []string

func (s *stepRecorder) Step(arch, step, detail string) {
	*s = append(*s, arch+" "+step+": "+detail)
}

func TestBakeShowsAllowedForeignELF(t *testing.T) {
	r := writeRecipe(t, `name: fw
version: "1"
arches: [x86-64, arm64]
sources:
  - files: files/
validate:
  foreign-elf:
    - path: /usr/lib/firmware/*
      reason: firmware for the NIC's microcontroller
`, map[string]string{"files/usr/lib/firmware/nic/fw.elf": string(fixture.ELF(elf.ELFCLASS32, elf.ELFDATA2LSB, elf.ET_EXEC, elf.EM_ARM))})
	var steps stepRecorder
	opts := bakeOptions(t, t.TempDir(), squashfs.Builder{}, squashfsFormat)
	opts.Progress = &steps
	if _, err := Bake(bakeCtx, r, opts); err != nil {
		t.Fatal(err)
	}
	for _, arch := range []string{"x86-64", "arm64"} {
		want := arch + " foreign-elf: /usr/lib/firmware/nic/fw.elf, built for arm, allowed by " + r.Path + ":8: firmware for the NIC's microcontroller"
		if !slices.Contains(steps, want) {
			t.Errorf("progress lacks %q:\n%s", want, strings.Join(steps, "\n"))
		}
	}
}

// TestStreamedBakeEqualsStagedBuild bakes, with the default builder of
// each format, an archive whose members come in walk order, and then a
// file of the next source that comes before the archive's last file,
// which is held back for that (the native squashfs image is written while
// they are staged), the same archive in
// another order (written again from the staged tree once the order is
// found wrong), and checks each image is byte-identical to what image
// create's path (WriteImage of the staged directory) writes.
func TestStreamedBakeEqualsStagedBuild(t *testing.T) {
	reg := func(name, body string, mode int64) tarEntry {
		return tarEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode}, body: body}
	}
	members := []tarEntry{
		{hdr: tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755}},
		reg("bin/a", strings.Repeat("alpha ", 40000), 0o755),
		reg("bin/b", strings.Repeat("beta ", 30), 0o755),
		{hdr: tar.Header{Name: "bin/c", Typeflag: tar.TypeSymlink, Linkname: "a"}},
		reg("bin/d", strings.Repeat("alpha ", 40000), 0o755),
		{hdr: tar.Header{Name: "bin/e", Typeflag: tar.TypeLink, Linkname: "bin/b"}},
		reg("bin/empty", "", 0o644),
		{hdr: tar.Header{Name: "bin/locked/", Typeflag: tar.TypeDir, Mode: 0o500}},
		reg("bin/locked/f", "in a directory its owner cannot write", 0o644),
		reg("bin/sparse", strings.Repeat("\x00", 1<<20)+"end", 0o644),
		reg("share/doc", "docs", 0o644),
	}
	// bin/a after bin/d, when bin/b, handed out for bin/d, is already in
	// the image
	swapped := slices.Concat(members[:1], members[2:5], members[1:2], members[5:])
	for _, name := range []string{"squashfs", "erofs", "ddi"} {
		format, _ := formats.ByName(name)
		builder := format.Builders()[0]
		t.Run(name, func(t *testing.T) {
			for i, order := range [][]tarEntry{members, swapped} {
				archive := tarGz(t, order...)
				r := archiveRecipe(t, "order", archive, "{to: /usr}", "  - files: files/\n", map[string]string{"files/usr/lib/systemd/system/order.service": "[Unit]\n"})
				var steps stepRecorder
				opts := bakeOptions(t, t.TempDir(), builder, format)
				opts.Build.AllRoot = false
				opts.Progress = &steps
				res, err := Bake(bakeCtx, r, opts)
				if err != nil {
					t.Fatal(err)
				}
				_, streams := builder.(sysext.StreamBuilder)
				again := slices.ContainsFunc(steps, func(s string) bool { return strings.Contains(s, "not in walk order") })
				if want := streams && i == 1; again != want {
					t.Errorf("built again: %v, want %v:\n%s", again, want, strings.Join(steps, "\n"))
				}

				staged := stageLikeBake(t, r, "x86-64", opts)
				out, err := WriteImage(bakeCtx, builder, staged, filepath.Join(t.TempDir(), "img.raw"), opts.Build)
				if err != nil {
					t.Fatal(err)
				}
				if err := out.Digest(); err != nil {
					t.Fatal(err)
				}
				if out.SHA256 != res.Images[0].SHA256 {
					t.Errorf("order %d: baked %s, image create of the staged tree %s", i, res.Images[0].SHA256, out.SHA256)
				}
				out.Abort()
			}
		})
	}
}

// TestBakeCancelled cancels a bake at the step that starts the native
// squashfs builder beside the staging, so both start under a cancelled
// context: Bake fails with the cancellation, both stop (no goroutine of
// either is left) and nothing is left in the output directory. A stop in
// the middle of the work is TestUnpackStopsWhenCancelled's (stage) and
// TestBuilderCancel's (tree).
func TestBakeCancelled(t *testing.T) {
	var files []tarEntry
	for i := range 200 {
		files = append(files, tarEntry{hdr: tar.Header{Name: fmt.Sprintf("share/f%03d", i), Typeflag: tar.TypeReg}, body: strings.Repeat(fmt.Sprint(i), 5000)})
	}
	archive := tarGz(t, files...)
	r := archiveRecipe(t, "cancelled", archive, "{to: /usr}", "", nil)
	out := t.TempDir()
	opts := bakeOptions(t, out, squashfs.Builder{}, squashfsFormat)
	ctx, cancel := context.WithCancel(bakeCtx)
	defer cancel()
	opts.Progress = cancelAt{"as the sources are staged", cancel}
	if _, err := Bake(ctx, r, opts); !errors.Is(err, context.Canceled) {
		t.Fatalf("Bake = %v, want it cancelled", err)
	}
	if left, _ := os.ReadDir(out); len(left) != 0 {
		t.Errorf("the output directory holds %v", left)
	}
	buf := make([]byte, 1<<20)
	for _, fn := range []string{"bakery.stageAndBuild", "squashfs.", "tree.(*Builder)"} {
		if stacks := string(buf[:runtime.Stack(buf, true)]); strings.Contains(stacks, fn) {
			t.Errorf("a goroutine in %s is left:\n%s", fn, stacks)
		}
	}
}

// cancelAt is a Progress that cancels when a step's detail holds its
// text.
type cancelAt struct {
	text   string
	cancel context.CancelFunc
}

func (c cancelAt) Step(arch, step, detail string) {
	if strings.Contains(detail, c.text) {
		c.cancel()
	}
}

// TestSourceShippingTheReleaseIsRefused bakes an archive that ships the
// extension-release file bakery writes.
func TestSourceShippingTheReleaseIsRefused(t *testing.T) {
	archive := tarGz(t, tarEntry{hdr: tar.Header{Name: "usr/lib/extension-release.d/extension-release.ships", Typeflag: tar.TypeReg}, body: "ID=_any\n"})
	r := archiveRecipe(t, "ships", archive, "{}", "", nil)
	_, err := Bake(bakeCtx, r, bakeOptions(t, t.TempDir(), squashfs.Builder{}, squashfsFormat))
	if want := "usr/lib/extension-release.d/extension-release.ships: a source already ships this file"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want one saying %q", err, want)
	}
}

// stageLikeBake stages r's build for arch into a new directory as bake
// does (release file first, then the sources) and returns it, for tests
// that compare an image with what image create makes of the staged tree.
func stageLikeBake(t *testing.T, r *recipes.Recipe, arch string, opts Options) string {
	t.Helper()
	build, err := r.Expand("", arch)
	if err != nil {
		t.Fatal(err)
	}
	staged := t.TempDir()
	os.Chmod(staged, 0o755)
	if _, err := writeRelease(build, staged, tree.NewBuilder(staged, 0, 0)); err != nil {
		t.Fatal(err)
	}
	if err := Stage(bakeCtx, build, staged, opts); err != nil {
		t.Fatal(err)
	}
	return staged
}

// TestBakeRemovesStaging bakes into a private $TMPDIR, where bake stages,
// with each kind of builder, and checks that nothing is left there once
// Bake returns, whether it succeeded or failed (a foreign executable
// refused by validation, a source shipping the release file).
func TestBakeRemovesStaging(t *testing.T) {
	arm := string(fixture.ELF(elf.ELFCLASS64, elf.ELFDATA2LSB, elf.ET_EXEC, elf.EM_AARCH64))
	cases := []struct {
		name  string
		files map[string]string
		error string
	}{
		{"baked", map[string]string{"files/usr/bin/tool": "#!/bin/sh\n"}, ""},
		{"refused by validation", map[string]string{"files/usr/bin/tool": arm}, "/usr/bin/tool: ELF binary"},
		{"refused while staged", map[string]string{"files/usr/lib/extension-release.d/extension-release.left": "ID=_any\n"}, "a source already ships this file"},
	}
	for _, name := range []string{"squashfs", "erofs", "ddi"} {
		format, _ := formats.ByName(name)
		builder := format.Builders()[0]
		for _, c := range cases {
			t.Run(name+"/"+c.name, func(t *testing.T) {
				tmp := t.TempDir()
				t.Setenv("TMPDIR", tmp)
				r := writeRecipe(t, "name: left\nversion: \"1\"\narches: [x86-64]\nsources:\n  - files: files/\n", c.files)
				_, err := Bake(bakeCtx, r, bakeOptions(t, t.TempDir(), builder, format))
				switch {
				case c.error == "" && err != nil:
					t.Fatal(err)
				case c.error != "" && (err == nil || !strings.Contains(err.Error(), c.error)):
					t.Fatalf("err = %v, want one saying %q", err, c.error)
				}
				if left, _ := os.ReadDir(tmp); len(left) > 0 {
					t.Errorf("left in $TMPDIR: %v", left)
				}
			})
		}
	}
}
