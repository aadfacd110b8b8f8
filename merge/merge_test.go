package merge

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sysext-bakery/bakery/internal/bounded"
	"github.com/sysext-bakery/bakery/sysext"
	"golang.org/x/sys/unix"
)

// TestRefreshAtomic refreshes a merge over and over, swapping an image
// between two versions, while a reader loops on files in /usr: the reader
// must never see a file vanish, must see both versions, and only one merge
// may remain mounted. It does so with one extension and with 50 (the
// other 49 unchanged), each way of mounting the overlay.
func TestRefreshAtomic(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	for _, tc := range []struct {
		name   string
		others int
		ways   []overlayMount
	}{
		{"1 extension", 0, overlayMounts},
		{"50 extensions", 49, overlayMounts},
		{"50 extensions, mount(2)", 49, overlayMounts[1:]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func(all []overlayMount) { overlayMounts = all }(overlayMounts)
			overlayMounts = tc.ways
			base := t.TempDir()
			root := filepath.Join(base, "root")
			writeFiles(t, root, map[string]string{"etc/os-release": "ID=debian\nVERSION_ID=12\n", "usr/bin/host": "host\n"})
			for _, img := range manyExts(sysext.Sysext, tc.others) {
				buildImage(t, filepath.Join(root, img.at), false, false, img.files)
			}
			v1, v2 := filepath.Join(base, "v1.raw"), filepath.Join(base, "v2.raw")
			buildImage(t, v1, false, false, anyExt("app", "usr/share/app/version", "v1\n"))
			buildImage(t, v2, false, false, anyExt("app", "usr/share/app/version", "v2\n"))
			install := installer(t, filepath.Join(root, "var/lib/extensions/app.raw"))
			install(v1)
			if _, err := Merge(Options{Root: root}); err != nil {
				t.Fatal(err)
			}
			if _, err := Merge(Options{Root: root}); !errors.Is(err, ErrAlreadyMerged) {
				t.Errorf("second merge: err = %v, want ErrAlreadyMerged", err)
			}
			steady := []string{"usr/bin/host"}
			if tc.others > 0 {
				steady = append(steady, fmt.Sprintf("usr/many/ext%03d", tc.others), "usr/many/ext001")
			}

			var stop atomic.Bool
			var wg sync.WaitGroup
			var failures []string
			seen := map[string]bool{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					for _, f := range steady {
						if _, err := os.ReadFile(filepath.Join(root, f)); err != nil {
							failures = append(failures, err.Error())
						}
					}
					data, err := os.ReadFile(filepath.Join(root, "usr/share/app/version"))
					if err != nil {
						failures = append(failures, err.Error())
					}
					seen[string(data)] = true
				}
			}()
			for i := range 20 {
				install([]string{v2, v1}[i%2])
				if _, err := Refresh(Options{Root: root}); err != nil {
					t.Errorf("refresh %d: %v", i, err)
				}
			}
			stop.Store(true)
			wg.Wait()
			if len(failures) > 0 {
				t.Errorf("the reader saw files vanish %d times, first: %s", len(failures), failures[0])
			}
			if !seen["v1\n"] || !seen["v2\n"] {
				t.Errorf("the reader saw versions %v, want both v1 and v2", seen)
			}
			if m := mountsUnder(t, root); len(m) != 1 {
				t.Errorf("mounts after refreshes: %q, want just the current merge", m)
			}
			if done, err := Unmerge(Options{Root: root}); err != nil || len(done.Unmerged) != 1 {
				t.Errorf("unmerge = %v, %v", done, err)
			}
			checkClean(t, base)
		})
	}
}

