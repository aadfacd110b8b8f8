package squashfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/sysext-bakery/bakery/sysext"
	"github.com/ulikunitz/xz/lzma"
)

// codec describes one image's block compression: the superblock's
// compressor id, its options block and the settings of each compressor.
type codec struct {
	name      sysext.Compression
	id        uint16
	level     int
	blockSize int
	// dictSize is the xz dictionary: the kernel uses max(block size, 8 KiB)
	// when the image carries no xz options.
	dictSize int
	// options is the compressor options block mksquashfs would write, nil
	// when it writes none.
	options []byte
}

// Default levels, as mksquashfs has them.
const (
	defaultZstdLevel = 15
	defaultGzipLevel = 9
)

// newCodec checks a compression and level and returns its codec.
func newCodec(c sysext.Compression, level, blockSize int) (*codec, error) {
	k := &codec{name: c, level: level, blockSize: blockSize}
	switch c {
	case sysext.Zstd, "":
		k.name, k.id = sysext.Zstd, compZstd
		if level == 0 {
			k.level = defaultZstdLevel
		}
		if k.level < 1 || k.level > 22 {
			return nil, fmt.Errorf("zstd level %d: use 1..22", level)
		}
		if k.level != defaultZstdLevel {
			k.options = le.AppendUint32(nil, uint32(k.level))
		}
	case sysext.Gzip:
		k.id = compGzip
		if level == 0 {
			k.level = defaultGzipLevel
		}
		if k.level < 1 || k.level > 9 {
			return nil, fmt.Errorf("gzip level %d: use 1..9", level)
		}
		if k.level != defaultGzipLevel {
			// compression level, window size 15, no strategies.
			k.options = le.AppendUint16(le.AppendUint16(le.AppendUint32(nil, uint32(k.level)), 15), 0)
		}
	case sysext.Xz:
		k.id = compXz
		if level != 0 {
			return nil, fmt.Errorf("xz level %d: xz takes no level (leave it 0)", level)
		}
		k.dictSize = max(blockSize, metadataSize)
		if k.dictSize != blockSize {
			// dictionary size, no BCJ filters.
			k.options = le.AppendUint32(le.AppendUint32(nil, uint32(k.dictSize)), 0)
		}
	case sysext.Lz4:
		k.id = compLz4
		if level < 0 || level > 9 {
			return nil, fmt.Errorf("lz4 level %d: use 0 or 1 (fast) or 2..9 (high compression)", level)
		}
		var flags uint32
		if level > 1 {
			flags = 1 // LZ4_HC
		}
		// The kernel requires lz4 options: version 1 (LZ4_LEGACY) and flags.
		k.options = le.AppendUint32(le.AppendUint32(nil, 1), flags)
	case sysext.None:
		k.id = compGzip // what mksquashfs records with every table uncompressed
		if level != 0 {
			return nil, fmt.Errorf("compression none takes no level (leave it 0)")
		}
	default:
		return nil, fmt.Errorf("compression %q: use zstd, gzip, xz, lz4 or none", c)
	}
	return k, nil
}

// compressor compresses blocks; each worker owns one.
type compressor interface {
	// compress returns src compressed into dst's storage, or ok false when
	// the result would not be smaller than src.
	compress(dst, src []byte) (out []byte, ok bool, err error)
}

// probeFromZstdLevel is the zstd level from which blocks are probed before
// they are compressed (see probed); below it zstd is as fast as the probe.
const probeFromZstdLevel = 10

// newDataCompressor returns a compressor of data blocks for one goroutine:
// the codec's, probed first where that is slow (xz, zstd from level 10).
func (k *codec) newDataCompressor() (compressor, error) {
	c, err := k.newCompressor()
	if err != nil || !(k.name == sysext.Xz || k.name == sysext.Zstd && k.level >= probeFromZstdLevel) {
		return c, err
	}
	probe, err := newZstdCompressor(1, k.blockSize)
	if err != nil {
		return nil, err
	}
	return probed{probe: probe, c: c}, nil
}

// probeSample is how much of a block the probe tries first: when that
// much compresses, the block goes to the slow compressor at once.
const probeSample = 16 << 10

