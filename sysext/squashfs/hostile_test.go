package squashfs_test

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/sysext-bakery/bakery/internal/bounded"
	"github.com/sysext-bakery/bakery/internal/hostile"
	"github.com/sysext-bakery/bakery/sysext/squashfs"
)

// hostileImage builds the hostile image name.
func hostileImage(t testing.TB, name string) *squashfs.Reader {
	t.Helper()
	for _, h := range hostile.Squashfs {
		if h.Name == name {
			img, err := h.Build()
			if err != nil {
				t.Fatal(err)
			}
			r, err := squashfs.Open(bytes.NewReader(img))
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
	}
	t.Fatalf("no hostile image %q", name)
	return nil
}

// TestWalkHostile walks images whose directories loop or share listings:
// Walk must stop with an error, quickly and in bounded memory, and walk
// the images that are only odd.
func TestWalkHostile(t *testing.T) {
	for _, tc := range []struct {
		image   string
		err     string
		entries int
	}{
		{"loop-self", "directory loop", 0},
		{"loop-root", "directory loop", 0},
		{"shared-listing", "directory loop", 0},
		{"lookup-chain", "directory loop", 0},
		{"sparse-release", "", 5},
		{"fifo-release", "", 5},
	} {
		t.Run(tc.image, func(t *testing.T) {
			hostile.CheckWalk(t, hostileImage(t, tc.image).Walk, tc.entries, tc.err)
		})
	}
}

// TestLookupWork resolves a symlink that rescans a listing of thousands
// of entries hundreds of times, through 40 symlinks: the lookup must fail
// for the work it takes, quickly and in bounded memory.
func TestLookupWork(t *testing.T) {
	r := hostileImage(t, "lookup-chain")
	if _, err := r.Lstat("d000/b4799"); err != nil {
		t.Fatalf("one lookup in the big listing: %v", err)
	}
	var err error
	bounded.Run(t, bounded.Test, func() { _, err = r.Stat(hostile.ChainLink) })
	if err == nil || !strings.Contains(err.Error(), "more work than its tables can hold") {
		t.Fatalf("Stat(%s) = %v, want the work limit's error", hostile.ChainLink, err)
	}
}

// TestSparseRelease reads the start of a 3 GiB sparse file in a 4 KiB
// image: what a reader reads is what it costs, however large the file
// claims to be.
func TestSparseRelease(t *testing.T) {
	r := hostileImage(t, "sparse-release")
	if n := r.Superblock().BytesUsed; n > 4096 {
		t.Fatalf("the sparse image takes %d bytes, want 4 KiB at most", n)
	}
	p := hostile.ReleaseDir + "/extension-release.x"
	fi, err := r.Stat(p)
	if err != nil || fi.Size() != hostile.SparseSize {
		t.Fatalf("Stat = %v, %v; want %d bytes", fi, err, int64(hostile.SparseSize))
	}
	var got []byte
	bounded.Run(t, bounded.Test, func() {
		f, err := r.Open(p)
		if err == nil {
			got, err = io.ReadAll(io.LimitReader(f, 1<<20))
			f.Close()
		}
		if err != nil {
			t.Error(err)
		}
	})
	if len(got) != 1<<20 || !bytes.Equal(got, make([]byte, 1<<20)) {
		t.Errorf("read %d bytes, want 1 MiB of zeros", len(got))
	}
}

// TestFuzzSeeds checks that the seed corpus of FuzzOpen holds the hostile
// images.
func TestFuzzSeeds(t *testing.T) {
	seeds, err := hostile.Seeds("squashfs", hostile.Squashfs)
	if err != nil {
		t.Fatal(err)
	}
	hostile.CheckCorpus(t, "FuzzOpen", seeds)
}
