package erofs

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/gob"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sysext-bakery/bakery/sysext"
)

// testEpoch is the SOURCE_DATE_EPOCH of the tests' images.
const testEpoch = 1_700_000_000

// sparseSize is the feature tree's sparse file's size: small enough that
// mkfs.erofs 1.5, which stores holes as zero blocks, and the mount
// helper's hashing stay quick.
const sparseSize = 8 << 20

// feature describes one entry of the feature tree.
type feature struct {
	path   string
	kind   string // file, dir, symlink, hardlink, char, block, fifo, socket
	mode   uint32
	data   string // file content, symlink target or hard link's first name
	dev    [2]uint32
	owner  [2]int
	xattrs map[string]string
}

// vfsCapV2 is a valid security.capability value: cap_net_bind_service
// (bit 10) permitted and effective.
func vfsCapV2() string {
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], 0x02000001)
	binary.LittleEndian.PutUint32(b[4:], 1<<10)
	return string(b)
}

// features is the feature tree: every file type, special modes, owners,
// links, devices, xattrs (some shared by several inodes) and name and size
// limits.
func features() []feature {
	long := strings.Repeat("n", 255)
	common := map[string]string{"user.common": "a value several inodes share", "security.label": "s0"}
	return []feature{
		{path: "usr", kind: "dir", mode: 0o755},
		{path: "usr/bin", kind: "dir", mode: 0o755, xattrs: map[string]string{"user.dir": "on a directory"}},
		{path: "usr/bin/setuid", kind: "file", mode: 0o4755, data: "#!/bin/sh\necho hi\n"},
		{path: "usr/bin/setgid", kind: "file", mode: 0o2711, data: "g", xattrs: common},
		{path: "usr/bin/cap", kind: "file", mode: 0o755, data: strings.Repeat("c", 5000),
			xattrs: map[string]string{"security.capability": vfsCapV2()}},
		{path: "usr/share", kind: "dir", mode: 0o755},
		{path: "usr/share/sticky", kind: "dir", mode: 0o1777},
		{path: "usr/share/setgid-dir", kind: "dir", mode: 0o2775, owner: [2]int{0, 5678}},
		{path: "usr/share/owned", kind: "file", mode: 0o640, data: "owned\n", owner: [2]int{1234, 5678}, xattrs: common},
		{path: "usr/share/bigid", kind: "file", mode: 0o600, data: "id over 16 bits", owner: [2]int{100000, 200000}},
		{path: "usr/share/empty", kind: "file", mode: 0o644, xattrs: common},
		{path: "usr/share/emptydir", kind: "dir", mode: 0o700},
		{path: "usr/share/" + long, kind: "file", mode: 0o644, data: "long name"},
		{path: "usr/share/xattrs", kind: "file", mode: 0o644, data: "x",
			xattrs: map[string]string{"user.a": "1", "user.empty": "", "trusted.bin": "b\x00\xffy", "security.label": "s0"}},
		{path: "usr/share/big", kind: "file", mode: 0o644, data: string(randomBytes(1<<20 + 123))},
		{path: "usr/lib", kind: "dir", mode: 0o755, xattrs: common},
		{path: "usr/lib/extension-release.d", kind: "dir", mode: 0o755},
		{path: "usr/lib/extension-release.d/extension-release.test", kind: "file", mode: 0o644, data: "ID=_any\nARCHITECTURE=x86-64\n"},
		{path: "usr/lib/rel", kind: "symlink", data: "../bin/setuid"},
		{path: "usr/lib/abs", kind: "symlink", data: "/usr/bin/setuid", xattrs: map[string]string{"trusted.on-link": "yes"}},
		{path: "usr/lib/dangling", kind: "symlink", data: "nowhere/missing"},
		{path: "usr/lib/long-target", kind: "symlink", data: strings.Repeat("t/", 1000) + "end"},
		{path: "usr/lib/hard-a", kind: "file", mode: 0o755, data: strings.Repeat("h", 10000), owner: [2]int{1234, 5678},
			xattrs: map[string]string{"user.shared": "by both names"}},
		{path: "usr/lib/hard-b", kind: "hardlink", data: "usr/lib/hard-a"},
		{path: "usr/share/hard-c", kind: "hardlink", data: "usr/lib/hard-a"},
		{path: "usr/lib/small-a", kind: "file", mode: 0o644, data: "inline"},
		{path: "usr/lib/small-b", kind: "hardlink", data: "usr/lib/small-a"},
		{path: "usr/lib/fifo-a", kind: "fifo", mode: 0o600},
		{path: "usr/lib/fifo-b", kind: "hardlink", data: "usr/lib/fifo-a"},
		{path: "usr/dev", kind: "dir", mode: 0o755},
		{path: "usr/dev/null", kind: "char", mode: 0o666, dev: [2]uint32{1, 3}},
		{path: "usr/dev/minor300", kind: "char", mode: 0o620, dev: [2]uint32{4, 300}},
		{path: "usr/dev/big", kind: "block", mode: 0o660, dev: [2]uint32{259, 70000}, owner: [2]int{0, 6}},
		{path: "usr/dev/fifo", kind: "fifo", mode: 0o644},
		{path: "usr/dev/socket", kind: "socket", mode: 0o755},
	}
}

