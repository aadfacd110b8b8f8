package hostile

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/sysext-bakery/bakery/internal/bounded"
)

// CheckWalk runs an image reader's Walk on a hostile image within the
// bounds of a test (bounded.Test): with wantErr "" it must visit entries
// entries and succeed, otherwise fail with an error containing wantErr.
func CheckWalk(t *testing.T, walk func(fs.WalkDirFunc) error, entries int, wantErr string) {
	t.Helper()
	var err error
	n := 0
	bounded.Run(t, bounded.Test, func() {
		err = walk(func(p string, d fs.DirEntry, err error) error {
			n++
			return err
		})
	})
	if wantErr == "" && (err != nil || n != entries) {
		t.Fatalf("Walk = %v after %d entries, want no error after %d", err, n, entries)
	}
	if wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)) {
		t.Fatalf("Walk = %v after %d entries, want an error containing %q", err, n, wantErr)
	}
}
