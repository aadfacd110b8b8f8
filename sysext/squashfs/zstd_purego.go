//go:build !cgo

package squashfs

import (
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// zstdCompressor is the pure-Go zstd of builds without cgo. Its levels
// only approximate libzstd's (its best mode compresses about like zstd
// 11), so images are larger than with the cgo build; the kernel and
// unsquashfs read both.
type zstdCompressor struct{ enc *zstd.Encoder }

// newZstdCompressor returns a zstd compressor whose frames declare a window
// no larger than one block, as the kernel requires.
func newZstdCompressor(level, blockSize int) (compressor, error) {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
		zstd.WithWindowSize(blockSize),
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(false))
	if err != nil {
		return nil, fmt.Errorf("zstd encoder: %w", err)
	}
	return zstdCompressor{enc}, nil
}

func (z zstdCompressor) compress(dst, src []byte) ([]byte, bool, error) {
	out := z.enc.EncodeAll(src, dst[:0])
	return out, len(out) < len(src), nil
}