// randomBytes returns n reproducible pseudo-random bytes.
func randomBytes(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// makeFeatureTree builds the feature tree under dir (root only).
func makeFeatureTree(t *testing.T, dir string) {
	t.Helper()
	for _, f := range features() {
		p := filepath.Join(dir, f.path)
		var err error
		switch f.kind {
		case "dir":
			err = os.Mkdir(p, 0o700)
		case "file":
			err = os.WriteFile(p, []byte(f.data), 0o600)
		case "symlink":
			err = os.Symlink(f.data, p)
		case "hardlink":
			err = os.Link(filepath.Join(dir, f.data), p)
		case "char":
			err = unix.Mknod(p, unix.S_IFCHR, int(unix.Mkdev(f.dev[0], f.dev[1])))
		case "block":
			err = unix.Mknod(p, unix.S_IFBLK, int(unix.Mkdev(f.dev[0], f.dev[1])))
		case "fifo":
			err = unix.Mkfifo(p, 0o600)
		case "socket":
			err = unix.Mknod(p, unix.S_IFSOCK, 0)
		}
		if err != nil {
			t.Fatalf("make %s: %v", f.path, err)
		}
		if f.kind != "symlink" && f.kind != "hardlink" {
			if err := os.Chmod(p, fileMode(f.mode)); err != nil {
				t.Fatal(err)
			}
		}
		if f.kind == "hardlink" {
			continue // shares the first name's owner and xattrs
		}
		if err := os.Lchown(p, f.owner[0], f.owner[1]); err != nil {
			t.Fatal(err)
		}
		for k, v := range f.xattrs {
			if err := unix.Lsetxattr(p, k, []byte(v), 0); err != nil {
				t.Fatalf("%s: set xattr %s: %v", f.path, k, err)
			}
		}
	}
	// Chown clears setuid: set the modes again.
	for _, f := range features() {
		if f.kind != "symlink" && f.kind != "hardlink" && f.mode&0o7000 != 0 {
			if err := os.Chmod(filepath.Join(dir, f.path), fileMode(f.mode)); err != nil {
				t.Fatal(err)
			}
		}
	}
	old := time.Date(1985, 10, 26, 1, 21, 0, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(dir, "usr/share/owned"), old, old); err != nil {
		t.Fatal(err)
	}
	sparse, err := os.Create(filepath.Join(dir, "usr/share/sparse"))
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{5 << 20, sparseSize - 4} {
		if _, err := sparse.WriteAt([]byte("data"), off); err != nil {
			t.Fatal(err)
		}
	}
	if err := sparse.Close(); err != nil {
		t.Fatal(err)
	}
	many := filepath.Join(dir, "usr/share/many")
	if err := os.Mkdir(many, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 5000 {
		var data []byte
		if i%3 != 0 {
			data = []byte(strings.Repeat("m", i%200))
		}
		if err := os.WriteFile(filepath.Join(many, "entry-"+strings.Repeat("x", i%40)+itoa(i)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// itoa formats i with four digits.
func itoa(i int) string {
	return string([]byte{byte('0' + i/1000%10), byte('0' + i/100%10), byte('0' + i/10%10), byte('0' + i%10)})
}

// fileMode turns unix permission bits into an os.FileMode.
func fileMode(m uint32) os.FileMode {
	mode := os.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		mode |= os.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= os.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= os.ModeSticky
	}
	return mode
}

// build writes the image of src with opts and returns its path.
func build(t testing.TB, src string, opts sysext.BuildOptions) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "image.raw")
	if err := (Builder{}).Build(context.Background(), src, img, opts); err != nil {
		t.Fatal(err)
	}
	return img
}

// openImage opens img with the package's reader.
func openImage(t testing.TB, img string) *Image {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	im, err := Open(f)
	if err != nil {
		t.Fatal(err)
	}
	return im
}

// TestFeatureTree writes the feature tree and checks the image with
// fsck.erofs (check and extraction), a kernel mount and the reader.
func TestFeatureTree(t *testing.T) {
	requireRoot(t)
	src := filepath.Join(t.TempDir(), "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	makeFeatureTree(t, src)
	source, err := hostSnapshot(src)
	if err != nil {
		t.Fatal(err)
	}
	if e := source["usr/lib/hard-b"]; e.Link != "usr/lib/hard-a" || e.Nlink != 3 {
		t.Fatalf("source tree: hard-b = %+v, want a link of usr/lib/hard-a with 3 names", e)
	}
	tests := []struct {
		name    string
		allRoot bool
		mkfs    bool // built by mkfs.erofs: checks the reader alone
	}{
		{"owners", false, false},
		{"all-root", true, false},
		{"reader reads mkfs.erofs", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, want := "", expect(source, testEpoch, tt.allRoot)
			if tt.mkfs {
				img, want = mkfsErofs(t, src)
			} else {
				opts := sysext.BuildOptions{Epoch: testEpoch, AllRoot: tt.allRoot}
				img = build(t, src, opts)
				checkSameBytes(t, img, build(t, src, opts))
			}

			got, err := imageSnapshot(openImage(t, img))
			if err != nil {
				t.Fatal(err)
			}
			if d := diff(noHoles(want), got); d != "" {
				t.Errorf("reader differs from the source:\n%s", d)
			}
			if !tt.mkfs {
				checkFsck(t, img, want)
				checkMount(t, img, want)
			}
		})
	}
}

// checkSameBytes fails unless the files a and b are equal.
func checkSameBytes(t *testing.T, a, b string) {
	t.Helper()
	ab, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	bb, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ab, bb) {
		t.Errorf("two builds of the same tree differ (%d and %d bytes)", len(ab), len(bb))
	}
}

// mkfsErofs builds an uncompressed image of a copy of src with mkfs.erofs
// and returns it and what it must show. The copy lacks the 255-byte name,
// which mkfs.erofs 1.5 fails on ("Could not format the device").
func mkfsErofs(t *testing.T, src string) (string, snapshot) {
	t.Helper()
	if _, err := exec.LookPath("mkfs.erofs"); err != nil {
		t.Skip("mkfs.erofs not installed (apt-get install erofs-utils)")
	}
	dir := filepath.Join(t.TempDir(), "src")
	if out, err := exec.Command("cp", "-a", src, dir).CombinedOutput(); err != nil {
		t.Fatalf("copy the feature tree: %v\n%s", err, out)
	}
	if err := os.Remove(filepath.Join(dir, "usr/share", strings.Repeat("n", 255))); err != nil {
		t.Fatal(err)
	}
	source, err := hostSnapshot(dir)
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "mkfs.raw")
	if err := os.WriteFile(img, nil, 0o644); err != nil { // mkfs.erofs 1.5 does not create it
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.erofs", "--quiet", "-T", strconv.Itoa(testEpoch), img, dir).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.erofs: %v\n%s", err, out)
	}
	return img, expect(source, testEpoch, false)
}

