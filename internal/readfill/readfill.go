// Package readfill reads a buffer full and keeps the reader's own error:
// unlike io.ReadFull, which reports a short read that ends in io.EOF as
// io.ErrUnexpectedEOF, it tells a stream's clean end (io.EOF) from a
// decompressor's report that its stream was cut off
// (io.ErrUnexpectedEOF).
package readfill

import "io"

// Fill reads from r into buf until buf is full or r returns an error,
// and returns the bytes read and that error (nil when buf is full).
func Fill(r io.Reader, buf []byte) (n int, err error) {
	for n < len(buf) && err == nil {
		var m int
		m, err = r.Read(buf[n:])
		n += m
	}
	return n, err
}
