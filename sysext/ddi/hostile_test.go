package ddi

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sysext-bakery/bakery/internal/bounded"
	"github.com/sysext-bakery/bakery/internal/fixture"
	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/verity"
	"github.com/sysext-bakery/bakery/sysext/veritysig"
)

// fixtureDDI builds a small signed DDI and returns it with its signing
// key and certificate.
func fixtureDDI(t testing.TB) ([]byte, *sysext.Signing) {
	t.Helper()
	dir := t.TempDir()
	s := ecdsaSigning(t, dir)
	return build(t, stage(t, dir, "x"), filepath.Join(dir, "x.raw"), s), s
}

// ecdsaSigning makes an ECDSA key and self-signed certificate.
func ecdsaSigning(t testing.TB, dir string) *sysext.Signing {
	t.Helper()
	return loadSigning(t, ecdsaKey(t, dir))
}

// header and entries locate the primary GPT of img.
func header(img []byte) []byte { return img[Sector : 2*Sector] }

func entry(img []byte, i int) []byte {
	lba := binary.LittleEndian.Uint64(header(img)[72:])
	return img[int(lba)*Sector+i*128:][:128]
}

// reseal recomputes the entries' and the header's CRC-32s, so that a
// patch reaches the checks behind them.
func reseal(img []byte) {
	h := header(img)
	lba, n, size := binary.LittleEndian.Uint64(h[72:]), binary.LittleEndian.Uint32(h[80:]), binary.LittleEndian.Uint32(h[84:])
	if end := uint64(lba)*Sector + uint64(n)*uint64(size); end <= uint64(len(img)) {
		binary.LittleEndian.PutUint32(h[88:], crc32.ChecksumIEEE(img[lba*Sector:end]))
	}
	clear(h[16:20])
	binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h[:92]))
}

