package squashfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"

	"github.com/sysext-bakery/bakery/sysext/tree"
)

// block is one unit of the data pipeline: a full data block of a file, or
// a sealed fragment block packing the tails of several files.
type block struct {
	seq  int
	in   []byte
	out  []byte
	disk uint32 // on-disk size word: length, uncompressed bit, 0 = sparse
	err  error

	run   int // index in writer.runs of the file this is a block of, -1 for a fragment
	index int // block index in file, or fragment index
	// filesBefore counts the files whose data was all read before this
	// block: once it is written, their inodes can be.
	filesBefore int
}

// treeResult is a stream's complete tree, or why there is none.
type treeResult struct {
	t   *tree.Tree
	err error
}

// writeData writes every regular file's blocks and the fragment blocks.
// One goroutine reads files in walk order as the stream hands them out,
// Workers goroutines compress, and the caller's goroutine writes blocks in
// read order and, once the tree is complete and as the data of each file
// is written, its inode and the listings of the directories that are
// complete. A fixed number of blocks is in flight, so memory does not
// depend on file sizes.
func (w *writer) writeData(ctx context.Context, s tree.Stream) error {
	comps := make([]compressor, w.opts.Workers)
	for i := range comps {
		var err error
		if comps[i], err = w.codec.newDataCompressor(); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bs := w.opts.BlockSize
	slots := make(chan struct{}, 4*w.opts.Workers+2)
	pool := sync.Pool{New: func() any { return make([]byte, bs) }}
	// Room for a block that does not compress, so the buffer is reused
	// instead of regrown: zstd, zlib, xz and lz4 add well under bs/8 to
	// incompressible input.
	outPool := sync.Pool{New: func() any { return make([]byte, 0, bs+bs/8+4096) }}
	jobs := make(chan *block, w.opts.Workers)
	results := make(chan *block, w.opts.Workers)
	trees := make(chan treeResult, 1)
	go func() {
		t, err := s.Tree(ctx)
		trees <- treeResult{t, err}
	}()

	var readErr error
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		defer close(jobs)
		readErr = w.readFiles(ctx, s, slots, &pool, jobs)
	}()
	var wg sync.WaitGroup
	for _, c := range comps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			compressBlocks(ctx, c, &outPool, jobs, results)
		}()
	}
	go func() {
		wg.Wait()
		close(results)
	}()

	pending := map[int]*block{}
	next, ready := 0, 0
	var werr error
	fail := func(err error) {
		if werr == nil {
			werr = err
			cancel()
		}
	}
	for results != nil {
		var b *block
		select {
		case r := <-trees:
			trees = nil
			if err := w.prepare(r); err != nil {
				fail(err)
			} else if err := w.walk.advance(w, ready); err != nil {
				fail(err)
			}
			continue
		case b = <-results:
		}
		switch {
		case b == nil:
			results = nil
			continue
		case werr != nil:
			continue
		case b.err != nil:
			fail(b.err)
			continue
		}
		pending[b.seq] = b
		for p := pending[next]; p != nil && werr == nil; p = pending[next] {
			delete(pending, next)
			next++
			if err := w.emitBlock(p); err != nil {
				fail(fmt.Errorf("write data: %w", err))
			}
			if p.out != nil && &p.out[:1][0] != &p.in[:1][0] {
				outPool.Put(p.out[:0])
			}
			pool.Put(p.in[:cap(p.in)])
			<-slots
			if ready = p.filesBefore; w.t != nil && werr == nil {
				if err := w.walk.advance(w, ready); err != nil {
					fail(err)
				}
			}
		}
	}
	<-readDone
	if werr == nil && trees != nil {
		werr = w.prepare(<-trees)
	}
	if werr != nil {
		return werr
	}
	return readErr
}

// emitBlock writes one compressed block at the end of the data so far.
func (w *writer) emitBlock(b *block) error {
	if b.run < 0 {
		w.frags = le.AppendUint64(w.frags, uint64(w.pos))
		w.frags = le.AppendUint32(w.frags, b.disk)
		w.frags = le.AppendUint32(w.frags, 0)
	} else {
		w.mu.Lock()
		r := &w.runs[b.run]
		if b.index == 0 {
			r.start = uint64(w.pos)
		}
		w.sizes[r.sizes+uint32(b.index)] = b.disk
		w.mu.Unlock()
		if b.disk == 0 {
			return nil // sparse
		}
	}
	return w.put(b.out)
}

// compressBlocks is one compressing worker.
func compressBlocks(ctx context.Context, c compressor, outPool *sync.Pool, jobs <-chan *block, results chan<- *block) {
	for b := range jobs {
		switch {
		case b.run >= 0 && isZero(b.in):
			b.disk = 0
		default:
			out, ok, err := c.compress(outPool.Get().([]byte), b.in)
			if err != nil {
				b.err = fmt.Errorf("compress: %w", err)
			}
			if ok {
				b.out, b.disk = out, uint32(len(out))
			} else {
				outPool.Put(out[:0])
				b.out, b.disk = b.in, uint32(len(b.in))|dataUncompressed
			}
		}
		select {
		case results <- b:
		case <-ctx.Done():
			return
		}
	}
}

