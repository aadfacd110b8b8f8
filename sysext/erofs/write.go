package erofs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// write writes the image of t to img, an empty file: the data blocks in
// inode order, streamed from the host files, then the metadata blocks,
// built in memory, at the start.
func write(ctx context.Context, img *os.File, t *tree, epoch int64) error {
	l, err := plan(t.inodes)
	if err != nil {
		return err
	}
	meta := make([]byte, l.metaBlocks*blockSize)
	if _, err := img.Seek(l.metaBlocks*blockSize, io.SeekStart); err != nil {
		return err
	}
	d := &dataWriter{ctx: ctx, img: img, block: l.metaBlocks}
	for i, n := range t.inodes {
		if err := ctx.Err(); err != nil {
			return err
		}
		header := meta[n.nid*slotSize:]
		if err := d.inode(t, n, header[n.headerSize():]); err != nil {
			return fmt.Errorf("%s: %w", n.rel, err)
		}
		n.encode(header, uint32(i), uint64(epoch), l.shared)
	}
	for _, s := range l.shared {
		encodeXattrEntry(meta[s.off:], s.xattr)
	}
	superblock{
		rootNid:  uint16(t.inodes[0].nid),
		inodes:   uint64(len(t.inodes)),
		epoch:    uint64(epoch),
		blocks:   uint32(l.blocks),
		incompat: l.incompat,
	}.encode(meta[superblockOffset:])
	if _, err := img.WriteAt(meta, 0); err != nil {
		return err
	}
	if d.block < l.blocks {
		return img.Truncate(l.blocks * blockSize)
	}
	return nil
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

// source is what an inode's data is read from.
type source interface {
	io.ReadSeeker
	io.ReaderAt
}

// inode writes n's data: its data blocks, and its tail or block map into
// after (the metadata right after its xattr body).
func (d *dataWriter) inode(t *tree, n *inode, after []byte) error {
	p := &n.placement
	encodeBlockMap(after, p.chunks)
	var src source
	switch n.mode & sIFMT {
	case sIFDIR:
		b := make([]byte, n.size)
		encodeDir(b, n.entries, p.dirCounts)
		src = bytes.NewReader(b)
	case sIFLNK:
		src = bytes.NewReader([]byte(n.target))
	case sIFREG:
		f, err := os.OpenFile(t.host(n.rel), os.O_RDONLY|syscall.O_NOFOLLOW, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		src = f
	default:
		return nil
	}
	if err := d.spans(n, src); err != nil {
		return err
	}
	if p.tail > 0 {
		if _, err := src.ReadAt(after[:p.tail], n.size-int64(p.tail)); err != nil {
			return changed(err)
		}
	}
	if _, err := src.ReadAt(make([]byte, 1), n.size); err != io.EOF {
		return errors.New("changed while the image was written: it grew") // a host file
	}
	return nil
}

// spans copies the parts of n's data that go into data blocks, each padded
// to whole blocks: all but the inline tail of a flat layout, the chunks
// holding data of a block map.
func (d *dataWriter) spans(n *inode, src source) error {
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

// copy copies size bytes at off in src to the next blocks and pads them
// with zeros to a whole block. From a host file, the copy stays in the
// kernel (copy_file_range).
func (d *dataWriter) copy(src source, off, size int64) error {
	if _, err := src.Seek(off, io.SeekStart); err != nil {
		return err
	}
	for left := size; left > 0; {
		if err := d.ctx.Err(); err != nil {
			return err
		}
		n, err := io.CopyN(d.img, src, min(left, copyPiece))
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
