package stage

import (
	"io"
	"sync"

	"github.com/sysext-bakery/bakery/internal/readfill"
)

// readAheadBuffer is the size of each buffer readAhead fills, and
// readAheadDepth how many it fills ahead of the reader: 4 MiB at most.
const (
	readAheadBuffer = 1 << 20
	readAheadDepth  = 3
)

// readAhead reads r in its own goroutine, a few buffers ahead of the
// returned reader, so that decompressing an archive (one core) overlaps
// writing its members out (the other). Errors of r, io.EOF included, reach
// the reader after the data read before them. stop ends the goroutine and
// waits for it; call it once the reader is no longer used.
func readAhead(r io.Reader) (rd io.Reader, stop func()) {
	a := &aheadReader{
		full: make(chan chunk, readAheadDepth),
		free: make(chan []byte, readAheadDepth+1),
		done: make(chan struct{}),
	}
	for range readAheadDepth + 1 {
		a.free <- make([]byte, readAheadBuffer)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(a.full)
		for {
			var buf []byte
			select {
			case buf = <-a.free:
			case <-a.done:
				return
			}
			n, err := readfill.Fill(r, buf)
			select {
			case a.full <- chunk{buf[:n], err}:
			case <-a.done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	var once sync.Once
	return a, func() {
		once.Do(func() { close(a.done) })
		wg.Wait()
	}
}

// chunk is one buffer read ahead, and the error that ended it.
type chunk struct {
	data []byte
	err  error
}

// aheadReader hands out the chunks its goroutine read.
type aheadReader struct {
	full chan chunk
	free chan []byte
	done chan struct{}
	cur  chunk
	off  int
}

// Read copies from the current chunk, taking the next one when it is used
// up, and returns the chunk's error once its data is.
func (a *aheadReader) Read(p []byte) (int, error) {
	for a.off == len(a.cur.data) {
		if a.cur.err != nil {
			return 0, a.cur.err
		}
		if a.cur.data != nil {
			a.free <- a.cur.data[:cap(a.cur.data)]
		}
		c, ok := <-a.full
		if !ok {
			return 0, io.ErrClosedPipe
		}
		a.cur, a.off = c, 0
	}
	n := copy(p, a.cur.data[a.off:])
	a.off += n
	return n, nil
}
