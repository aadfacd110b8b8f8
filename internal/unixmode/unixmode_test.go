package unixmode

import (
	"io/fs"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		mode fs.FileMode
		bits uint32
	}{
		{0o644, 0o644},
		{0o755 | fs.ModeSetuid, 0o4755},
		{0o2775&^0o2000 | fs.ModeSetgid, 0o2775},
		{0o1777&^0o1000 | fs.ModeSticky, 0o1777},
		{0o7777&^0o7000 | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky, 0o7777},
		{0, 0},
	} {
		if got := Bits(tc.mode); got != tc.bits {
			t.Errorf("Bits(%v) = %#o, want %#o", tc.mode, got, tc.bits)
		}
		if got := Bits(tc.mode | fs.ModeDir); got != tc.bits {
			t.Errorf("Bits(%v) = %#o, want %#o: the type is not a mode bit", tc.mode|fs.ModeDir, got, tc.bits)
		}
		if got := FileMode(tc.bits); got != tc.mode {
			t.Errorf("FileMode(%#o) = %v, want %v", tc.bits, got, tc.mode)
		}
		if got := FileMode(tc.bits | 0o100000); got != tc.mode {
			t.Errorf("FileMode(%#o) = %v, want %v: the type bits are ignored", tc.bits|0o100000, got, tc.mode)
		}
	}
}
