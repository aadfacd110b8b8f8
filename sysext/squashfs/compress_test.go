package squashfs

import (
	"bytes"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/sysext-bakery/bakery/sysext"
)

// countingCompressor records whether it was asked and compresses nothing.
type countingCompressor struct{ calls int }

func (c *countingCompressor) compress(dst, src []byte) ([]byte, bool, error) {
	c.calls++
	return append(dst[:0], "squeezed"...), true, nil
}

func TestProbeSkipsIncompressibleBlocks(t *testing.T) {
	random := make([]byte, DefaultBlockSize)
	r := rand.New(rand.NewPCG(7, 7))
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	text := []byte(strings.Repeat("kubelet containerd systemd sysext overlay ", DefaultBlockSize/42))
	// prose is text without long repeats, as compressors meet it.
	words := strings.Fields("the quick brown fox jumps over a lazy dog while systemd merges extensions into usr and opt kernel modules firmware")
	var prose []byte
	for len(prose) < 16*DefaultBlockSize {
		prose = append(prose, words[r.IntN(len(words))]+" "...)
	}
	// A fragment block of small files: random ones and 1 KiB of text
	// past the probe's sample, too little for zstd 1 to shrink the block.
	mixed := append([]byte(nil), random...)
	copy(mixed[70000:], prose[:1024])
	probe, err := newZstdCompressor(1, DefaultBlockSize)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := probe.compress(make([]byte, 0, 2*DefaultBlockSize), mixed); ok {
		t.Fatal("zstd 1 shrinks the mixed block: it tests nothing")
	}
	// Already compressed data, which no compressor shrinks again.
	compressed := func(name string, w func(io.Writer) io.WriteCloser) []byte {
		var buf bytes.Buffer
		zw := w(&buf)
		zw.Write(prose)
		if err := zw.Close(); err != nil {
			t.Fatal(name, err)
		}
		if buf.Len() < DefaultBlockSize {
			t.Fatalf("%s output of %d bytes is less than a block", name, buf.Len())
		}
		return buf.Bytes()[:DefaultBlockSize]
	}
	gzipped := compressed("gzip", func(w io.Writer) io.WriteCloser { return gzip.NewWriter(w) })
	zstded := compressed("zstd", func(w io.Writer) io.WriteCloser {
		zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
		if err != nil {
			t.Fatal(err)
		}
		return zw
	})
	xzed := compressed("xz", func(w io.Writer) io.WriteCloser {
		xw, err := xz.NewWriter(w)
		if err != nil {
			t.Fatal(err)
		}
		return xw
	})
	for _, tc := range []struct {
		name      string
		src       []byte
		wantCalls int
		wantOK    bool
	}{
		{"random data is stored without asking the slow compressor", random, 0, false},
		{"gzip output is stored without asking", gzipped, 0, false},
		{"zstd output is stored without asking", zstded, 0, false},
		{"xz output is stored without asking", xzed, 0, false},
		{"random data with some text goes to the slow compressor", mixed, 1, true},
		{"compressible data goes to the slow compressor", text, 1, true},
		{"compressible start, random rest", append(text[:probeSample:probeSample], random[probeSample:]...), 1, true},
		{"random start, compressible rest", append(random[:probeSample:probeSample], text[probeSample:]...), 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			slow := &countingCompressor{}
			out, ok, err := probed{probe: probe, c: slow}.compress(make([]byte, 0, 2*DefaultBlockSize), tc.src)
			if err != nil || ok != tc.wantOK || slow.calls != tc.wantCalls {
				t.Fatalf("ok %v, err %v, slow compressor asked %d times; want ok %v, %d times", ok, err, slow.calls, tc.wantOK, tc.wantCalls)
			}
			if ok && !bytes.Equal(out, []byte("squeezed")) {
				t.Errorf("output %q is not the slow compressor's", out)
			}
		})
	}
}

func TestProbedCodecs(t *testing.T) {
	for _, tc := range []struct {
		comp       string
		level      int
		wantProbed bool
	}{
		{"zstd", 3, false},
		{"zstd", probeFromZstdLevel - 1, false},
		{"zstd", probeFromZstdLevel, true},
		{"zstd", 22, true},
		{"xz", 0, true},
		{"gzip", 9, false},
		{"lz4", 9, false},
	} {
		k, err := newCodec(sysext.Compression(tc.comp), tc.level, DefaultBlockSize)
		if err != nil {
			t.Fatal(err)
		}
		c, err := k.newDataCompressor()
		if err != nil {
			t.Fatal(err)
		}
		if _, got := c.(probed); got != tc.wantProbed {
			t.Errorf("%s %d: probed %v, want %v", tc.comp, tc.level, got, tc.wantProbed)
		}
	}
}
