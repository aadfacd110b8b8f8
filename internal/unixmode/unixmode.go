// Package unixmode converts between Go's fs.FileMode and the permission
// and special bits of a Unix mode (the low 12 bits of st_mode, as tar,
// squashfs, erofs and recipes store them): Go keeps setuid, setgid and
// sticky as flags in high bits, Unix as 0o4000, 0o2000 and 0o1000. The
// standard library does the same only unexported (os.syscallMode).
package unixmode

import "io/fs"

// specials pairs each of Go's special-bit flags with its Unix bit.
var specials = [...]struct {
	flag fs.FileMode
	bit  uint32
}{{fs.ModeSetuid, 0o4000}, {fs.ModeSetgid, 0o2000}, {fs.ModeSticky, 0o1000}}

// Bits returns the permission and setuid, setgid and sticky bits of m as
// Unix mode bits; its type is left out.
func Bits(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	for _, s := range specials {
		if m&s.flag != 0 {
			u |= s.bit
		}
	}
	return u
}

// FileMode returns the permission and setuid, setgid and sticky bits of
// the Unix mode u as an fs.FileMode; u's type bits are ignored.
func FileMode(u uint32) fs.FileMode {
	m := fs.FileMode(u & 0o777)
	for _, s := range specials {
		if u&s.bit != 0 {
			m |= s.flag
		}
	}
	return m
}