// probeWindow is the size of the pieces of a block the probe tries one by
// one when it cannot shrink the whole: a piece it shrinks sends the block
// to the slow compressor.
const probeWindow = 4 << 10

// probed stores a block as is, without asking the slow compressor c, when
// zstd's fastest level (the probe) can make neither the block nor any
// probeWindow of it smaller: random or already compressed data, which xz
// or zstd 19 would spend their full time on only to find (nearly) the
// same. Image trees often hold such files (compressed firmware and
// modules, archives, man pages). A block mixing such data with a little
// text, as a fragment block of small files does, can defeat the probe as
// a whole and still be shrunk by c; its text shows in a window. Figures
// (BENCHMARKS.md): on the 500,000-file benchmark tree at zstd 15, the
// probe of whole blocks alone stored 95 blocks c could shrink (0.13% of
// the image), with the windows none; on 70 MB of gzip and zstd output at
// xz, whole blocks alone made the image 0.32% larger than mksquashfs's in
// 0.07 of its time, with the windows 0.07% larger in 0.28 of its time.
// Compressible blocks cost the probe only its first probeSample bytes.
type probed struct{ probe, c compressor }

func (p probed) compress(dst, src []byte) ([]byte, bool, error) {
	if len(src) > probeSample {
		_, ok, err := p.probe.compress(dst, src[:probeSample])
		if err != nil {
			return dst[:0], false, err
		}
		if ok {
			return p.c.compress(dst, src)
		}
	}
	out, ok, err := p.probe.compress(dst, src)
	if err != nil {
		return out, ok, err
	}
	for start := 0; !ok && start < len(src) && len(src) > probeWindow; start += probeWindow {
		if _, ok, err = p.probe.compress(dst, src[start:min(start+probeWindow, len(src))]); err != nil {
			return dst[:0], false, err
		}
	}
	if !ok {
		return dst[:0], false, nil
	}
	return p.c.compress(dst, src)
}

// newMetadataCompressor returns the compressor of metadata blocks (8 KiB):
// the codec's, with xz's dictionary cut to the block, as mksquashfs has
// it. liblzma sets up its match finder for the whole dictionary on every
// block, which took half a second for the 200 metadata blocks of the Go
// toolchain's tree.
func (k *codec) newMetadataCompressor() (compressor, error) {
	m := *k
	if m.name == sysext.Xz {
		m.dictSize = metadataSize
	}
	return m.newCompressor()
}

// newCompressor returns the codec's compressor for one goroutine.
func (k *codec) newCompressor() (compressor, error) {
	switch k.name {
	case sysext.Zstd:
		return newZstdCompressor(k.level, k.blockSize)
	case sysext.Gzip:
		return newGzipCompressor(k.level)
	case sysext.Xz:
		return newXzCompressor(k.dictSize), nil
	case sysext.Lz4:
		if k.level > 1 {
			return &lz4Compressor{hc: &lz4.CompressorHC{Level: lz4.CompressionLevel(1 << (8 + k.level))}}, nil
		}
		return &lz4Compressor{fast: &lz4.Compressor{}}, nil
	}
	return noneCompressor{}, nil
}

type lz4Compressor struct {
	fast *lz4.Compressor
	hc   *lz4.CompressorHC
}

func (l *lz4Compressor) compress(dst, src []byte) ([]byte, bool, error) {
	if cap(dst) < len(src) {
		dst = make([]byte, len(src))
	}
	dst = dst[:len(src)-1]
	var n int
	if l.hc != nil {
		n, _ = l.hc.CompressBlock(src, dst)
	} else {
		n, _ = l.fast.CompressBlock(src, dst)
	}
	// n == 0: does not fit in fewer bytes than src, so store it as is.
	return dst[:n], n > 0, nil
}

type noneCompressor struct{}

func (noneCompressor) compress([]byte, []byte) ([]byte, bool, error) { return nil, false, nil }

// errCorrupt marks data that does not decompress as the image claims.
var errCorrupt = errors.New("corrupt compressed block")

// decompressor inflates blocks of one image; safe for concurrent use.
type decompressor struct {
	id   uint16
	zstd *zstd.Decoder
	// dictSize bounds the xz dictionary a block may ask for.
	dictSize int
}

