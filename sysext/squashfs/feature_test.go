package squashfs

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/tree"
	"golang.org/x/sys/unix"
)

const sparseSize = 300 << 20

// makeFeatureTree creates, under dir, a tree with every file type and
// attribute squashfs stores. It needs root (devices, owners, trusted.*).
func makeFeatureTree(t *testing.T, dir string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	p := func(rel string) string { return filepath.Join(dir, rel) }
	mkdir := func(rel string, mode os.FileMode) {
		must(os.MkdirAll(p(rel), 0o755))
		must(os.Chmod(p(rel), mode))
	}
	file := func(rel string, data []byte, mode os.FileMode) {
		must(os.WriteFile(p(rel), data, 0o644))
		must(os.Chmod(p(rel), mode))
	}
	for _, d := range []string{"usr/bin", "usr/lib", "usr/share/empty-sub", "usr/dev", "usr/many", "usr/empty-dir", "opt/x"} {
		mkdir(d, 0o755)
	}
	mkdir("usr/tmp", 0o1777|os.ModeSticky)
	must(os.Chmod(p("usr/tmp"), 0o777|os.ModeSticky))
	file("usr/bin/suid-tool", []byte("#!/bin/sh\necho suid\n"), 0o755|os.ModeSetuid)
	file("usr/bin/sgid-tool", []byte("#!/bin/sh\necho sgid\n"), 0o755|os.ModeSetgid)
	file("usr/share/owned", []byte("owned by 1234:5678\n"), 0o640)
	must(os.Lchown(p("usr/share/owned"), 1234, 5678))
	must(os.Lchown(p("usr/share/empty-sub"), 1234, 5678))
	file("usr/share/old", []byte("old file\n"), 0o644)
	file("usr/share/empty1", nil, 0o644)
	file("usr/share/empty2", nil, 0o600)
	file("usr/share/"+strings.Repeat("n", 255), []byte("long name\n"), 0o644)
	file("usr/share/random", random(3*DefaultBlockSize+1234), 0o644)
	file("usr/share/random-copy", mustRead(t, p("usr/share/random")), 0o644)
	file("usr/share/exact-block", bytes.Repeat([]byte("b"), DefaultBlockSize), 0o644)
	file("usr/share/block-plus-one", bytes.Repeat([]byte("c"), DefaultBlockSize+1), 0o644)
	file("usr/lib/hl-a", []byte("hard linked\n"), 0o644)
	must(os.Link(p("usr/lib/hl-a"), p("usr/share/hl-b")))
	must(os.Symlink("../bin/suid-tool", p("usr/lib/rel-link")))
	must(os.Symlink("/usr/bin/suid-tool", p("usr/lib/abs-link")))
	must(os.Symlink("nowhere/missing", p("usr/lib/dangling")))
	for _, d := range []struct {
		name         string
		mode         uint32
		major, minor uint32
	}{
		{"null", unix.S_IFCHR | 0o666, 1, 3},
		{"minor300", unix.S_IFCHR | 0o600, 4, 300},
		{"blk", unix.S_IFBLK | 0o660, 8, 1},
		{"bigblk", unix.S_IFBLK | 0o660, 259, 70000},
		{"fifo", unix.S_IFIFO | 0o644, 0, 0},
	} {
		must(unix.Mknod(p("usr/dev/"+d.name), d.mode, int(unix.Mkdev(d.major, d.minor))))
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	must(err)
	must(unix.Bind(fd, &unix.SockaddrUnix{Name: p("usr/dev/socket")}))
	unix.Close(fd)
	// security.capability: version 2, effective, CAP_NET_BIND_SERVICE.
	capv2 := []byte{0x01, 0, 0, 0x02, 0, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	file("usr/bin/cap-tool", []byte("capable\n"), 0o755)
	for _, x := range []struct {
		path, name, value string
	}{
		{"usr/bin/cap-tool", "security.capability", string(capv2)},
		{"usr/bin/cap-tool", "user.comment", "has caps"},
		{"usr/share/owned", "trusted.overlay.opaque", "y"},
		{"usr/share/owned", "user.big", strings.Repeat("v", 3000)},
		{"usr/share", "user.dir", "a directory"},
		{"usr/lib/rel-link", "trusted.link", "on a symlink"},
		{"usr/dev/fifo", "trusted.fifo", "1"},
		{"usr/dev/null", "trusted.dev", "1"},
		{"usr/lib/hl-a", "user.same", "x"},
	} {
		must(unix.Lsetxattr(p(x.path), x.name, []byte(x.value), 0))
	}
	// A large sparse file: holes with a little data inside.
	f, err := os.Create(p("usr/share/sparse.img"))
	must(err)
	must(f.Truncate(sparseSize))
	_, err = f.WriteAt([]byte("data in the middle"), 100<<20)
	must(err)
	must(f.Close())
	for i := range 5000 {
		file(fmt.Sprintf("usr/many/entry-%05d", i), fmt.Appendf(nil, "content %d\n", i%700), 0o644)
	}
	// Times: an old file, a symlink, then directories last (children change them).
	old := time.Date(1990, 1, 2, 3, 4, 5, 0, time.UTC)
	must(os.Chtimes(p("usr/share/old"), old, old))
	must(unix.Lutimes(p("usr/lib/dangling"), []unix.Timeval{{Sec: 700000000}, {Sec: 700000000}}))
	must(os.Chtimes(p("usr/empty-dir"), old, old))
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// requireRoot skips a test that needs root, loop devices or a tool.
func requireRoot(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates devices, owners and trusted.* xattrs, and loop-mounts images")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (squashfs-tools / util-linux): %v", tool, err)
		}
	}
}

