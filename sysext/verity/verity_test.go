package verity

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sysext-bakery/bakery/internal/fixture"
)

// data returns n blocks of deterministic, incompressible bytes.
func data(n int) []byte {
	b := make([]byte, n*BlockSize)
	r := rand.NewChaCha8([32]byte{byte(n), byte(n >> 8), byte(n >> 16)})
	r.Read(b)
	return b
}

// writerAt collects what Format writes.
type writerAt struct{ b []byte }

func (w *writerAt) WriteAt(p []byte, off int64) (int, error) {
	if n := int(off) + len(p); n > len(w.b) {
		w.b = append(w.b, make([]byte, n-len(w.b))...)
	}
	return copy(w.b[off:], p), nil
}

// format runs Format over d.
func format(t *testing.T, d []byte, opts Options) (*Tree, []byte) {
	t.Helper()
	var w writerAt
	tree, err := Format(context.Background(), bytes.NewReader(d), int64(len(d)), &w, opts)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(w.b)) != tree.HashSize {
		t.Fatalf("wrote %d bytes, HashSize %d", len(w.b), tree.HashSize)
	}
	return tree, w.b
}

// TestLevels checks the sizes of the hash device against veritysetup's
// layout, and that Format refuses data not in whole blocks: one block of superblock, then ceil(blocks/128^(i+1)) blocks per
// level.
func TestLevels(t *testing.T) {
	for _, tt := range []struct {
		blocks int64
		want   int64 // hash device blocks
	}{
		{1, 1},
		{2, 2},
		{128, 2},
		{129, 3 + 1},     // 2 leaves, 1 top
		{300, 1 + 3 + 1}, // 3 leaves, 1 top
		{16384, 1 + 128 + 1},
		{16385, 1 + 129 + 2 + 1},
	} {
		_, _, got, err := levels(uint64(tt.blocks))
		if err != nil || int64(got) != tt.want {
			t.Errorf("levels(%d) gives a hash device of %d blocks, %v; want %d", tt.blocks, got, err, tt.want)
		}
	}
	for _, size := range []int64{0, -4096, 4095, 4097} {
		if _, err := Format(context.Background(), bytes.NewReader(make([]byte, max(size, 0))), size, &writerAt{}, Options{}); err == nil || !strings.Contains(err.Error(), "multiple of 4096") {
			t.Errorf("Format of %d bytes = %v, want a refusal", size, err)
		}
	}
}

