package squashfs

import (
	"fmt"
	"io"
	"io/fs"
	"math"
	"path"
)

// Open opens the file name, following symlinks. Directories implement
// fs.ReadDirFile; regular files also implement io.ReaderAt and io.Seeker.
func (r *Reader) Open(name string) (fs.File, error) {
	in, err := r.resolve("open", name, true, r.newWork())
	if err != nil {
		return nil, err
	}
	info := fileInfo{name: path.Base(name), in: in}
	if basicType(in.typ) == typeDir {
		return &dirFile{r: r, name: name, info: info}, nil
	}
	f := &file{r: r, info: info, cached: -1}
	if basicType(in.typ) == typeFile {
		f.list = blockList{c: r.cursorAt(r.newWork(), in.list, r.sb.DirectoryTable), left: in.nblocks, next: in.start}
	}
	return f, nil
}

// file is an open non-directory; only regular files have content.
type file struct {
	r      *Reader
	info   fileInfo
	list   blockList
	off    int64
	cached int64
	buf    []byte
}

// blockList is a regular file's list of block sizes, read from its inode
// as far as reads of the file need it.
type blockList struct {
	c     *cursor
	left  uint64 // sizes not read yet
	sizes []uint32
	// offsets holds where each block starts in the image.
	offsets []uint64
	next    uint64 // where the block after the last read one starts
}

// load reads the list up to block i, at most 1024 sizes at a time.
func (l *blockList) load(i uint64, in *inode, bs uint32) error {
	for uint64(len(l.sizes)) <= i && l.left > 0 {
		k := min(l.left, 1024)
		b, err := l.c.read(int(k) * 4)
		if err != nil {
			return err
		}
		for j := range int(k) {
			s := le.Uint32(b[4*j:])
			if s&^dataUncompressed > bs {
				return corrupt("file inode %d: block of %d bytes exceeds the block size", in.number, s&^dataUncompressed)
			}
			l.sizes = append(l.sizes, s)
			l.offsets = append(l.offsets, l.next)
			l.next += uint64(s &^ dataUncompressed)
		}
		l.left -= k
	}
	return nil
}

func (f *file) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *file) Close() error               { return nil }

func (f *file) Read(p []byte) (int, error) {
	n, err := f.ReadAt(p, f.off)
	f.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// Seek sets the offset of the next Read.
func (f *file) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += f.off
	case io.SeekEnd:
		offset += f.info.Size()
	}
	if offset < 0 {
		return 0, fmt.Errorf("seek %s: negative offset", f.info.name)
	}
	f.off = offset
	return offset, nil
}

// ReadAt reads file content at off.
func (f *file) ReadAt(p []byte, off int64) (int, error) {
	in := f.info.in
	if basicType(in.typ) != typeFile {
		return 0, io.EOF // devices, fifos and sockets have no content in an image
	}
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: f.info.name, Err: fs.ErrInvalid}
	}
	size := int64(min(in.size, math.MaxInt64))
	bs := int64(f.r.sb.BlockSize)
	n := 0
	for n < len(p) && off < size {
		bi := off / bs
		if bi != f.cached {
			b, err := f.block(bi)
			if err != nil {
				return n, &fs.PathError{Op: "read", Path: f.info.name, Err: err}
			}
			f.buf, f.cached = b, bi
		}
		k := copy(p[n:], f.buf[off-bi*bs:])
		n += k
		off += int64(k)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// block returns block i of a regular file, uncompressed.
func (f *file) block(i int64) ([]byte, error) {
	r, in := f.r, f.info.in
	bs := uint64(r.sb.BlockSize)
	want := int(min(bs, in.size-uint64(i)*bs))
	if uint64(i) < in.nblocks {
		if err := f.list.load(uint64(i), in, r.sb.BlockSize); err != nil {
			return nil, err
		}
		s := f.list.sizes[i]
		if s == 0 {
			return make([]byte, want), nil
		}
		return r.dataBlock(f.list.offsets[i], s, want)
	}
	if in.frag == invalidFragment {
		return nil, corrupt("file inode %d: block %d missing", in.number, i)
	}
	e, err := r.tableEntry(f.list.c.w, r.sb.FragmentTable, uint64(in.frag), fragmentEntry)
	if err != nil {
		return nil, err
	}
	s := le.Uint32(e[8:])
	if s&^dataUncompressed > uint32(bs) || s == 0 {
		return nil, corrupt("fragment %d has size %d", in.frag, s)
	}
	b, err := r.dataBlock(le.Uint64(e), s, -1)
	if err != nil {
		return nil, err
	}
	if uint64(in.fragAt)+uint64(want) > uint64(len(b)) {
		return nil, corrupt("file inode %d: tail at %d+%d beyond fragment %d of %d bytes", in.number, in.fragAt, want, in.frag, len(b))
	}
	return b[in.fragAt : int(in.fragAt)+want], nil
}

// dataBlock reads a data or fragment block with size word s; want is the
// exact uncompressed length, or -1 for a fragment.
func (r *Reader) dataBlock(pos uint64, s uint32, want int) ([]byte, error) {
	raw := make([]byte, s&^dataUncompressed)
	if err := r.readAt(raw, pos); err != nil {
		return nil, err
	}
	b := raw
	if s&dataUncompressed == 0 {
		var err error
		if b, err = r.dec.decompress(raw, int(r.sb.BlockSize)); err != nil {
			return nil, fmt.Errorf("data block at %d: %w", pos, err)
		}
	}
	if want >= 0 && len(b) != want {
		return nil, corrupt("data block at %d holds %d bytes, expected %d", pos, len(b), want)
	}
	return b, nil
}