// isZero reports whether p holds only zero bytes.
func isZero(p []byte) bool {
	for len(p) >= 8 {
		if le.Uint64(p) != 0 {
			return false
		}
		p = p[8:]
	}
	for _, c := range p {
		if c != 0 {
			return false
		}
	}
	return true
}

// atEnd checks that r, read to its file's recorded size, holds no more:
// a file that grew since it was walked must not go in cut short.
func atEnd(r io.Reader) error {
	var one [1]byte
	switch _, err := io.ReadFull(r, one[:]); err {
	case io.EOF:
		return nil
	case nil:
		return errors.New("it grew while the image was written")
	default:
		return err
	}
}

// readFiles reads every file with content in walk order, as s hands
// them out, cuts it into blocks and packs tails into fragments, and sends
// the blocks to jobs. A file whose content equals an earlier one's (see
// dedup) is not read again.
func (w *writer) readFiles(ctx context.Context, s tree.Stream, slots chan struct{}, pool *sync.Pool, jobs chan<- *block) error {
	bs := w.opts.BlockSize
	seq, rank := 0, 0
	acquire := func() ([]byte, error) {
		select {
		case slots <- struct{}{}:
			return pool.Get().([]byte)[:bs], nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	send := func(b *block) error {
		b.seq, b.filesBefore = seq, rank
		seq++
		select {
		case jobs <- b:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var frag []byte
	nfrags := 0
	tailBuf := make([]byte, bs)
	sealFragment := func() error {
		if len(frag) == 0 {
			return nil
		}
		b := &block{in: frag, run: -1, index: nfrags}
		nfrags++
		frag = nil
		return send(b)
	}
	dups := newDedup(s)
	for {
		f, err := s.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		full, tail := f.Size/int64(bs), int(f.Size%int64(bs))
		err = readContent(s, f, func(r io.Reader) error {
			var small []byte
			if full == 0 {
				small = tailBuf[:tail]
				if _, err := io.ReadFull(r, small); err != nil {
					return fmt.Errorf("read tail: %w (did the file change while writing?)", err)
				}
			}
			orig, err := dups.original(f, int32(rank), small)
			if err != nil {
				return err
			}
			l, run, err := w.addLayout(orig, full)
			if err != nil || orig >= 0 {
				return err
			}
			for i := range int(full) {
				buf, err := acquire()
				if err != nil {
					return err
				}
				if _, err := io.ReadFull(r, buf); err != nil {
					return fmt.Errorf("read block %d: %w (did the file change while writing?)", i, err)
				}
				if err := send(&block{in: buf, run: run, index: i}); err != nil {
					return err
				}
			}
			if tail == 0 {
				return atEnd(r)
			}
			t := tailBuf[:tail]
			if full > 0 {
				if _, err := io.ReadFull(r, t); err != nil {
					return fmt.Errorf("read tail: %w (did the file change while writing?)", err)
				}
			}
			if len(frag)+tail > bs {
				if err := sealFragment(); err != nil {
					return err
				}
			}
			if frag == nil {
				buf, err := acquire()
				if err != nil {
					return err
				}
				frag = buf[:0]
			}
			w.mu.Lock()
			fl := w.layouts.At(l)
			fl.frag, fl.fragOffset = uint32(nfrags), uint32(len(frag))
			w.mu.Unlock()
			frag = append(frag, t...)
			return atEnd(r)
		})
		if err != nil {
			return fmt.Errorf("%s: %w", s.Path(f), err)
		}
		rank++
	}
	return sealFragment()
}

// addLayout records the layout of the next file, of full blocks, a
// duplicate of the file of rank orig when orig is not -1, and returns its
// rank and the index of its blocks in runs (-1 when it has none).
func (w *writer) addLayout(orig int32, full int64) (rank, run int, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.layouts.Len() >= math.MaxInt32 || int64(len(w.sizes))+full > math.MaxUint32 {
		return 0, 0, fmt.Errorf("more than %d files or %d blocks: too many for squashfs", math.MaxInt32, uint32(math.MaxUint32))
	}
	l := fileLayout{frag: invalidFragment, data: noBlocks}
	run = -1
	switch {
	case orig >= 0:
		l.data = dupOf(orig)
	case full > 0:
		run = len(w.runs)
		l.data = int32(run)
		w.runs = append(w.runs, blockRun{sizes: uint32(len(w.sizes))})
		w.sizes = append(w.sizes, make([]uint32, full)...)
	}
	return w.layouts.Append(l), run, nil
}