// TestHostile patches a signed DDI the way an attacker would and checks
// that reading, opening and verifying it refuses it (or, for a signature
// that does not check out, reports it unsigned) within bounded time and
// memory.
func TestHostile(t *testing.T) {
	good, s := fixtureDDI(t)
	trusted := []*x509.Certificate{s.Cert}
	other := ecdsaSigning(t, t.TempDir())
	im0, err := Open(bytes.NewReader(good), int64(len(good)), "x86-64")
	if err != nil {
		t.Fatal(err)
	}
	v0, err := im0.Verify(context.Background(), trusted)
	if err != nil || v0.Protection != Signed {
		t.Fatalf("the unpatched DDI: %+v, %v", v0, err)
	}
	rootHash := mustHex(v0.RootHash)
	// writeDoc replaces the signature partition's document.
	writeDoc := func(img []byte, doc []byte) {
		p := entry(img, 2)
		off := int(binary.LittleEndian.Uint64(p[32:])) * Sector
		end := (int(binary.LittleEndian.Uint64(p[40:])) + 1) * Sector
		clear(img[off:end])
		copy(img[off:end], doc)
	}
	docFor := func(root []byte, by *sysext.Signing) []byte {
		d, err := veritysig.NewDoc(root, by.Key, by.Cert)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := d.Marshal()
		return b
	}
	otherRoot := bytes.Clone(rootHash)
	otherRoot[0] ^= 1
	for _, tt := range []struct {
		name     string
		patch    func(img []byte)
		arch     string
		want     string // error wanted
		unsigned string // or, without error, why it is not signed
	}{
		{name: "header CRC", patch: func(img []byte) { header(img)[40]++ }, want: "header CRC-32 mismatch"},
		{name: "entries CRC", patch: func(img []byte) { entry(img, 0)[60]++ }, want: "entries CRC-32 mismatch"},
		{name: "header not at sector 1", patch: func(img []byte) { header(img)[24] = 5; reseal(img) }, want: "at sector 5"},
		{name: "4 billion entries", patch: func(img []byte) { binary.LittleEndian.PutUint32(header(img)[80:], 0xffffffff); reseal(img) }, want: "4294967295 partition entries"},
		{name: "huge entries", patch: func(img []byte) { binary.LittleEndian.PutUint32(header(img)[84:], 1<<20); reseal(img) }, want: "entries of 1048576 bytes"},
		{name: "entries past the end", patch: func(img []byte) { binary.LittleEndian.PutUint64(header(img)[72:], 1<<40); reseal(img) }, want: "outside the disk"},
		{name: "usable area past the end", patch: func(img []byte) { binary.LittleEndian.PutUint64(header(img)[48:], 1<<40); reseal(img) }, want: "do not fit the disk"},
		{name: "partition past the usable area", patch: func(img []byte) { binary.LittleEndian.PutUint64(entry(img, 1)[40:], 1<<40); reseal(img) }, want: "outside the usable sectors"},
		{name: "partition ends before it starts", patch: func(img []byte) { binary.LittleEndian.PutUint64(entry(img, 0)[40:], 39); reseal(img) }, want: "outside the usable sectors"},
		{name: "overlapping partitions", patch: func(img []byte) { copy(entry(img, 1)[32:40], entry(img, 0)[32:40]); reseal(img) }, want: "overlap"},
		{name: "two root partitions", patch: func(img []byte) { copy(entry(img, 1)[0:16], entry(img, 0)[0:16]); reseal(img) }, want: "two root-x86-64 partitions"},
		{name: "signature without verity", patch: func(img []byte) { clear(entry(img, 1)); reseal(img) }, want: "without root-x86-64-verity"},
		{name: "another architecture", arch: "arm64", want: "no root partition for arm64 (the disk has x86-64)"},
		{name: "flipped data byte", patch: func(img []byte) { img[headSectors*Sector+5000] ^= 1 }, want: "hash tree mismatch"},
		{name: "flipped hash byte", patch: func(img []byte) {
			img[int(binary.LittleEndian.Uint64(entry(img, 1)[32:]))*Sector+verity.BlockSize+3] ^= 1
		}, want: "hash tree mismatch"},
		{name: "garbage signature document", patch: func(img []byte) { writeDoc(img, []byte("{garbage")) }, want: "verity signature document"},
		{name: "signature document with extra fields", patch: func(img []byte) { writeDoc(img, []byte(`{"rootHash":"`+v0.RootHash+`","signature":"AA==","x":1}`)) }, want: `unknown field "x"`},
		{name: "signature document of 4 KiB of spaces", patch: func(img []byte) { writeDoc(img, bytes.Repeat([]byte(" "), 4096)) }, want: "verity signature document"},
		{name: "signature for another root hash", patch: func(img []byte) { writeDoc(img, docFor(otherRoot, s)) }, want: "hash tree mismatch"},
		{name: "signature over another root hash", patch: func(img []byte) {
			d, _ := veritysig.NewDoc(otherRoot, s.Key, s.Cert)
			d.RootHash = v0.RootHash
			b, _ := d.Marshal()
			writeDoc(img, b)
		}, unsigned: "not signed by a trusted certificate"},
		{name: "signed by an untrusted key", patch: func(img []byte) { writeDoc(img, docFor(rootHash, other)) }, unsigned: "not signed by a trusted certificate"},
		{name: "stripped signature", patch: func(img []byte) { clear(entry(img, 2)); reseal(img) }, unsigned: "no root-x86-64-verity-sig partition"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			img := bytes.Clone(good)
			if tt.patch != nil {
				tt.patch(img)
			}
			var v *Verification
			var err error
			bounded.Run(t, bounded.Test, func() {
				var im *Image
				if im, err = Open(bytes.NewReader(img), int64(len(img)), cmpOr(tt.arch, "x86-64")); err == nil {
					v, err = im.Verify(context.Background(), trusted)
				}
			})
			switch {
			case tt.want != "":
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("got %+v, %v; want an error containing %q", v, err, tt.want)
				}
			case err != nil:
				t.Errorf("Verify: %v", err)
			case v.Protection == Signed || !strings.Contains(v.Unsigned, tt.unsigned):
				t.Errorf("Verify = %s (%s), want unsigned because %q", v.Protection, v.Unsigned, tt.unsigned)
			}
		})
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestReproducible builds the same tree twice, unsigned, and checks the
// bytes are equal; and that an unsigned DDI verifies by the root hash in
// its partition UUIDs.
func TestReproducible(t *testing.T) {
	dir := t.TempDir()
	src := stage(t, dir, "x")
	a := build(t, src, filepath.Join(dir, "a.raw"), nil)
	b := build(t, src, filepath.Join(dir, "b.raw"), nil)
	if !bytes.Equal(a, b) {
		t.Fatal("two builds of the same tree differ")
	}
	im, err := Open(bytes.NewReader(a), int64(len(a)), "")
	if err != nil {
		t.Fatal(err)
	}
	v, err := im.Verify(context.Background(), nil)
	if err != nil || v.Protection != Verity || im.Signature != nil {
		t.Errorf("Verify of an unsigned DDI = %+v, %v; want verity", v, err)
	}
}

