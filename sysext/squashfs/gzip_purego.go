//go:build !cgo

package squashfs

import (
	"bytes"
	"fmt"
	"io"

	"github.com/klauspost/compress/zlib"
)

// gzipCompressor is the pure-Go zlib of builds without cgo
// (klauspost/compress): each block one zlib stream, as mksquashfs writes
// them, about 1% larger than zlib's own at level 9.
type gzipCompressor struct {
	w   *zlib.Writer
	buf bytes.Buffer
}

// newGzipCompressor returns a zlib compressor at level (1..9).
func newGzipCompressor(level int) (compressor, error) {
	zw, err := zlib.NewWriterLevel(io.Discard, level)
	if err != nil {
		return nil, fmt.Errorf("zlib encoder: %w", err)
	}
	return &gzipCompressor{w: zw}, nil
}

func (g *gzipCompressor) compress(dst, src []byte) ([]byte, bool, error) {
	g.buf = *bytes.NewBuffer(dst[:0])
	g.w.Reset(&g.buf)
	if _, err := g.w.Write(src); err != nil {
		return nil, false, fmt.Errorf("zlib: %w", err)
	}
	if err := g.w.Close(); err != nil {
		return nil, false, fmt.Errorf("zlib: %w", err)
	}
	out := g.buf.Bytes()
	return out, len(out) < len(src), nil
}
