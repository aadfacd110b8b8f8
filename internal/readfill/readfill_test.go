package readfill

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func TestFill(t *testing.T) {
	boom := errors.New("boom")
	data := []byte("0123456789")
	for _, tc := range []struct {
		name    string
		r       io.Reader
		size    int
		wantN   int
		wantErr error
	}{
		{"full", iotest.OneByteReader(bytes.NewReader(data)), 4, 4, nil},
		{"exactly the data", bytes.NewReader(data), 10, 10, nil},
		{"short, clean end", iotest.HalfReader(bytes.NewReader(data)), 16, 10, io.EOF},
		{"short, cut off", io.MultiReader(bytes.NewReader(data), iotest.ErrReader(io.ErrUnexpectedEOF)), 16, 10, io.ErrUnexpectedEOF},
		{"data and an error at once", iotest.DataErrReader(bytes.NewReader(data)), 16, 10, io.EOF},
		{"an error first", iotest.ErrReader(boom), 4, 0, boom},
		{"empty buffer", iotest.ErrReader(boom), 0, 0, nil},
	} {
		n, err := Fill(tc.r, make([]byte, tc.size))
		if n != tc.wantN || err != tc.wantErr {
			t.Errorf("%s: Fill = %d, %v; want %d, %v", tc.name, n, err, tc.wantN, tc.wantErr)
		}
	}
}
