//go:build cgo

package squashfs

import (
	"fmt"

	"github.com/DataDog/zstd"
)

// zstdCompressor compresses with libzstd (bundled by github.com/DataDog/zstd
// and linked statically), the library mksquashfs uses, so a level means
// what it means there: the same block compresses to the same size. Each
// block is one frame of a single ZSTD_compressCCtx call, whose window
// libzstd fits to the block, as the kernel requires.
type zstdCompressor struct {
	ctx   zstd.Ctx
	level int
}

// newZstdCompressor returns a libzstd compressor for one goroutine.
func newZstdCompressor(level, _ int) (compressor, error) {
	return &zstdCompressor{ctx: zstd.NewCtx(), level: level}, nil
}

func (z *zstdCompressor) compress(dst, src []byte) ([]byte, bool, error) {
	out, err := z.ctx.CompressLevel(dst[:cap(dst)], src, z.level)
	if err != nil {
		return dst[:0], false, fmt.Errorf("zstd: %w", err)
	}
	return out, len(out) < len(src), nil
}
