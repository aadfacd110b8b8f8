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
	// Random bytes of 250 values: too little skew for zstd 1 to gain its
	// minimum by coding them, too much to look random.
	uneven := make([]byte, DefaultBlockSize)
	for i := range uneven {
		uneven[i] = byte(r.Uint32() % 250)
	}
	probe, err := newZstdCompressor(1, DefaultBlockSize)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := probe.compress(make([]byte, 0, 2*DefaultBlockSize), uneven); ok {
		t.Fatal("zstd 1 shrinks the uneven block: it tests nothing")
	}
	for _, tc := range []struct {
		name      string
		src       []byte
		wantCalls int
		wantOK    bool
	}{
		{"random data is stored without asking the slow compressor", random, 0, false},
		{"uneven data the probe cannot shrink goes to the slow compressor", uneven, 1, true},
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

func TestLooksRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	random := func(n, values int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.IntN(values))
		}
		return b
	}
	for _, tc := range []struct {
		name string
		src  []byte
		want bool
	}{
		{"random, one block", random(DefaultBlockSize, 256), true},
		{"random, 1 MiB", random(1<<20, 256), true},
		{"random, 4 KiB", random(4096, 256), true},
		{"random, too short to tell", random(4095, 256), false},
		{"random over 250 values", random(DefaultBlockSize, 250), false},
		{"random with 3% text", append(random(DefaultBlockSize-4000, 256), strings.Repeat("text ", 800)...), false},
		{"text", []byte(strings.Repeat("kubelet containerd ", DefaultBlockSize/19)), false},
		{"zeros", make([]byte, DefaultBlockSize), false},
	} {
		if got := looksRandom(tc.src); got != tc.want {
			t.Errorf("%s: looksRandom = %v, want %v", tc.name, got, tc.want)
		}
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