// newDecompressor returns the decompressor of a superblock's compressor id.
func newDecompressor(id uint16, blockSize int) (*decompressor, error) {
	d := &decompressor{id: id, dictSize: max(blockSize, metadataSize)}
	switch id {
	case compGzip, compXz, compLz4:
	case compZstd:
		dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxMemory(uint64(d.dictSize)), zstd.WithDecoderMaxWindow(uint64(d.dictSize)))
		if err != nil {
			return nil, fmt.Errorf("zstd decoder: %w", err)
		}
		d.zstd = dec
	case compLzma, compLzo:
		return nil, fmt.Errorf("compressor id %d (lzma/lzo) is not supported; rebuild the image with zstd, gzip, xz or lz4", id)
	default:
		return nil, fmt.Errorf("unknown compressor id %d", id)
	}
	return d, nil
}

// decompress inflates src into a new slice of at most limit bytes.
func (d *decompressor) decompress(src []byte, limit int) ([]byte, error) {
	var r io.Reader
	switch d.id {
	case compZstd:
		out, err := d.zstd.DecodeAll(src, make([]byte, 0, limit))
		if err != nil {
			return nil, fmt.Errorf("%w: zstd: %v", errCorrupt, err)
		}
		if len(out) > limit {
			return nil, fmt.Errorf("%w: zstd block inflates beyond %d bytes", errCorrupt, limit)
		}
		return out, nil
	case compLz4:
		out := make([]byte, limit)
		n, err := lz4.UncompressBlock(src, out)
		if err != nil {
			return nil, fmt.Errorf("%w: lz4: %v", errCorrupt, err)
		}
		return out[:n], nil
	case compGzip:
		zr, err := zlib.NewReader(bytes.NewReader(src))
		if err != nil {
			return nil, fmt.Errorf("%w: zlib: %v", errCorrupt, err)
		}
		r = zr
	case compXz:
		xr, err := d.xzReader(src)
		if err != nil {
			return nil, err
		}
		r = xr
	}
	out, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	if len(out) > limit {
		return nil, fmt.Errorf("%w: block inflates beyond %d bytes", errCorrupt, limit)
	}
	return out, nil
}

// xzReader opens the LZMA2 data of an xz stream's first block with a
// dictionary no larger than the kernel allows, so that a hostile header
// cannot make the reader allocate a huge dictionary.
func (d *decompressor) xzReader(src []byte) (io.Reader, error) {
	// Stream header: magic, flags, CRC32.
	if len(src) < 13 || string(src[:6]) != "\xfd7zXZ\x00" {
		return nil, fmt.Errorf("%w: xz: no stream header", errCorrupt)
	}
	hdr := src[12:]
	size := (int(hdr[0]) + 1) * 4
	if hdr[0] == 0 || size > len(hdr) {
		return nil, fmt.Errorf("%w: xz: bad block header", errCorrupt)
	}
	flags := hdr[1]
	if flags&3 != 0 {
		return nil, fmt.Errorf("%w: xz: filters other than LZMA2 are not supported", errCorrupt)
	}
	p := 2
	for _, bit := range []byte{0x40, 0x80} { // compressed, uncompressed size
		if flags&bit != 0 {
			_, n := binary.Uvarint(hdr[p:size])
			if n <= 0 {
				return nil, fmt.Errorf("%w: xz: bad block header", errCorrupt)
			}
			p += n
		}
	}
	if p+3 > size || hdr[p] != 0x21 || hdr[p+1] != 1 {
		return nil, fmt.Errorf("%w: xz: block filter is not LZMA2", errCorrupt)
	}
	dict, err := lzma.DecodeDictCap(hdr[p+2])
	if err != nil || dict > int64(d.dictSize) {
		return nil, fmt.Errorf("%w: xz: dictionary larger than %d bytes", errCorrupt, d.dictSize)
	}
	r, err := lzma.Reader2Config{DictCap: d.dictSize}.NewReader2(bytes.NewReader(hdr[size:]))
	if err != nil {
		return nil, fmt.Errorf("%w: xz: %v", errCorrupt, err)
	}
	return r, nil
}
