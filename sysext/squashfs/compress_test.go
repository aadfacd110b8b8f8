package squashfs

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

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
	for _, tc := range []struct {
		name      string
		src       []byte
		wantCalls int
		wantOK    bool
	}{
		{"random data is stored without asking the slow compressor", random, 0, false},
		{"compressible data goes to the slow compressor", text, 1, true},
		{"compressible start, random rest", append(text[:probeSample:probeSample], random[probeSample:]...), 1, true},
		{"random start, compressible rest", append(random[:probeSample:probeSample], text[probeSample:]...), 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			probe, err := newZstdCompressor(1, DefaultBlockSize)
			if err != nil {
				t.Fatal(err)
			}
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