// veritysetup runs a veritysetup: Debian 12's from PATH, or Debian 13's.
func veritysetup(t *testing.T, debian13 bool, dir string, args ...string) (string, error) {
	t.Helper()
	var cmd *exec.Cmd
	if debian13 {
		cmd = fixture.Debian13(t, []string{dir}, "veritysetup", args...)
	} else {
		if _, err := exec.LookPath("veritysetup"); err != nil {
			t.Skip("veritysetup is not installed (cryptsetup-bin)")
		}
		cmd = exec.Command("veritysetup", args...)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

var rootHashLine = regexp.MustCompile(`(?m)^Root hash:\s+([0-9a-f]{64})$`)

// TestVeritysetup checks bakery's trees against veritysetup's for data of
// 1, 128, 300 and 16,385 blocks (no level, one, two, three levels): the
// same salt and UUID give the same hash device byte for byte and the same
// root hash, Verify accepts veritysetup's tree, and veritysetup verify
// (Debian 12's 2.6 and Debian 13's 2.7) accepts ours and refuses it, as
// Verify does, once a data byte is flipped.
func TestVeritysetup(t *testing.T) {
	salt, _ := hex.DecodeString("5de62bac1c767b7a5814be88b0462efe499efa470d01b78a619734562dfefd8d")
	uuid := [16]byte{0xaf, 0x4a, 0x46, 0xa1, 0xe1, 0x3b, 0x48, 0xfe, 0x9a, 0xc0, 0xbc, 0x58, 0x3f, 0x73, 0x13, 0xdb}
	for _, blocks := range []int{1, 128, 300, 16385} {
		t.Run(fmt.Sprint(blocks), func(t *testing.T) {
			dir := t.TempDir()
			d := data(blocks)
			flipped := bytes.Clone(d)
			flipped[len(d)-100] ^= 1
			tree, dev := format(t, d, Options{Salt: salt, UUID: &uuid})
			paths := map[string][]byte{"data": d, "flipped": flipped, "ours": dev}
			for name, b := range paths {
				if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			p := func(name string) string { return filepath.Join(dir, name) }
			// From a file, Format maps the data instead of reading it.
			f, err := os.Open(p("data"))
			if err != nil {
				t.Fatal(err)
			}
			var fromFile writerAt
			_, err = Format(context.Background(), io.NewSectionReader(f, 0, int64(len(d))), int64(len(d)), &fromFile, Options{Salt: salt, UUID: &uuid})
			f.Close()
			if err != nil || !bytes.Equal(fromFile.b, dev) {
				t.Errorf("Format of the file (mapped) differs from Format of the bytes: %v", err)
			}
			out, err := veritysetup(t, false, dir, "format", p("data"), p("theirs"), "--salt="+hex.EncodeToString(salt), "--uuid=af4a46a1-e13b-48fe-9ac0-bc583f7313db")
			if err != nil {
				t.Fatalf("veritysetup format: %v\n%s", err, out)
			}
			if m := rootHashLine.FindStringSubmatch(out); m == nil || m[1] != hex.EncodeToString(tree.RootHash) {
				t.Errorf("root hash %x, veritysetup format says:\n%s", tree.RootHash, out)
			}
			theirs, err := os.ReadFile(p("theirs"))
			if err != nil || !bytes.Equal(theirs, dev) {
				t.Errorf("hash device differs from veritysetup's (%d and %d bytes, %v)", len(dev), len(theirs), err)
			}
			if _, err := Verify(context.Background(), bytes.NewReader(d), int64(len(d)), bytes.NewReader(theirs), int64(len(theirs)), tree.RootHash); err != nil {
				t.Errorf("Verify of veritysetup's tree: %v", err)
			}
			if _, err := Verify(context.Background(), bytes.NewReader(flipped), int64(len(d)), bytes.NewReader(dev), int64(len(dev)), tree.RootHash); !errors.Is(err, ErrMismatch) {
				t.Errorf("Verify of a flipped byte = %v, want ErrMismatch", err)
			}
			root := hex.EncodeToString(tree.RootHash)
			for _, debian13 := range []bool{false, true} {
				t.Run(map[bool]string{false: "debian12", true: "debian13"}[debian13], func(t *testing.T) {
					if out, err := veritysetup(t, debian13, dir, "verify", p("data"), p("ours"), root); err != nil {
						t.Errorf("veritysetup verify refuses our tree: %v\n%s", err, out)
					}
					if out, err := veritysetup(t, debian13, dir, "verify", p("flipped"), p("ours"), root); err == nil {
						t.Errorf("veritysetup verify accepts a flipped data byte:\n%s", out)
					}
				})
			}
		})
	}
}

// TestContentSalt checks the default salt: the same data gives the same
// bytes, data differing in one byte another salt, and veritysetup verify
// accepts the tree.
func TestContentSalt(t *testing.T) {
	d := data(300)
	tree, dev := format(t, d, Options{})
	if again, dev2 := format(t, d, Options{}); !bytes.Equal(dev, dev2) || !bytes.Equal(again.RootHash, tree.RootHash) {
		t.Error("two formats of the same data differ")
	}
	other := bytes.Clone(d)
	other[len(d)-1] ^= 1
	if o, _ := format(t, other, Options{}); bytes.Equal(o.Salt, tree.Salt) {
		t.Error("other data, same salt")
	}
	dir := t.TempDir()
	for name, b := range map[string][]byte{"data": d, "hash": dev} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := veritysetup(t, false, dir, "verify", filepath.Join(dir, "data"), filepath.Join(dir, "hash"), hex.EncodeToString(tree.RootHash)); err != nil {
		t.Errorf("veritysetup verify: %v\n%s", err, out)
	}
}

// TestHostileSuperblock checks that superblocks bakery does not write, or
// that claim more than the devices hold, are refused before any hashing.
func TestHostileSuperblock(t *testing.T) {
	d := data(2)
	_, dev := format(t, d, Options{})
	tree, _ := format(t, d, Options{})
	for _, tt := range []struct {
		name  string
		patch func(sb []byte)
		want  string
	}{
		{"no magic", func(sb []byte) { sb[0] = 'X' }, "no superblock"},
		{"version 2", func(sb []byte) { sb[8] = 2 }, "version 2"},
		{"chromeos hash type", func(sb []byte) { sb[12] = 0 }, "hash type 0"},
		{"sha1", func(sb []byte) { copy(sb[32:], "sha1\x00\x00") }, `"sha1"`},
		{"512-byte blocks", func(sb []byte) { sb[64], sb[65] = 0, 2 }, "block sizes 512"},
		{"salt of 300 bytes", func(sb []byte) { sb[80], sb[81] = 0x2c, 1 }, "salt of 300 bytes"},
		{"more blocks than the data", func(sb []byte) { sb[72] = 3 }, "covers 3 blocks"},
		{"a huge tree", func(sb []byte) { copy(sb[72:80], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}) }, "the tree would be too large"},
		{"no data blocks", func(sb []byte) { sb[72] = 0 }, "0 data blocks"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := bytes.Clone(dev)
			tt.patch(h)
			_, err := Verify(context.Background(), bytes.NewReader(d), int64(len(d)), bytes.NewReader(h), int64(len(h)), tree.RootHash)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Verify = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if _, err := Verify(context.Background(), bytes.NewReader(d), int64(len(d)), bytes.NewReader(dev[:BlockSize]), BlockSize, tree.RootHash); err == nil || !strings.Contains(err.Error(), "hash device has only 4096") {
		t.Errorf("Verify of a cut hash device = %v", err)
	}
	wrong := bytes.Clone(tree.RootHash)
	wrong[0] ^= 1
	if _, err := Verify(context.Background(), bytes.NewReader(d), int64(len(d)), bytes.NewReader(dev), int64(len(dev)), wrong); !errors.Is(err, ErrMismatch) {
		t.Errorf("Verify with another root hash = %v, want ErrMismatch", err)
	}
}

// BenchmarkFormat formats the tree of 64 MiB of data, with a salt given
// and with the content salt the DDI builder uses (bench/ compares 1 GiB
// with veritysetup).
func BenchmarkFormat(b *testing.B) {
	d := data(16384)
	for _, bb := range []struct {
		name string
		opts Options
	}{{"salt", Options{Salt: []byte("salt")}}, {"content-salt", Options{}}} {
		b.Run(bb.name, func(b *testing.B) {
			b.SetBytes(int64(len(d)))
			for b.Loop() {
				var w writerAt
				if _, err := Format(context.Background(), bytes.NewReader(d), int64(len(d)), &w, bb.opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// failingReader fails every read, counting them.
type failingReader struct{ reads atomic.Int64 }

func (r *failingReader) ReadAt([]byte, int64) (int, error) {
	r.reads.Add(1)
	return 0, errors.New("disk on fire")
}

// TestReadFailures checks that a failed read stops the hashing at once,
// and that a mapped file truncated while it is hashed gives an error, not
// a crash (SIGBUS).
func TestReadFailures(t *testing.T) {
	const blocks = 1000 * chunkBlocks
	r := &failingReader{}
	err := hashBlocks(context.Background(), r, blocks, make([]byte, blocks*DigestSize), nil)
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("hashBlocks of a failing reader = %v", err)
	}
	if n := r.reads.Load(); n > 16 {
		t.Errorf("%d reads after the first failure, want the reading stopped (at most a read per worker or so)", n)
	}

	p := filepath.Join(t.TempDir(), "data")
	const size = 64 * chunkBlocks * BlockSize
	if err := os.WriteFile(p, bytes.Repeat([]byte{1}, size), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data, unmap := mapFile(f, size)
	defer unmap()
	if _, ok := data.(memory); !ok {
		t.Fatalf("mapFile did not map the file: %T", data)
	}
	if err := os.Truncate(p, 0); err != nil {
		t.Fatal(err)
	}
	err = hashBlocks(context.Background(), data, size/BlockSize, make([]byte, size/BlockSize*DigestSize), nil)
	if err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("hashBlocks of a mapped file truncated = %v, want an error", err)
	}
}