// dumpKernel loop-mounts img in a private mount namespace and dumps it
// through the kernel's squashfs driver, by re-running the test binary.
func dumpKernel(t *testing.T, img string) []string {
	t.Helper()
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skip("needs loop devices (/dev/loop-control)")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	mnt, out := t.TempDir(), filepath.Join(t.TempDir(), "dump")
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c",
		`mount -t squashfs -o loop,ro "$1" "$2" || exit 1; "$3" -test.run='^TestHelperDump$' -test.count=1; rc=$?; umount "$2" || rc=1; exit $rc`,
		"sh", img, mnt, self)
	cmd.Env = append(os.Environ(), "SQUASHFS_DUMP_DIR="+mnt, "SQUASHFS_DUMP_OUT="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kernel mount of %s: %v\n%s", img, err, b)
	}
	return strings.Split(strings.TrimSuffix(string(mustRead(t, out)), "\n"), "\n")
}

// dumpUnsquashfs extracts img with unsquashfs (as root, so owners, devices
// and xattrs are restored) and dumps the result.
func dumpUnsquashfs(t *testing.T, img string) []string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "x")
	if b, err := exec.Command("unsquashfs", "-n", "-d", dst, img).CombinedOutput(); err != nil {
		t.Fatalf("unsquashfs %s: %v\n%s", img, err, b)
	}
	lines, err := dumpHost(dst)
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(dst, "usr/share/sparse.img"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Blocks*512 > 1<<20 {
		t.Errorf("unsquashfs extracted the sparse file with %d bytes allocated: its holes were not stored as sparse blocks", st.Blocks*512)
	}
	return lines
}

func openImage(t *testing.T, img string) *Reader {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	r, err := Open(f)
	if err != nil {
		t.Fatalf("open %s: %v", img, err)
	}
	return r
}

// TestFeatureTree writes a tree with every file type with each compressor
// and checks that the kernel, unsquashfs and the Reader all see exactly the
// source, and that the Reader sees the same in mksquashfs's image.
func TestFeatureTree(t *testing.T) {
	requireRoot(t, "unsquashfs", "mksquashfs", "unshare", "mount")
	src := filepath.Join(t.TempDir(), "src")
	makeFeatureTree(t, src)
	facts, err := hostFacts(src)
	if err != nil {
		t.Fatal(err)
	}
	want, wantListing := dumpLines(facts), listingLines(facts)
	root, err := tree.Read(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		comp  sysext.Compression
		level int
	}{
		{sysext.Zstd, 3}, {sysext.Gzip, 9}, {sysext.Xz, 0}, {sysext.Lz4, 0}, {sysext.None, 0},
	} {
		t.Run(fmt.Sprintf("%s-%d", tc.comp, tc.level), func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "img.raw")
			f, err := os.Create(img)
			if err != nil {
				t.Fatal(err)
			}
			n, err := Write(context.Background(), f, root, Options{Compression: tc.comp, Level: tc.level, KeepMtimes: true, Epoch: 1e9})
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatal(err)
			}
			if n%4096 != 0 || n > 40<<20 {
				t.Errorf("image is %d bytes: want a multiple of 4096 and far below the 300 MB sparse file", n)
			}
			r := openImage(t, img)
			got, err := dumpImage(r)
			if err != nil {
				t.Fatal(err)
			}
			diffLines(t, "reader", want, got)
			diffLines(t, "kernel", want, dumpKernel(t, img))
			diffLines(t, "unsquashfs -d", want, dumpUnsquashfs(t, img))
			out, err := exec.Command("unsquashfs", "-lln", "-UTC", img).Output()
			if err != nil {
				t.Fatalf("unsquashfs -lln: %v", err)
			}
			listing, err := parseListing(string(out))
			if err != nil {
				t.Fatal(err)
			}
			diffLines(t, "unsquashfs -lln", wantListing, listing)
		})
	}
	t.Run("mksquashfs-image", func(t *testing.T) {
		img := filepath.Join(t.TempDir(), "mk.raw")
		if b, err := exec.Command("mksquashfs", src, img, "-comp", "zstd", "-noappend", "-quiet", "-processors", "2").CombinedOutput(); err != nil {
			t.Fatalf("mksquashfs: %v\n%s", err, b)
		}
		got, err := dumpImage(openImage(t, img))
		if err != nil {
			t.Fatal(err)
		}
		diffLines(t, "reader of mksquashfs image", want, got)
	})
}

// TestKernelBlockSizes mounts images of a small tree at the extreme block
// sizes, where the zstd window and the xz dictionary options matter.
func TestKernelBlockSizes(t *testing.T) {
	requireRoot(t, "unshare", "mount")
	root := smallTree()
	want := dumpNodes(root)
	for _, tc := range []struct {
		comp  sysext.Compression
		level int
		block int
	}{
		{sysext.Zstd, 19, 4096}, {sysext.Xz, 0, 4096}, {sysext.Gzip, 1, 4096}, {sysext.Lz4, 9, 1 << 20}, {sysext.Zstd, 1, 1 << 20}, {sysext.Xz, 0, 1 << 20},
	} {
		t.Run(fmt.Sprintf("%s-%d-%d", tc.comp, tc.level, tc.block), func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "img.raw")
			mem := writeMem(t, root, Options{Compression: tc.comp, Level: tc.level, BlockSize: tc.block, KeepMtimes: true})
			if err := os.WriteFile(img, mem.b, 0o644); err != nil {
				t.Fatal(err)
			}
			diffLines(t, "kernel", want, dumpKernel(t, img))
		})
	}
}
