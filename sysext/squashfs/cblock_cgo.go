//go:build cgo

package squashfs

// #include <stddef.h>
// #include <stdint.h>
import "C"

import "unsafe"

// cBlockFunc compresses inLen bytes at in into at most outCap bytes at
// out, setting *n to the bytes written; fits is false when the result
// would not fit.
type cBlockFunc func(in *C.uint8_t, inLen C.size_t, out *C.uint8_t, outCap C.size_t, n *C.size_t) (fits bool, err error)

// compressInC runs one C compressor over src into dst's storage (grown to
// len(src) when smaller), with room for len(src)-1 bytes: the result is
// smaller than src, or the block is stored as is (ok false). The C side
// keeps no pointer to either buffer after the call.
func compressInC(dst, src []byte, block cBlockFunc) ([]byte, bool, error) {
	if len(src) == 0 {
		return dst[:0], false, nil
	}
	if cap(dst) < len(src) {
		dst = make([]byte, 0, len(src))
	}
	var n C.size_t
	fits, err := block((*C.uint8_t)(unsafe.Pointer(&src[0])), C.size_t(len(src)),
		(*C.uint8_t)(unsafe.Pointer(&dst[:1][0])), C.size_t(len(src)-1), &n)
	if err != nil || !fits {
		return dst[:0], false, err
	}
	return dst[:n], true, nil
}
