package bakery

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/sysext-bakery/bakery/sysext"
)

// fixedBuilder writes the same bytes whatever the tree.
type fixedBuilder []byte

func (fixedBuilder) Name() string                       { return "fixed" }
func (fixedBuilder) Compressions() []sysext.Compression { return []sysext.Compression{sysext.None} }
func (fixedBuilder) Check(sysext.BuildOptions) error    { return nil }
func (b fixedBuilder) Build(_ context.Context, _, dst string, _ sysext.BuildOptions) error {
	return os.WriteFile(dst, b, 0o644)
}

// TestWriteImageDigest checks that WriteImage leaves the image unread
// (image create prints no digest) and that Digest gives its sha256, and
// that Commit puts the image in place.
func TestWriteImageDigest(t *testing.T) {
	content := []byte("the bytes of an image")
	dst := filepath.Join(t.TempDir(), "img.raw")
	out, err := WriteImage(bakeCtx, fixedBuilder(content), t.TempDir(), dst, sysext.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Abort()
	if out.SHA256 != "" || out.Size != int64(len(content)) {
		t.Fatalf("before Digest: sha256 %q, size %d", out.SHA256, out.Size)
	}
	if err := out.Digest(); err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(content); out.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("Digest gave %s, want %x", out.SHA256, sum)
	}
	if err := out.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(dst); err != nil || string(got) != string(content) {
		t.Errorf("committed %q, %v", got, err)
	}
}
