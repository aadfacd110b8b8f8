package merge

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sysext-bakery/bakery/sysext"
)

// BenchmarkMerge merges and unmerges 10 and 50 extensions, with bakery
// (digest check included) and with systemd-sysext, on the same root, in a
// private mount namespace. The whole-command comparison is bench/merge.sh.
func BenchmarkMerge(b *testing.B) {
	if os.Getenv(nsEnv) != "1" {
		// Once, not once per b.N: the work happens in the child.
		b.Run("namespace", func(b *testing.B) { inNamespace(b, "systemd-sysext") })
		return
	}
	// As sysext-oracle does: systemd-sysext merges in a child namespace of
	// its own, whose mounts reach this one only through shared mounts.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SHARED, ""); err != nil {
		b.Fatal(err)
	}
	if err := unix.Mount("tmpfs", "/run", "tmpfs", 0, ""); err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{10, 50} {
		root := filepath.Join(b.TempDir(), "root")
		writeFiles(nil, root, debianHost)
		st := &State{Extensions: map[string]*Installed{}}
		for i := range n {
			name := fmt.Sprintf("ext%02d", i)
			p := filepath.Join(root, sysext.Sysext.InstallDir, name+".raw")
			files := anyExt(name, "usr/share/"+name+"/data", string(make([]byte, 1<<20)), "usr/bin/"+name, name)
			buildImage(nil, p, false, false, files)
			sum, err := fileDigest(p)
			if err != nil {
				b.Fatal(err)
			}
			st.Extensions[name] = &Installed{Digest: sum, Verification: &Verification{At: time.Now(), Signature: "sha256:" + strings.Repeat("0", 64), Key: "bench"}}
		}
		if err := st.Save(root); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("%d/bakery", n), func(b *testing.B) {
			for b.Loop() {
				res, err := Merge(Options{Root: root, RequireSignature: true})
				if err != nil || len(res.Extensions) != n {
					b.Fatalf("merge: %v, %v", res, err)
				}
				if _, err := Unmerge(Options{Root: root}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("%d/systemd-sysext", n), func(b *testing.B) {
			for b.Loop() {
				if out, err := exec.Command("systemd-sysext", "merge", "--root="+root).CombinedOutput(); err != nil {
					b.Fatalf("systemd-sysext merge: %v\n%s", err, out)
				}
				if merged, _ := isMerged(filepath.Join(root, "usr"), sysext.Sysext); !merged {
					b.Fatal("systemd-sysext did not merge")
				}
				if out, err := exec.Command("systemd-sysext", "unmerge", "--root="+root).CombinedOutput(); err != nil {
					b.Fatalf("systemd-sysext unmerge: %v\n%s", err, out)
				}
			}
		})
		os.RemoveAll(root)
	}
}