// checkFsck runs fsck.erofs on img and compares its extraction with want.
// fsck.erofs 1.5 extracts no xattrs, a hard link's names as copies and
// loses a file's setuid and setgid bits (it chowns after chmod), so those
// are left out of the comparison; the kernel mount checks them. It also
// writes a file with holes as its data blocks alone (1.8 seeks over holes,
// erofs-utils commit b063ea3, but still drops a trailing one), so such a
// file is checked (fsck.erofs reads all its data) but its extracted
// content is not compared.
func checkFsck(t *testing.T, img string, want snapshot) {
	t.Helper()
	if _, err := exec.LookPath("fsck.erofs"); err != nil {
		t.Skip("fsck.erofs not installed (apt-get install erofs-utils)")
	}
	if out, err := exec.Command("fsck.erofs", img).CombinedOutput(); err != nil {
		t.Fatalf("fsck.erofs %s: %v\n%s", img, err, out)
	}
	dir := filepath.Join(t.TempDir(), "x")
	if out, err := exec.Command("fsck.erofs", "--extract="+dir, "--preserve", img).CombinedOutput(); err != nil {
		t.Fatalf("fsck.erofs --extract: %v\n%s", err, out)
	}
	got, err := hostSnapshot(dir)
	if err != nil {
		t.Fatal(err)
	}
	strip := func(s snapshot) snapshot {
		out := snapshot{}
		for p, e := range s {
			e.Xattrs, e.Link, e.Data = nil, "", ""
			if !e.Mode.IsDir() {
				e.Nlink = 0
				e.Mode &^= os.ModeSetuid | os.ModeSetgid
			}
			if want[p].Data != "" {
				e.Size, e.Digest = 0, ""
			}
			out[p] = e
		}
		return out
	}
	if d := diff(strip(want), strip(got)); d != "" {
		t.Errorf("fsck.erofs --extract differs from the source:\n%s", d)
	}
}

