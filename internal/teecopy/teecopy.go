// Package teecopy copies a stream to several writers at once, overlapping
// the reading of the next chunk with the writing of the last one and
// feeding the writers in parallel. A download written to a file while it
// is hashed then costs the slowest of the three, not their sum.
package teecopy

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"github.com/sysext-bakery/bakery/internal/readfill"
)

const (
	chunkSize = 1 << 20 // bytes per read
	chunks    = 4       // buffers in flight
)

// chunk is one buffer on its way to every writer; the last writer done
// with it hands it back.
type chunk struct {
	buf  []byte
	n    int
	refs atomic.Int32
}

// Copy reads src to its end and writes everything to each of dsts, in
// order. It returns how many bytes every writer took and the first error
// of a writer or else of src. After a writer fails, nothing more is read;
// after src fails, what it gave before is still written.
func Copy(src io.Reader, dsts ...io.Writer) (int64, error) {
	free := make(chan *chunk, chunks)
	for range chunks {
		free <- &chunk{buf: make([]byte, chunkSize)}
	}
	var (
		mu        sync.Mutex
		writerErr error
		wg        sync.WaitGroup
	)
	failed := func() bool { mu.Lock(); defer mu.Unlock(); return writerErr != nil }
	written := make([]int64, len(dsts))
	feeds := make([]chan *chunk, len(dsts))
	for i, w := range dsts {
		feeds[i] = make(chan *chunk, chunks)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range feeds[i] {
				if !failed() {
					n, err := w.Write(c.buf[:c.n])
					written[i] += int64(n)
					if err == nil && n < c.n {
						err = io.ErrShortWrite
					}
					if err != nil {
						mu.Lock()
						if writerErr == nil {
							writerErr = err
						}
						mu.Unlock()
					}
				}
				if c.refs.Add(-1) == 0 {
					free <- c
				}
			}
		}()
	}
	var srcErr error
	for srcErr == nil && !failed() {
		c := <-free
		c.n, srcErr = readfill.Fill(src, c.buf)
		if c.n == 0 {
			free <- c
			continue
		}
		c.refs.Store(int32(len(dsts)))
		for _, f := range feeds {
			f <- c
		}
	}
	for _, f := range feeds {
		close(f)
	}
	wg.Wait()
	var total int64
	for i, n := range written {
		if i == 0 || n < total {
			total = n
		}
	}
	if writerErr != nil {
		return total, writerErr
	}
	if errors.Is(srcErr, io.EOF) {
		srcErr = nil
	}
	return total, srcErr
}
