package squashfs

import (
	"fmt"
	"io/fs"
	"strings"
	"testing"
)

// TestDevEncoding checks the rdev packing against the kernel's
// new_encode_dev values.
func TestDevEncoding(t *testing.T) {
	for _, tc := range []struct {
		major, minor, want uint32
	}{
		{1, 3, 0x103},
		{8, 1, 0x801},
		{4, 300, 0x12c | 4<<8 | 0x100<<12 - 0x100},
		{259, 70000, 0x70 | 259<<8 | (70000&^0xff)<<12},
		{4095, 0xfffff, 0xffffffff},
	} {
		if got := encodeDev(tc.major, tc.minor); got != tc.want {
			t.Errorf("encodeDev(%d, %d) = %#x, want %#x", tc.major, tc.minor, got, tc.want)
		}
		if ma, mi := decodeDev(tc.want); ma != tc.major || mi != tc.minor {
			t.Errorf("decodeDev(%#x) = %d, %d", tc.want, ma, mi)
		}
	}
}

// TestModes checks the mode conversion both ways for every type.
func TestModes(t *testing.T) {
	for _, m := range []fs.FileMode{
		0o644, fs.ModeDir | 0o755, fs.ModeSymlink | 0o777, fs.ModeDevice | 0o600,
		fs.ModeDevice | fs.ModeCharDevice | 0o666, fs.ModeNamedPipe | 0o644, fs.ModeSocket | 0o755,
		0o755 | fs.ModeSetuid | fs.ModeSetgid, fs.ModeDir | 0o777 | fs.ModeSticky,
	} {
		typ, err := inodeType(m)
		if err != nil {
			t.Fatal(err)
		}
		for _, ext := range []uint16{0, extOffset} {
			if got := fileMode(typ+ext, unixMode(m)); got != m {
				t.Errorf("round trip of %v (type %d) = %v", m, typ+ext, got)
			}
		}
	}
}

// TestBuildListing checks directory runs: 256 entries at most, a new run
// when the inode block changes or the inode delta leaves int16, and an
// index entry every 8 KiB of listing.
func TestBuildListing(t *testing.T) {
	var kids []child
	for i := range 1000 {
		kids = append(kids, child{name: fmt.Sprintf("%s%04d", strings.Repeat("x", 20), i), ref: uint64(i/600)<<16 | uint64(i), ino: uint32(i + 1), typ: typeFile})
	}
	kids = append(kids, child{name: "zz", ref: 1 << 16, ino: 100000, typ: typeDir})
	b, index := buildListing(kids)
	var runs []int
	pos := 0
	for pos < len(b) {
		count := int(le.Uint32(b[pos:])) + 1
		runs = append(runs, count)
		pos += dirHeaderSize
		for range count {
			pos += dirEntrySize + int(le.Uint16(b[pos+6:])) + 1
		}
	}
	if pos != len(b) {
		t.Fatalf("listing of %d bytes parses to %d", len(b), pos)
	}
	// 1000 entries of 32 bytes: 8 KiB holds 255 of them, so an index (and a
	// run) starts every 255 entries; the block change at 600 splits a run
	// (its header counts towards the next index at 765); the last entry's
	// inode number is out of delta range.
	want := fmt.Sprint([]int{255, 255, 90, 165, 235, 1})
	if fmt.Sprint(runs) != want {
		t.Errorf("runs %v, want %v", runs, want)
	}
	if len(index) != 3 || index[0].name != kids[255].name || index[2].name != kids[765].name {
		t.Errorf("index %+v, want entries at 255, 510 and 765", index)
	}
}