// mountEnv names the image the mount helper mounts and the file it writes
// the mounted tree's snapshot to.
const (
	mountEnvImage = "BAKERY_EROFS_MOUNT_IMAGE"
	mountEnvOut   = "BAKERY_EROFS_MOUNT_OUT"
)

// checkMount mounts img with the kernel in a private mount namespace and
// compares the mounted tree with want.
func checkMount(t *testing.T, img string, want snapshot) {
	t.Helper()
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare not installed")
	}
	if fss, err := os.ReadFile("/proc/filesystems"); err != nil || !bytes.Contains(fss, []byte("\terofs\n")) {
		t.Skip("the kernel has no erofs (modprobe erofs)")
	}
	out := filepath.Join(t.TempDir(), "mounted.gob")
	cmd := exec.Command("unshare", "-m", "--propagation", "private", os.Args[0], "-test.run=^TestMountHelper$")
	cmd.Env = append(os.Environ(), mountEnvImage+"="+img, mountEnvOut+"="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mount helper: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var got snapshot
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if d := diff(want, got); d != "" {
		t.Errorf("kernel mount differs from the source:\n%s", d)
	}
	if loops, err := exec.Command("losetup", "-j", img).Output(); err != nil || len(loops) > 0 {
		t.Errorf("loop device left behind for %s: %s %v", img, loops, err)
	}
}

// TestMountHelper runs inside the private mount namespace checkMount makes:
// it loop-mounts the image, writes the snapshot and unmounts.
func TestMountHelper(t *testing.T) {
	img, out := os.Getenv(mountEnvImage), os.Getenv(mountEnvOut)
	if img == "" || out == "" {
		t.Skip("only run by checkMount, in a private mount namespace")
	}
	mnt := t.TempDir()
	if b, err := exec.Command("mount", "-t", "erofs", "-o", "ro,loop", img, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v\n%s", err, b)
	}
	s, err := hostSnapshot(mnt)
	if b, uerr := exec.Command("umount", mnt).CombinedOutput(); uerr != nil {
		t.Errorf("umount: %v\n%s", uerr, b)
	}
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(s); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}
