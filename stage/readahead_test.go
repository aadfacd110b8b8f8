package stage

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"
	"testing/iotest"
	"time"
)

func TestReadAhead(t *testing.T) {
	boom := errors.New("corrupt input")
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct {
		name string
		size int
		err  error // after the data, instead of io.EOF
	}{
		{"empty", 0, nil},
		{"small", 100, nil},
		{"one buffer", readAheadBuffer, nil},
		{"many buffers and a bit", 7*readAheadBuffer + 3, nil},
		{"error after data", 2*readAheadBuffer + 5, boom},
		{"error at once", 0, boom},
		{"cut off after data", readAheadBuffer + 7, io.ErrUnexpectedEOF},
	} {
		t.Run(c.name, func(t *testing.T) {
			data := make([]byte, c.size)
			for i := range data {
				data[i] = byte(rng.Uint32())
			}
			var src io.Reader = bytes.NewReader(data)
			if c.err != nil {
				src = io.MultiReader(src, iotest.ErrReader(c.err))
			}
			r, stop := readAhead(iotest.HalfReader(src))
			defer stop()
			got, err := io.ReadAll(iotest.OneByteReader(io.LimitReader(r, int64(c.size)+1)))
			if c.err == nil && err != nil || c.err != nil && !errors.Is(err, c.err) {
				t.Fatalf("read: %v, want %v", err, c.err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("read %d bytes, not the %d written", len(got), len(data))
			}
		})
	}
}

// TestReadAheadStop checks that stop ends the goroutine of a reader that
// was not read to the end.
func TestReadAheadStop(t *testing.T) {
	before := runtime.NumGoroutine()
	for range 20 {
		r, stop := readAhead(bytes.NewReader(make([]byte, 10*readAheadBuffer)))
		if _, err := r.Read(make([]byte, 10)); err != nil {
			t.Fatal(err)
		}
		stop()
		stop() // twice is harmless
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after stop, %d before", n, before)
	}
}
