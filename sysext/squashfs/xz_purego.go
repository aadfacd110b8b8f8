//go:build !cgo

package squashfs

import (
	"bytes"
	"fmt"

	"github.com/ulikunitz/xz"
)

// xzCompressor is the pure-Go xz of builds without cgo: single LZMA2
// streams with a CRC32 check, as mksquashfs writes them, but about a tenth
// larger than liblzma's.
type xzCompressor struct {
	cfg xz.WriterConfig
	buf bytes.Buffer
}

// newXzCompressor returns an xz compressor with dictionary dictSize.
func newXzCompressor(dictSize int) compressor {
	return &xzCompressor{cfg: xz.WriterConfig{DictCap: dictSize, CheckSum: xz.CRC32}}
}

func (x *xzCompressor) compress(dst, src []byte) ([]byte, bool, error) {
	x.buf = *bytes.NewBuffer(dst[:0])
	w, err := x.cfg.NewWriter(&x.buf)
	if err != nil {
		return nil, false, fmt.Errorf("xz: %w", err)
	}
	if _, err := w.Write(src); err != nil {
		return nil, false, fmt.Errorf("xz: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, false, fmt.Errorf("xz: %w", err)
	}
	out := x.buf.Bytes()
	return out, len(out) < len(src), nil
}
