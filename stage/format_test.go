package stage

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"testing"
)

func TestDetectFormat(t *testing.T) {
	tarball := tarBytes(t, []tm{reg("a", 0o644, "a")})
	v7 := v7Header(t, tarball)
	gzipped := func(b []byte) []byte {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
		return buf.Bytes()
	}
	tests := []struct {
		name string
		data []byte
		want Format
		err  error
	}{
		{"tar", tarball, Tar, nil},
		{"v7 tar without magic", v7, Tar, nil},
		{"tar.gz", compress(t, TarGzip, tarball), TarGzip, nil},
		{"tar.xz", compress(t, TarXz, tarball), TarXz, nil},
		{"tar.zst", compress(t, TarZstd, tarball), TarZstd, nil},
		{"tar.bz2", compress(t, TarBzip2, tarball), TarBzip2, nil},
		{"zip", zipBytes(t, []tm{reg("a", 0o644, "a")}), Zip, nil},
		{"empty zip", zipBytes(t, nil), Zip, nil},
		{"empty file", nil, 0, ErrFormat},
		{"ELF binary", append([]byte("\x7fELF\x02\x01\x01"), make([]byte, 600)...), 0, ErrFormat},
		{"zeros", make([]byte, 10240), 0, ErrFormat},
		{"tar header with a bad checksum", corrupt(tarball, 0), 0, ErrFormat},
		{"gzip of a binary", gzipped([]byte("\x7fELF not a tar at all")), 0, ErrFormat},
		{"truncated gzip", compress(t, TarGzip, tarball)[:12], 0, ErrFormat},
		{"gzip magic alone", []byte{0x1f, 0x8b, 0x08}, 0, ErrFormat},
		{"bzip2 magic without a block", []byte("BZh9garbage"), 0, ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DetectFormat(bytes.NewReader(tt.data))
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("DetectFormat = %v, %v; want error %v", got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("DetectFormat = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// v7Header returns a copy of tarball whose first header has no ustar magic,
// as an old V7 tar writes it, with its checksum fixed.
func v7Header(t *testing.T, tarball []byte) []byte {
	t.Helper()
	b := bytes.Clone(tarball)
	clear(b[257:blockSize])
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b[:blockSize] {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	if !isTarHeader(b) {
		t.Fatal("v7Header built a bad header")
	}
	return b
}

// corrupt returns a copy of b with the byte at i flipped.
func corrupt(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0xff
	return c
}

func TestFormatString(t *testing.T) {
	for f, want := range map[Format]string{Tar: "tar", TarGzip: "tar.gz", TarXz: "tar.xz", TarZstd: "tar.zst", TarBzip2: "tar.bz2", Zip: "zip", 99: "Format(99)"} {
		if got := f.String(); got != want {
			t.Errorf("Format(%d).String() = %q, want %q", int(f), got, want)
		}
	}
}
