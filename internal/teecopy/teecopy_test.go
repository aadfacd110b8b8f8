package teecopy

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

// failingWriter takes limit bytes, then fails.
type failingWriter struct {
	limit int
	n     int
	err   error
}

func (w *failingWriter) Write(b []byte) (int, error) {
	if w.n+len(b) > w.limit {
		k := w.limit - w.n
		w.n = w.limit
		return k, w.err
	}
	w.n += len(b)
	return len(b), nil
}

// shortWriter claims to take half of every write without an error.
type shortWriter struct{}

func (shortWriter) Write(b []byte) (int, error) { return len(b) / 2, nil }

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += n
	return n, err
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(1, uint64(n)))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestCopyDeliversEverythingInOrder(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int
		src  func([]byte) io.Reader
	}{
		{"empty", 0, func(b []byte) io.Reader { return bytes.NewReader(b) }},
		{"one byte", 1, func(b []byte) io.Reader { return bytes.NewReader(b) }},
		{"exactly one chunk", chunkSize, func(b []byte) io.Reader { return bytes.NewReader(b) }},
		{"more chunks than buffers", chunks*chunkSize*3 + 12345, func(b []byte) io.Reader { return bytes.NewReader(b) }},
		{"short reads", 3*chunkSize + 7, func(b []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) }},
		{"data with io.EOF", chunkSize + 5, func(b []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := randomBytes(tc.size)
			var a, b bytes.Buffer
			h := sha256.New()
			n, err := Copy(tc.src(data), &a, h, &b)
			if err != nil || n != int64(len(data)) {
				t.Fatalf("Copy = %d, %v; want %d, nil", n, err, len(data))
			}
			if !bytes.Equal(a.Bytes(), data) || !bytes.Equal(b.Bytes(), data) {
				t.Error("a writer got other bytes than were read")
			}
			if want := sha256.Sum256(data); !bytes.Equal(h.Sum(nil), want[:]) {
				t.Error("the hash writer got other bytes than were read")
			}
		})
	}
}

func TestCopyReportsFailures(t *testing.T) {
	boom := errors.New("boom")
	size := chunks * chunkSize * 4
	for _, tc := range []struct {
		name    string
		src     io.Reader
		dsts    func() []io.Writer
		wantErr error
		wantN   int64
		maxRead int // bytes the copy may read at most (0: no limit)
	}{
		{
			name:    "source fails midway",
			src:     io.MultiReader(bytes.NewReader(randomBytes(chunkSize+10)), iotest.ErrReader(boom)),
			dsts:    func() []io.Writer { return []io.Writer{io.Discard, io.Discard} },
			wantErr: boom, wantN: chunkSize + 10,
		},
		{
			name:    "writer fails: reading stops",
			src:     bytes.NewReader(randomBytes(size)),
			dsts:    func() []io.Writer { return []io.Writer{&failingWriter{limit: chunkSize + 1, err: boom}} },
			wantErr: boom, wantN: chunkSize + 1,
			// What was read before the failure was seen: the buffers in
			// flight and the one being filled.
			maxRead: (chunks + 2) * chunkSize,
		},
		{
			name:    "short write",
			src:     bytes.NewReader(randomBytes(chunkSize)),
			dsts:    func() []io.Writer { return []io.Writer{shortWriter{}} },
			wantErr: io.ErrShortWrite, wantN: chunkSize / 2,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &countingReader{r: tc.src}
			n, err := Copy(src, tc.dsts()...)
			if !errors.Is(err, tc.wantErr) || n != tc.wantN {
				t.Errorf("Copy = %d, %v; want %d, %v", n, err, tc.wantN, tc.wantErr)
			}
			if tc.maxRead > 0 && src.n > tc.maxRead {
				t.Errorf("read %d bytes after the failure, want at most %d", src.n, tc.maxRead)
			}
		})
	}
}

func BenchmarkCopy(b *testing.B) {
	data := randomBytes(64 << 20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Copy(bytes.NewReader(data), io.Discard, sha256.New()); err != nil {
			b.Fatal(err)
		}
	}
}
