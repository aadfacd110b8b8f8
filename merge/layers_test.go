package merge

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sysext-bakery/bakery/sysext"
)

// TestManyLayers merges many extensions each way overlayMounts knows,
// alone (lowerdir+, and the mount(2) fallback of kernels before 6.8), up
// to overlayfs's limit of 500 layers, and compares the merge with
// flatOutcome; one extension more gets an error naming the limit and
// the count, and leaves nothing mounted.
func TestManyLayers(t *testing.T) {
	oracle := oraclePath(t)
	if !inNamespace(t, "mkfs.erofs") {
		return
	}
	for _, tc := range []struct {
		name  string
		class sysext.Class
		n     int
		// dirs makes directory images, cheap enough for the limit.
		dirs bool
	}{
		{"128 squashfs sysexts", sysext.Sysext, 128, false},
		{"50 squashfs confexts", sysext.Confext, 50, false},
		{"498 directory sysexts, the limit", sysext.Sysext, maxLayers - 2, true},
	} {
		sc := scenario{name: tc.name, class: tc.class, merged: true, flat: true, images: manyExts(tc.class, tc.n)}
		if tc.dirs {
			for i := range sc.images {
				sc.images[i].at = strings.TrimSuffix(sc.images[i].at, ".raw")
			}
		}
		base := t.TempDir()
		root := filepath.Join(base, "root")
		buildRoot(t, root, sc)
		want := flatOutcome(t, oracle, sc, filepath.Join(base, "flat"))
		for _, way := range overlayMounts {
			t.Run(tc.name+", "+way.name, func(t *testing.T) {
				defer func(all []overlayMount) { overlayMounts = all }(overlayMounts)
				overlayMounts = []overlayMount{way}
				got := mergeAndDescribe(t, oracle, tc.class, root)
				if got.status != "ok" {
					t.Fatalf("status %q, want ok", got.status)
				}
				sameOutcome(t, got, want, "files copied")
				checkClean(t, base)
				if !tc.dirs {
					return
				}
				extra := filepath.Join(root, tc.class.InstallDir, "ext999")
				writeFiles(t, extra, anyExt("ext999", "usr/many/ext999", "ext999\n"))
				defer os.RemoveAll(extra)
				_, err := Merge(Options{Root: root, Class: tc.class})
				wantErr := fmt.Sprintf("%d extensions have content here, and with the marker layer (and the host's own files) that makes %d overlay layers; overlayfs stacks at most 500: merge at most %d extensions", tc.n+1, tc.n+3, tc.n)
				if err == nil || !strings.Contains(err.Error(), wantErr) {
					t.Errorf("merge of %d extensions: %v, want an error saying %q", tc.n+1, err, wantErr)
				}
				checkClean(t, base)
			})
		}
	}
}

// TestOverlayWaysAgree merges every oracle scenario each way
// overlayMounts knows, alone, and compares the outcomes: the mount(2)
// fallback of kernels before 6.8 must merge what lowerdir+ merges (a
// host without /opt, confexts' mount options, directory images, masks).
func TestOverlayWaysAgree(t *testing.T) {
	oracle := oraclePath(t)
	if !inNamespace(t, "mkfs.erofs") {
		return
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			base := t.TempDir()
			root := filepath.Join(base, "root")
			buildRoot(t, root, sc)
			// The fallback first, while the root is as built: a merge
			// leaves the mount point of a hierarchy the host lacked.
			ways := slices.Clone(overlayMounts)
			slices.Reverse(ways)
			var outcomes []outcome
			for _, way := range ways {
				func() {
					defer func(all []overlayMount) { overlayMounts = all }(overlayMounts)
					overlayMounts = []overlayMount{way}
					outcomes = append(outcomes, mergeAndDescribe(t, oracle, sc.classOf(), root))
				}()
				checkClean(t, base)
			}
			if outcomes[0].status != outcomes[1].status {
				t.Errorf("status: %s %q, %s %q", ways[0].name, outcomes[0].status, ways[1].name, outcomes[1].status)
			}
			sameOutcome(t, outcomes[1], outcomes[0], ways[0].name)
		})
	}
}
