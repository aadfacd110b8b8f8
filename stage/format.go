package stage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Format is an archive format recognised by its content.
type Format int

// The supported formats. The compressed ones hold a tar stream.
const (
	Tar Format = iota + 1
	TarGzip
	TarXz
	TarZstd
	TarBzip2
	Zip
)

// String returns the usual file name suffix of the format, such as "tar.gz".
func (f Format) String() string {
	switch f {
	case Tar:
		return "tar"
	case TarGzip:
		return "tar.gz"
	case TarXz:
		return "tar.xz"
	case TarZstd:
		return "tar.zst"
	case TarBzip2:
		return "tar.bz2"
	case Zip:
		return "zip"
	}
	return "Format(" + strconv.Itoa(int(f)) + ")"
}

// blockSize is the size of a tar header block.
const blockSize = 512

// magics maps the leading bytes of each compressed stream and of zip to its
// format.
var magics = []struct {
	prefix []byte
	format Format
}{
	{[]byte{0x1f, 0x8b, 0x08}, TarGzip},
	{[]byte{0xfd, '7', 'z', 'X', 'Z', 0x00}, TarXz},
	{[]byte{0x28, 0xb5, 0x2f, 0xfd}, TarZstd},
	{[]byte("PK\x03\x04"), Zip},
	{[]byte("PK\x05\x06"), Zip}, // an empty zip: the end record alone
}

// DetectFormat identifies the archive in r by its magic bytes, never by a
// file name, and never quotes them in an error. For a compressed stream it also checks that the stream starts
// with a tar header. It returns an error wrapping [ErrFormat] for anything
// else.
func DetectFormat(r io.ReaderAt) (Format, error) {
	head := make([]byte, blockSize)
	n, err := r.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("reading the archive header: %w", err)
	}
	head = head[:n]
	format := Format(0)
	for _, m := range magics {
		if bytes.HasPrefix(head, m.prefix) {
			format = m.format
		}
	}
	if isBzip2(head) {
		format = TarBzip2
	}
	switch {
	case format == Zip:
		return Zip, nil
	case format == 0 && isTarHeader(head):
		return Tar, nil
	case format == 0:
		return 0, refused(ErrFormat, "not a tar, tar.gz, tar.xz, tar.zst, tar.bz2 or zip archive (it starts with none of their magic bytes, nor with a tar header) — check the source URL and that the file is an archive, or use install: for a single file")
	}
	inner, closeFn, err := decompress(format, io.NewSectionReader(r, 0, math.MaxInt64))
	if err != nil {
		return 0, refused(ErrFormat, "corrupt %s stream: %v", format, err)
	}
	defer closeFn()
	block := make([]byte, blockSize)
	if _, err := io.ReadFull(inner, block); err != nil || !isTarHeader(block) {
		return 0, refused(ErrFormat, "the %s stream does not start with a tar header — only compressed tar archives can be extracted; use install: for a single compressed file", strings.TrimPrefix(format.String(), "tar."))
	}
	return format, nil
}

// isBzip2 reports whether b starts a bzip2 stream: "BZh", a block size
// digit, then the magic of a block or of the end of the stream.
func isBzip2(b []byte) bool {
	if len(b) < 10 || !bytes.HasPrefix(b, []byte("BZh")) || b[3] < '1' || b[3] > '9' {
		return false
	}
	return bytes.HasPrefix(b[4:], []byte{0x31, 0x41, 0x59, 0x26, 0x53, 0x59}) ||
		bytes.HasPrefix(b[4:], []byte{0x17, 0x72, 0x45, 0x38, 0x50, 0x90})
}

// isTarHeader reports whether b starts with a tar header block whose
// checksum is right: true for V7, ustar, GNU and PAX headers alike.
func isTarHeader(b []byte) bool {
	if len(b) < blockSize {
		return false
	}
	field := strings.Trim(string(b[148:156]), " \x00")
	want, err := strconv.ParseInt(field, 8, 64)
	if err != nil {
		return false
	}
	var unsigned, signed int64
	for i, c := range b[:blockSize] {
		if i >= 148 && i < 156 {
			c = ' '
		}
		unsigned += int64(c)
		signed += int64(int8(c))
	}
	return want == unsigned || want == signed
}
