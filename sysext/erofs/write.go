package erofs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/sysext-bakery/bakery/sysext/tree"
)

// Options say how Write lays a tree out.
type Options struct {
	// Epoch is the build time in the superblock and every inode's time,
	// in seconds since 1970, so that the same tree gives the same bytes.
	Epoch int64
	// AllRoot makes every file owned by root:root.
	AllRoot bool
}

// Write writes the uncompressed erofs image of the tree t to
// img, an empty file: the data blocks in inode order, streamed from the
// files' contents, and each inode's metadata record where the layout
// placed it, as it goes; the superblock last. Memory does not grow with
// the metadata's size.
func Write(ctx context.Context, img *os.File, t *tree.Tree, opts Options) error {
	if err := checkEpoch(opts.Epoch); err != nil {
		return err
	}
	inodes, err := scan(t, opts.AllRoot)
	if err != nil {
		return err
	}
	return write(ctx, img, inodes, opts.Epoch)
}

// checkEpoch refuses a time erofs cannot store.
func checkEpoch(epoch int64) error {
	if epoch < 0 {
		return fmt.Errorf("epoch %d is before 1970: erofs stores unsigned times, give --epoch 0 or later", epoch)
	}
	return nil
}

// write writes the image of inodes (the root first) to img, an empty
// file: what the metadata blocks hold between records is never written,
// and reads as zeros.
func write(ctx context.Context, img *os.File, inodes []*inode, epoch int64) error {
	l, err := plan(inodes)
	if err != nil {
		return err
	}
	if _, err := img.Seek(l.metaBlocks*blockSize, io.SeekStart); err != nil {
		return err
	}
	d := &dataWriter{ctx: ctx, img: img, block: l.metaBlocks}
	m := &metaWriter{img: img}
	for i, n := range inodes {
		if err := ctx.Err(); err != nil {
			return err
		}
		record, err := m.record(int64(n.nid*slotSize), n.recordSize())
		if err != nil {
			return err
		}
		if err := d.inode(n, record[n.headerSize():]); err != nil {
			return fmt.Errorf("%s: %w", n.rel(), err)
		}
		n.encode(record, uint32(i), uint64(epoch), l.shared)
		if i > 0 {
			continue
		}
		for _, s := range l.shared { // placed right after the root
			entry, err := m.record(s.off, xattrEntrySize(s.xattr))
			if err != nil {
				return err
			}
			encodeXattrEntry(entry, s.xattr)
		}
	}
	sb := make([]byte, superblockSize)
	superblock{
		rootNid:  uint16(inodes[0].nid),
		inodes:   uint64(len(inodes)),
		epoch:    uint64(epoch),
		blocks:   uint32(l.blocks),
		incompat: l.incompat,
	}.encode(sb)
	if err := m.flush(); err != nil {
		return err
	}
	if _, err := img.WriteAt(sb, superblockOffset); err != nil {
		return err
	}
	// The image ends where the layout says, after a last unwritten stretch
	// of metadata or data blocks as much as after a record.
	return img.Truncate(l.blocks * blockSize)
}

// metaWriter writes metadata records at their offsets in the image,
// joining a record to the one before when it starts at the next slot
// boundary (the bytes between are the padding of the record before, which
// no other record holds) into one write of at most metaWriteSize bytes.
// plan places records best fit, so a record may also go back into room
// left in an earlier block: that one is written on its own.
type metaWriter struct {
	img *os.File
	off int64  // where buf goes
	buf []byte // the records not yet written, from off
}

// metaWriteSize is the most metaWriter holds before writing.
const metaWriteSize = 1 << 20

// record returns a zeroed buffer of size bytes for the record at off, which
// the caller fills before asking for the next record; it writes those
// asked for before when off does not join them or the buffer is full.
func (m *metaWriter) record(off int64, size int) ([]byte, error) {
	gap := off - (m.off + int64(len(m.buf)))
	if gap < 0 || gap >= slotSize || len(m.buf)+int(gap)+size > metaWriteSize {
		if err := m.flush(); err != nil {
			return nil, err
		}
		m.off, gap = off, 0
	}
	n := len(m.buf)
	m.buf = slices.Grow(m.buf, int(gap)+size)[:n+int(gap)+size]
	clear(m.buf[n:])
	return m.buf[n+int(gap):], nil
}

// flush writes the records held.
func (m *metaWriter) flush() error {
	if len(m.buf) == 0 {
		return nil
	}
	_, err := m.img.WriteAt(m.buf, m.off)
	m.buf = m.buf[:0]
	return err
}

// encode writes n's inode core and xattr body into b.
func (n *inode) encode(b []byte, ino uint32, epoch uint64, shared []sharedXattr) {
	p := &n.placement
	c := inodeCore{
		extended:   p.extended,
		layout:     p.layout,
		xattrCount: xattrCount(p.xattrBody),
		mode:       n.mode,
		nlink:      n.nlink,
		size:       uint64(n.size),
		ino:        ino,
		uid:        n.uid,
		gid:        n.gid,
		mtime:      epoch,
	}
	switch {
	case n.mode&sIFMT == sIFCHR || n.mode&sIFMT == sIFBLK:
		c.u = n.rdev
	case p.layout == layoutChunkBased:
		c.u = uint32(p.chunkBits)
	case p.blocks > 0:
		c.u = p.start
	case p.layout == layoutFlatInline:
		c.u = nullAddr
	}
	c.encode(b)
	if p.xattrBody == 0 {
		return
	}
	ids := make([]uint32, len(p.shared))
	for i, s := range p.shared {
		ids[i] = shared[s].id()
	}
	encodeXattrBody(b[coreSize(p.extended):], ids, p.inline)
}

