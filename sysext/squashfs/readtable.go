package squashfs

import "fmt"

// maxCachedBlocks is how many uncompressed metadata blocks a Reader keeps.
const maxCachedBlocks = 1024

// metaBlock returns the uncompressed metadata block at pos, which must lie
// before end (where its table ends), and the position of the block after
// it. Decompressing a block is charged to w.
func (r *Reader) metaBlock(pos, end uint64, w *work) ([]byte, uint64, error) {
	r.mu.Lock()
	c, ok := r.cache[pos]
	r.mu.Unlock()
	if !ok {
		var h [2]byte
		if pos > end || end-pos < 2 {
			return nil, 0, corrupt("metadata block at %d beyond its table's end %d", pos, end)
		}
		if err := r.readAt(h[:], pos); err != nil {
			return nil, 0, err
		}
		word := le.Uint16(h[:])
		n := int(word &^ metaUncompressed)
		if n == 0 || n > metadataSize {
			return nil, 0, corrupt("metadata block at %d has length %d", pos, n)
		}
		raw := make([]byte, n)
		if err := r.readAt(raw, pos+2); err != nil {
			return nil, 0, err
		}
		data := raw
		if word&metaUncompressed == 0 {
			var err error
			if data, err = r.dec.decompress(raw, metadataSize); err != nil {
				return nil, 0, fmt.Errorf("metadata block at %d: %w", pos, err)
			}
		}
		if len(data) == 0 {
			return nil, 0, corrupt("metadata block at %d is empty", pos)
		}
		if err := w.charge(len(data)); err != nil {
			return nil, 0, err
		}
		c = cachedBlock{data: data, next: pos + 2 + uint64(n)}
		r.mu.Lock()
		if len(r.cache) >= maxCachedBlocks {
			clear(r.cache)
		}
		r.cache[pos] = c
		r.mu.Unlock()
	}
	if c.next > end {
		return nil, 0, corrupt("metadata block at %d runs past its table's end %d", pos, end)
	}
	return c.data, c.next, nil
}

// tablePos is a position in a metadata table: a block and an offset into
// its uncompressed data.
type tablePos struct {
	block uint64
	off   int
}

// cursor reads a metadata table sequentially across blocks, up to the
// table's end, charging what it reads to an operation's work.
type cursor struct {
	r    *Reader
	w    *work
	end  uint64
	at   tablePos
	data []byte // the block at at.block, once loaded
	next uint64 // the block after it
}

// cursorAt starts reading at p in the table that ends at end.
func (r *Reader) cursorAt(w *work, p tablePos, end uint64) *cursor {
	return &cursor{r: r, w: w, end: end, at: p}
}

// align loads the block the next byte is in, moving past the blocks the
// offset skips, and returns the byte's position.
func (c *cursor) align() (tablePos, error) {
	for {
		if c.data == nil {
			data, next, err := c.r.metaBlock(c.at.block, c.end, c.w)
			if err != nil {
				return tablePos{}, err
			}
			c.data, c.next = data, next
		}
		if c.at.off < len(c.data) {
			return c.at, nil
		}
		c.at = tablePos{block: c.next, off: c.at.off - len(c.data)}
		c.data = nil
		if c.at.off >= metadataSize {
			return tablePos{}, corrupt("metadata offset %d beyond block", c.at.off)
		}
	}
}

// read returns the next n bytes. The slice may share a cached block's
// memory: callers copy what they keep and never write to it.
func (c *cursor) read(n int) ([]byte, error) {
	if err := c.w.charge(n); err != nil {
		return nil, err
	}
	var out []byte
	for len(out) < n {
		if _, err := c.align(); err != nil {
			return nil, err
		}
		k := min(n-len(out), len(c.data)-c.at.off)
		if out == nil && k == n {
			b := c.data[c.at.off : c.at.off+n : c.at.off+n]
			c.at.off += n
			return b, nil
		}
		if out == nil {
			out = make([]byte, 0, n)
		}
		out = append(out, c.data[c.at.off:c.at.off+k]...)
		c.at.off += k
	}
	return out, nil
}

func (c *cursor) u32() (uint32, error) {
	b, err := c.read(4)
	if err != nil {
		return 0, err
	}
	return le.Uint32(b), nil
}

func (c *cursor) u64() (uint64, error) {
	b, err := c.read(8)
	if err != nil {
		return 0, err
	}
	return le.Uint64(b), nil
}

// tableEntry reads entry i (of the given size) of a table whose block
// pointers start at ptrs.
func (r *Reader) tableEntry(w *work, ptrs uint64, i uint64, size int) ([]byte, error) {
	per := uint64(metadataSize / size)
	var p [8]byte
	if err := r.readAt(p[:], ptrs+8*(i/per)); err != nil {
		return nil, err
	}
	return r.cursorAt(w, tablePos{block: le.Uint64(p[:]), off: int(i%per) * size}, r.sb.BytesUsed).read(size)
}

// id returns entry i of the id table.
func (r *Reader) id(w *work, i uint16) (uint32, error) {
	if i >= r.sb.IDs {
		return 0, corrupt("id index %d beyond the %d ids", i, r.sb.IDs)
	}
	b, err := r.tableEntry(w, r.sb.IDTable, uint64(i), 4)
	if err != nil {
		return 0, err
	}
	return le.Uint32(b), nil
}