// TestShiftByCopy checks the copying fallback of shiftRight, which ext4
// and xfs never take, with shifts shorter and longer than the file.
func TestShiftByCopy(t *testing.T) {
	for _, tt := range []struct{ size, by int64 }{{3 << 20, 20480}, {5000, 20480}, {1 << 20, 1 << 20}} {
		f, err := os.Create(filepath.Join(t.TempDir(), "f"))
		if err != nil {
			t.Fatal(err)
		}
		data := bytes.Repeat([]byte("0123456789abcdef"), int(tt.size/16))
		if _, err := f.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := shiftByCopy(f, int64(len(data)), tt.by); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(f.Name())
		f.Close()
		if !bytes.Equal(got[tt.by:], data) || strings.Trim(string(got[:tt.by]), "\x00") != "" {
			t.Errorf("size %d, shift %d: data moved wrong", tt.size, tt.by)
		}
	}
}

// FuzzOpen opens, reads the signature document of and verifies arbitrary
// disks, which must fail cleanly within bounded time and memory; what
// verifies must describe itself consistently: the verified data inside
// the disk, and a reason given exactly when it is not signed.
func FuzzOpen(f *testing.F) {
	good, s := fixtureDDI(f)
	f.Add(good)
	f.Add(good[:64<<10])
	trusted := []*x509.Certificate{s.Cert}
	f.Fuzz(func(t *testing.T, img []byte) {
		bounded.Run(t, bounded.Fuzz, func() {
			im, err := Open(bytes.NewReader(img), int64(len(img)), "")
			if err != nil {
				return
			}
			v, err := im.Verify(context.Background(), trusted)
			if err != nil {
				return
			}
			if _, off, size := v.Data.Outer(); off < 0 || size < 0 || off+size > int64(len(img)) {
				t.Fatalf("verified data at %d, %d bytes, outside the %d-byte disk", off, size, len(img))
			}
			switch v.Protection {
			case Signed, Verity, Unprotected:
			default:
				t.Fatalf("protection %q", v.Protection)
			}
			if (v.Protection == Signed) != (v.Unsigned == "") {
				t.Fatalf("protection %s with reason %q: a reason is given exactly when not signed", v.Protection, v.Unsigned)
			}
		})
	})
}

// TestSfdisk has util-linux's sfdisk (Debian 13's) check the partition
// tables bakery writes, primary and backup, signed and unsigned.
func TestSfdisk(t *testing.T) {
	dir := t.TempDir()
	src := stage(t, dir, "x")
	for name, s := range map[string]*sysext.Signing{"unsigned": nil, "signed": ecdsaSigning(t, dir)} {
		img := filepath.Join(dir, name+".raw")
		build(t, src, img, s)
		out, err := fixture.Debian13(t, []string{dir}, "sfdisk", "--verify", img).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "No errors detected") || strings.Contains(string(out), "corrupt") {
			t.Errorf("sfdisk --verify of the %s DDI: %v\n%s", name, err, out)
		}
	}
}