// dataWriter writes data blocks one after the other.
type dataWriter struct {
	ctx   context.Context
	img   *os.File // at block's offset
	block int64    // the next block written
}

// inode writes n's data: its data blocks, and its tail or block map into
// after (the metadata right after its xattr body). A file's content is
// read once, front to back.
func (d *dataWriter) inode(n *inode, after []byte) error {
	p := &n.placement
	encodeBlockMap(after, p.chunks)
	var r io.Reader
	switch n.mode & sIFMT {
	case sIFDIR:
		b := make([]byte, n.size)
		encodeDir(b, n.entries, p.dirCounts)
		r = bytes.NewReader(b)
	case sIFLNK:
		r = strings.NewReader(n.target)
	case sIFREG:
		rc, err := n.t.Open(n.ino)
		if err != nil {
			return err
		}
		defer rc.Close()
		r = rc
	default:
		return nil
	}
	src := &content{r: r}
	if err := d.spans(n, src); err != nil {
		return err
	}
	if p.tail > 0 {
		if err := src.readAt(after[:p.tail], n.size-int64(p.tail)); err != nil {
			return changed(err)
		}
	}
	switch err := src.readAt(make([]byte, 1), n.size); {
	case err == nil:
		return errors.New("changed while the image was written: it grew")
	case err != io.EOF:
		return err
	}
	return nil
}

// content is a file's content being read front to back.
type content struct {
	r   io.Reader
	pos int64 // where r is
}

// skipTo moves to off, past bytes not stored (holes): by seeking when r
// can, else by reading.
func (c *content) skipTo(off int64) error {
	if off == c.pos {
		return nil
	}
	if s, ok := c.r.(io.Seeker); ok {
		if _, err := s.Seek(off, io.SeekStart); err != nil {
			return err
		}
		c.pos = off
		return nil
	}
	n, err := io.CopyN(io.Discard, c.r, off-c.pos)
	c.pos += n
	return err
}

// readAt reads len(p) bytes at off, which is not before where c is.
func (c *content) readAt(p []byte, off int64) error {
	if err := c.skipTo(off); err != nil {
		return err
	}
	k, err := io.ReadFull(c.r, p)
	c.pos += int64(k)
	return err
}

// spans copies the parts of n's data that go into data blocks, each padded
// to whole blocks: all but the inline tail of a flat layout, the chunks
// holding data of a block map.
func (d *dataWriter) spans(n *inode, src *content) error {
	p := &n.placement
	if p.layout != layoutChunkBased {
		if p.blocks == 0 {
			return nil
		}
		if d.block != int64(p.start) {
			return fmt.Errorf("internal error: data at block %d, planned at %d", d.block, p.start)
		}
		return d.copy(src, 0, min(n.size, p.blocks*blockSize))
	}
	nblocks := blocksOf(n.size)
	for i, c := range p.chunks {
		if c == nullAddr {
			continue
		}
		if d.block != int64(c) {
			return fmt.Errorf("internal error: chunk %d at block %d, planned at %d", i, d.block, c)
		}
		off := int64(i) << (p.chunkBits + blockBits)
		if err := d.copy(src, off, min(n.size-off, p.chunkBlocks(i, nblocks)*blockSize)); err != nil {
			return err
		}
	}
	return nil
}

// copyPiece is the most copied between two checks of the context.
const copyPiece = 64 << 20

// zeros pads data to whole blocks.
var zeros [blockSize]byte

// fileCopier copies from a host file inside the kernel (tree.Tree.Open's
// files do).
type fileCopier interface {
	CopyTo(dst *os.File, n int64) (int64, error)
}

// copy copies size bytes at off in src to the next blocks and pads them
// with zeros to a whole block. From a host file, the copy stays in the
// kernel (copy_file_range).
func (d *dataWriter) copy(src *content, off, size int64) error {
	if err := src.skipTo(off); err != nil {
		return changed(err)
	}
	for left := size; left > 0; {
		if err := d.ctx.Err(); err != nil {
			return err
		}
		var n int64
		var err error
		if fc, ok := src.r.(fileCopier); ok {
			n, err = fc.CopyTo(d.img, min(left, copyPiece))
		} else {
			n, err = io.CopyN(d.img, src.r, min(left, copyPiece))
		}
		src.pos += n
		if err != nil {
			return changed(err)
		}
		left -= n
	}
	if pad := align(size, blockSize) - size; pad > 0 {
		if _, err := d.img.Write(zeros[:pad]); err != nil {
			return err
		}
	}
	d.block += blocksOf(size)
	return nil
}

// changed explains a short read: the file shrank since it was scanned.
func changed(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("changed while the image was written: it shrank")
	}
	return err
}
