package squashfs

import (
	"context"
	"fmt"
	"io"
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

	file  *fileLayout // data block of this file, nil for a fragment
	index int         // block index in file, or fragment index
	// filesBefore counts the files whose data was all read before this
	// block: once it is written, their inodes can be.
	filesBefore int
}

// writeData writes every regular file's blocks and the fragment blocks.
// One goroutine reads files in walk order, Workers goroutines compress, and
// the caller's goroutine writes blocks in read order and, as the data of
// each file is written, its inode and the listings of the directories
// that are complete. A fixed number of blocks is in flight, so memory
// does not depend on file sizes.
func (w *writer) writeData(ctx context.Context) error {
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

	var readErr error
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		defer close(jobs)
		readErr = w.readFiles(ctx, slots, &pool, jobs)
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
	next := 0
	var werr error
	for b := range results {
		if werr != nil {
			continue
		}
		if b.err != nil {
			werr = b.err
			cancel()
			continue
		}
		pending[b.seq] = b
		for p := pending[next]; p != nil; p = pending[next] {
			delete(pending, next)
			next++
			if err := w.emitBlock(p); err != nil {
				werr = fmt.Errorf("write data: %w", err)
				cancel()
				break
			}
			if p.out != nil && &p.out[:1][0] != &p.in[:1][0] {
				outPool.Put(p.out[:0])
			}
			pool.Put(p.in[:cap(p.in)])
			<-slots
			if err := w.walk.advance(w, p.filesBefore); err != nil {
				werr = err
				cancel()
				break
			}
		}
	}
	<-readDone
	if werr != nil {
		return werr
	}
	return readErr
}

// emitBlock writes one compressed block at the end of the data so far.
func (w *writer) emitBlock(b *block) error {
	if b.file == nil {
		w.frags = le.AppendUint64(w.frags, uint64(w.pos))
		w.frags = le.AppendUint32(w.frags, b.disk)
		w.frags = le.AppendUint32(w.frags, 0)
	} else {
		if b.index == 0 {
			b.file.start = uint64(w.pos)
		}
		w.sizes[b.file.sizes+uint32(b.index)] = b.disk
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
		case b.file != nil && isZero(b.in):
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

// readFiles reads every file with content in walk order, cuts it into
// blocks and packs tails into fragments, and sends the blocks to jobs. A
// file whose content equals an earlier one's (see dedup) is not read
// again.
func (w *writer) readFiles(ctx context.Context, slots chan struct{}, pool *sync.Pool, jobs chan<- *block) error {
	bs := w.opts.BlockSize
	seq, rank, nsizes := 0, 0, uint32(0)
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
		b := &block{in: frag, index: nfrags}
		nfrags++
		frag = nil
		return send(b)
	}
	dups := newDedup(w.t)
	for i := range w.t.Len() {
		f := tree.Ino(i)
		if !w.t.HasContent(f) {
			continue
		}
		size := w.t.Size(f)
		full, tail := size/int64(bs), int(size%int64(bs))
		l := &w.layouts[rank]
		l.frag = invalidFragment
		err := readContent(w.t, f, func(r io.Reader) error {
			var small []byte
			if full == 0 {
				small = tailBuf[:tail]
				if _, err := io.ReadFull(r, small); err != nil {
					return fmt.Errorf("read tail: %w (did the file change while writing?)", err)
				}
			}
			orig, err := dups.original(seen{f, int32(rank)}, small)
			if err != nil || orig >= 0 {
				l.dupOf = orig + 1
				return err
			}
			l.sizes = nsizes
			nsizes += uint32(full)
			for i := range int(full) {
				buf, err := acquire()
				if err != nil {
					return err
				}
				if _, err := io.ReadFull(r, buf); err != nil {
					return fmt.Errorf("read block %d: %w (did the file change while writing?)", i, err)
				}
				if err := send(&block{in: buf, file: l, index: i}); err != nil {
					return err
				}
			}
			if tail == 0 {
				return nil
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
			l.frag, l.fragOffset = uint32(nfrags), uint32(len(frag))
			frag = append(frag, t...)
			return nil
		})
		if err != nil {
			return fmt.Errorf("%s: %w", w.t.Path(f), err)
		}
		rank++
	}
	return sealFragment()
}
