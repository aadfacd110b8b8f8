// Package filetype names the type of a file in messages ("a fifo", "a
// symbolic link"), where bakery refuses a file that is not of the type it
// needs.
package filetype

import "io/fs"

// Name is the type of a file of mode m, with its article: "a regular
// file", "a directory", "a symbolic link", "a fifo", "a socket", "a
// character device", "a block device" or "a file of an irregular type".
func Name(m fs.FileMode) string {
	switch t := m.Type(); {
	case t == 0:
		return "a regular file"
	case t&fs.ModeDir != 0:
		return "a directory"
	case t&fs.ModeSymlink != 0:
		return "a symbolic link"
	case t&fs.ModeNamedPipe != 0:
		return "a fifo"
	case t&fs.ModeSocket != 0:
		return "a socket"
	case t&fs.ModeCharDevice != 0:
		return "a character device"
	case t&fs.ModeDevice != 0:
		return "a block device"
	}
	return "a file of an irregular type"
}
