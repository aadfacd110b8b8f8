package erofs_test

import (
	"bytes"
	"testing"

	"github.com/sysext-bakery/bakery/internal/hostile"
	"github.com/sysext-bakery/bakery/sysext/erofs"
)

// TestWalkHostile walks images whose directories loop or share blocks of
// entries: Walk must stop with an error, quickly and in bounded memory,
// and walk the images that are only odd.
func TestWalkHostile(t *testing.T) {
	want := map[string]struct {
		err     string
		entries int
	}{
		"loop-self":      {"directory loop", 0},
		"loop-root":      {"directory loop", 0},
		"shared-listing": {"more work than its", 0},
		"sparse-release": {"", 5},
		"fifo-release":   {"", 5},
	}
	for _, h := range hostile.Erofs {
		t.Run(h.Name, func(t *testing.T) {
			tc, ok := want[h.Name]
			if !ok {
				t.Fatalf("no expectation for the hostile image %s", h.Name)
			}
			img, err := h.Build()
			if err != nil {
				t.Fatal(err)
			}
			im, err := erofs.Open(bytes.NewReader(img))
			if err != nil {
				t.Fatal(err)
			}
			hostile.CheckWalk(t, im.Walk, tc.entries, tc.err)
		})
	}
}

// TestFuzzSeeds checks that the seed corpus of FuzzOpen holds the hostile
// images, unchanged (at -1 flips no byte).
func TestFuzzSeeds(t *testing.T) {
	seeds, err := hostile.Seeds("erofs", hostile.Erofs, -1, byte(0))
	if err != nil {
		t.Fatal(err)
	}
	hostile.CheckCorpus(t, "FuzzOpen", seeds)
}