// installer returns a function that installs an image at dst as sync
// does: a copy renamed into place.
func installer(t *testing.T, dst string) func(src string) {
	return func(src string) {
		data, err := os.ReadFile(src)
		if err == nil {
			err = os.MkdirAll(filepath.Dir(dst), 0o755)
		}
		if err == nil {
			err = os.WriteFile(dst+".tmp", data, 0o644)
		}
		if err == nil {
			err = os.Rename(dst+".tmp", dst)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestRefreshFailure checks that a refresh that fails (no host
// os-release) leaves the previous merge in place, and that a refresh with
// no extension left unmerges, as systemd's does.
func TestRefreshFailure(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	base := t.TempDir()
	root := filepath.Join(base, "root")
	writeFiles(t, root, map[string]string{"etc/os-release": "ID=debian\nVERSION_ID=12\n", "usr/bin/host": "host\n"})
	v1, v2 := filepath.Join(base, "v1.raw"), filepath.Join(base, "v2.raw")
	buildImage(t, v1, false, false, anyExt("app", "usr/share/app/version", "v1\n"))
	buildImage(t, v2, false, false, anyExt("app", "usr/share/app/version", "v2\n"))
	installed := filepath.Join(root, "var/lib/extensions/app.raw")
	install := installer(t, installed)
	install(v1)
	if _, err := Merge(Options{Root: root}); err != nil {
		t.Fatal(err)
	}

	install(v2)
	osr := filepath.Join(root, "etc/os-release")
	if err := os.Rename(osr, osr+".away"); err != nil {
		t.Fatal(err)
	}
	if _, err := Refresh(Options{Root: root}); err == nil {
		t.Error("refresh without a host os-release succeeded")
	}
	if data, err := os.ReadFile(filepath.Join(root, "usr/share/app/version")); err != nil || string(data) != "v1\n" {
		t.Errorf("after a failed refresh: %q, %v; want the previous merge's v1", data, err)
	}
	st, err := Status(root, sysext.Sysext)
	if err != nil || len(st) != 1 || st[0].Since == nil {
		t.Errorf("status after a failed refresh = %+v, %v; want /usr merged", st, err)
	}
	if done, err := Unmerge(Options{Root: root}); err != nil || len(done.Unmerged) != 1 {
		t.Errorf("unmerge = %v, %v", done, err)
	}

	if err := os.Rename(osr+".away", osr); err != nil {
		t.Fatal(err)
	}
	if _, err := Merge(Options{Root: root}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(installed); err != nil {
		t.Fatal(err)
	}
	if res, err := Refresh(Options{Root: root}); err != nil || len(res.Hierarchies) != 0 {
		t.Errorf("refresh without extensions = %+v, %v", res, err)
	}
	if st, err := Status(root, sysext.Sysext); err != nil || st[0].Extensions != "none" {
		t.Errorf("status after refreshing to nothing = %+v, %v; want none", st, err)
	}
	checkClean(t, base)
}

// TestMergeAttacks checks that, with signatures required, an image
// replaced after it was verified, an image never verified and a symlink
// planted in an extensions directory are all refused with reasons, and the
// verified image is merged.
func TestMergeAttacks(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	base := t.TempDir()
	root := filepath.Join(base, "root")
	writeFiles(t, root, debianHost)
	ext := filepath.Join(root, "var/lib/extensions")
	buildImage(t, filepath.Join(ext, "ok.raw"), false, false, anyExt("ok", "usr/bin/ok", "ok\n"))
	buildImage(t, filepath.Join(ext, "swapped.raw"), false, false, anyExt("swapped", "usr/bin/swapped", "evil\n"))
	buildImage(t, filepath.Join(ext, "unsigned.raw"), false, false, anyExt("unsigned", "usr/bin/unsigned", "x\n"))
	elsewhere := filepath.Join(base, "elsewhere.raw")
	buildImage(t, elsewhere, false, false, anyExt("link", "usr/bin/link", "x\n"))
	if err := os.Symlink(elsewhere, filepath.Join(ext, "link.raw")); err != nil {
		t.Fatal(err)
	}
	okSum, err := fileDigest(filepath.Join(ext, "ok.raw"))
	if err != nil {
		t.Fatal(err)
	}
	// Installed by a sync.yaml without keys: recorded, never verified.
	buildImage(t, filepath.Join(ext, "nokeys.raw"), false, false, anyExt("nokeys", "usr/bin/nokeys", "x\n"))
	nokeysSum, _ := fileDigest(filepath.Join(ext, "nokeys.raw"))
	linkSum, _ := fileDigest(elsewhere)
	verified := &Verification{At: time.Now(), Signature: "sha256:" + strings.Repeat("5", 64), Key: "k"}
	st := &State{Extensions: map[string]*Installed{
		"ok":      {Digest: okSum, Verification: verified},
		"swapped": {Digest: "sha256:" + strings.Repeat("0", 64), Verification: verified},
		"link":    {Digest: linkSum, Verification: verified},
		"nokeys":  {Digest: nokeysSum},
	}}
	if err := st.Save(root); err != nil {
		t.Fatal(err)
	}
	res, err := Merge(Options{Root: root, RequireSignature: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(res.Extensions, ","); got != "ok" {
		t.Errorf("merged %q, want only ok", got)
	}
	checkRefused(t, res.Refused, []string{
		"link: is a symlink",
		"nokeys: not verified",
		"swapped: differs from the verified",
		"unsigned: not verified",
	})
	if _, err := os.Stat(filepath.Join(root, "usr/bin/ok")); err != nil {
		t.Errorf("verified image not merged: %v", err)
	}
	if _, err := Unmerge(Options{Root: root}); err != nil {
		t.Error(err)
	}
	checkClean(t, base)
}

// TestSystemdInterop checks that bakery and systemd-sysext recognise each
// other's merges: bakery's status reads a merge made by systemd-sysext
// and refresh replaces it, and systemd-sysext unmerges a merge made by
// bakery (the marker's dev matches).
func TestSystemdInterop(t *testing.T) {
	if !inNamespace(t, "systemd-sysext") {
		return
	}
	// As sysext-oracle does: systemd-sysext merges in a child namespace of
	// its own, whose mounts reach this one only through shared mounts.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SHARED, ""); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", "/run", "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	root := filepath.Join(base, "root")
	writeFiles(t, root, debianHost)
	buildImage(t, filepath.Join(root, "var/lib/extensions/app.raw"), false, false, anyExt("app", "usr/bin/app", "app\n"))
	systemdSysext := func(verb string) {
		if out, err := exec.Command("systemd-sysext", verb, "--root="+root).CombinedOutput(); err != nil {
			t.Fatalf("systemd-sysext %s: %v\n%s", verb, err, out)
		}
	}
	systemdSysext("merge")
	st, err := Status(root, sysext.Sysext)
	if err != nil || len(st) != 1 || fmt.Sprint(st[0].Extensions) != "[app]" {
		t.Fatalf("status of systemd-sysext's merge = %+v, %v", st, err)
	}
	if _, err := Merge(Options{Root: root}); !errors.Is(err, ErrAlreadyMerged) {
		t.Errorf("merge over systemd-sysext's merge: err = %v, want ErrAlreadyMerged", err)
	}
	if _, err := Refresh(Options{Root: root}); err != nil {
		t.Fatal(err)
	}
	if m := mountsUnder(t, root); len(m) != 1 {
		t.Errorf("after refreshing systemd-sysext's merge: mounts %q, want one", m)
	}
	systemdSysext("unmerge")
	if m := mountsUnder(t, root); len(m) != 0 {
		t.Errorf("systemd-sysext unmerge left bakery's merge: %q", m)
	}
	checkClean(t, base)
}

// TestMergeHostileRelease mounts images whose extension-release is a FIFO
// or a 256 MiB sparse file: merge refuses both, without blocking in open or
// reading the file, and merges the good image beside them.
func TestMergeHostileRelease(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	base := t.TempDir()
	root := filepath.Join(base, "root")
	writeFiles(t, root, debianHost)
	ext := filepath.Join(root, "var/lib/extensions")
	buildImage(t, filepath.Join(ext, "good.raw"), false, false, anyExt("good", "usr/bin/good", "good\n"))
	for _, name := range []string{"fifo", "sparse"} {
		src := filepath.Join(base, name)
		rel := filepath.Join(src, sysext.Sysext.ReleasePath(name))
		if err := os.MkdirAll(filepath.Dir(rel), 0o755); err != nil {
			t.Fatal(err)
		}
		if name == "fifo" {
			if err := unix.Mkfifo(rel, 0o644); err != nil {
				t.Fatal(err)
			}
		} else {
			f, err := os.Create(rel)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString("ID=_any\n")
			if err := f.Truncate(256 << 20); err != nil { // reading it whole would break the 64 MiB bound
				t.Fatal(err)
			}
			f.Close()
		}
		if out, err := exec.Command("mksquashfs", src, filepath.Join(ext, name+".raw"), "-all-root", "-noappend", "-quiet", "-no-progress").CombinedOutput(); err != nil {
			t.Fatalf("mksquashfs: %v\n%s", err, out)
		}
	}
	var res *Result
	var err error
	if berr := bounded.Check(bounded.Test, func() { res, err = Merge(Options{Root: root}) }); berr != nil {
		t.Fatalf("merge of hostile images: %v", berr)
	}
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(res.Extensions, ","); got != "good" {
		t.Errorf("merged %q, want only good", got)
	}
	checkRefused(t, res.Refused, []string{"fifo: is a fifo, not a regular file", "sparse: more than the 1048576"})
	if _, err := Unmerge(Options{Root: root}); err != nil {
		t.Error(err)
	}
	checkClean(t, base)
}
