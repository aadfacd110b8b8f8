//go:build cgo

package squashfs

/*
#cgo LDFLAGS: -Wl,-Bstatic -llzma -Wl,-Bdynamic
#include <lzma.h>

// xz_block compresses one block as a single xz stream: LZMA2 at the
// default preset with the given dictionary, CRC32 check. LZMA_BUF_ERROR
// means the result would not fit in out_cap bytes.
static lzma_ret xz_block(const uint8_t *in, size_t in_size, uint8_t *out,
		size_t out_cap, size_t *out_size, uint32_t dict_size) {
	lzma_options_lzma opt;
	if (lzma_lzma_preset(&opt, LZMA_PRESET_DEFAULT))
		return LZMA_OPTIONS_ERROR;
	opt.dict_size = dict_size;
	lzma_filter filters[2] = {
		{ .id = LZMA_FILTER_LZMA2, .options = &opt },
		{ .id = LZMA_VLI_UNKNOWN, .options = NULL },
	};
	*out_size = 0;
	return lzma_stream_buffer_encode(filters, LZMA_CHECK_CRC32, NULL,
		in, in_size, out, out_size, out_cap);
}
*/
import "C"

import "fmt"

// xzCompressor compresses with liblzma, linked statically, as mksquashfs
// does: each block one xz stream, LZMA2 at the default preset (6) with
// the image's dictionary and a CRC32 check, and a block that does not fit
// in its own size is stored uncompressed. No Go library matches liblzma's
// ratio (github.com/ulikunitz/xz, used without cgo, is ~12% larger), hence
// this small binding.
type xzCompressor struct{ dictSize int }

// newXzCompressor returns an xz compressor with dictionary dictSize.
func newXzCompressor(dictSize int) compressor { return xzCompressor{dictSize} }

func (x xzCompressor) compress(dst, src []byte) ([]byte, bool, error) {
	return compressInC(dst, src, func(in *C.uint8_t, inLen C.size_t, out *C.uint8_t, outCap C.size_t, n *C.size_t) (bool, error) {
		switch ret := C.xz_block(in, inLen, out, outCap, n, C.uint32_t(x.dictSize)); ret {
		case C.LZMA_OK:
			return true, nil
		case C.LZMA_BUF_ERROR:
			return false, nil
		default:
			return false, fmt.Errorf("xz: liblzma error %d", int(ret))
		}
	})
}
