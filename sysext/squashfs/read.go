package squashfs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sysext-bakery/bakery/sysext"
)

// Reader reads a squashfs 4.0 image. It implements fs.FS, fs.StatFS,
// fs.ReadDirFS and fs.ReadLinkFS; paths are slash-separated and relative
// to the image root, and symlinks resolve inside the image (absolute
// targets from the image root). Walk walks the whole tree. Each operation
// (an Open, a Stat, a ReadDir, a walk, the reads of an open file) does
// work bounded by the size of the image's tables, however they are
// crafted (see work). It is safe for concurrent use.
type Reader struct {
	r    io.ReaderAt
	sb   *superblock
	dec  *decompressor
	root *inode
	// dirEnd is where the directory table ends: the start of the table
	// after it, found as the kernel finds it.
	dirEnd uint64
	// maxWork bounds the work of one operation (see work).
	maxWork int64

	mu    sync.Mutex
	cache map[uint64]cachedBlock
}

type cachedBlock struct {
	data []byte
	next uint64
}

// Superblock describes an image as its superblock records it.
type Superblock struct {
	// Compression is the block compressor; None when data and inodes are
	// stored uncompressed.
	Compression sysext.Compression
	BlockSize   uint32
	Inodes      uint32
	Fragments   uint32
	IDs         uint16
	Flags       uint16
	// BytesUsed is the image length before the padding to 4 KiB.
	BytesUsed uint64
	ModTime   time.Time
}

// Stat is what FileInfo.Sys returns for a file of an image.
type Stat struct {
	UID, GID     uint32
	Nlink        uint32
	Inode        uint32
	Major, Minor uint32
}

// inode is a decoded inode.
type inode struct {
	typ      uint16
	mode     uint16
	uid, gid uint32
	mtime    uint32
	number   uint32
	nlink    uint32
	xattr    uint32
	size     uint64
	// regular files: data blocks from start, then the tail in a fragment;
	// the list of the nblocks block sizes is read when the file is read.
	start   uint64
	frag    uint32
	fragAt  uint32
	nblocks uint64
	list    tablePos
	// directories: the listing, and the index of an extended directory,
	// read only by lookups
	dirStart   uint32
	dirOffset  uint16
	indexCount uint16
	index      tablePos
	// symlinks and devices
	target string
	rdev   uint32
}

const (
	maxCachedBlocks = 1024
	maxSymlinkHops  = 40
	maxSymlinkLen   = 4096
	maxXattrs       = 1 << 16
	maxXattrName    = 255
	maxXattrValue   = 1 << 16
)

// Open reads an image's superblock and root inode, and the headers of the
// blocks of its inode and directory tables, which bound the work of every
// later operation.
func Open(r io.ReaderAt) (*Reader, error) {
	head := make([]byte, superblockSize)
	if _, err := r.ReadAt(head, 0); err != nil {
		return nil, fmt.Errorf("squashfs: read superblock: %w", err)
	}
	sb, err := parseSuperblock(head)
	if err != nil {
		return nil, fmt.Errorf("squashfs: %w", err)
	}
	dec, err := newDecompressor(sb.Compression, int(sb.BlockSize))
	if err != nil {
		return nil, fmt.Errorf("squashfs: %w", err)
	}
	rd := &Reader{r: r, sb: sb, dec: dec, dirEnd: sb.BytesUsed, maxWork: minWork, cache: map[uint64]cachedBlock{}}
	if rd.root, err = rd.inodeAt(sb.RootInode, rd.newWork()); err != nil {
		return nil, fmt.Errorf("squashfs: root inode: %w", err)
	}
	if basicType(rd.root.typ) != typeDir {
		return nil, fmt.Errorf("squashfs: root inode is not a directory")
	}
	if rd.dirEnd, err = rd.nextTable(); err != nil {
		return nil, fmt.Errorf("squashfs: %w", err)
	}
	decoded, err := rd.decodedSize()
	if err != nil {
		return nil, fmt.Errorf("squashfs: %w", err)
	}
	rd.maxWork = workPerByte*decoded + minWork
	return rd, nil
}

// nextTable returns where the table after the directory table starts: the
// first block of the fragment table when there are fragments, else of the
// export table when there is one, else of the id table. The kernel refuses
// an image whose directory table starts beyond it.
func (r *Reader) nextTable() (uint64, error) {
	index, name := r.sb.IDTable, "id"
	switch {
	case r.sb.Fragments > 0:
		index, name = r.sb.FragmentTable, "fragment"
	case r.sb.LookupTable != invalidBlock:
		index, name = r.sb.LookupTable, "export"
	}
	var p [8]byte
	if err := r.readAt(p[:], index); err != nil {
		return 0, fmt.Errorf("%s table: %w", name, err)
	}
	next := min(le.Uint64(p[:]), r.sb.BytesUsed)
	if next < r.sb.DirectoryTable {
		return 0, fmt.Errorf("superblock: directory table at %d starts after the %s table at %d", r.sb.DirectoryTable, name, next)
	}
	return next, nil
}

// decodedSize is the size of the inode and directory tables once
// decompressed, as the headers of their blocks tell (a compressed block
// counts as a full 8 KiB). It stops at a damaged header: what lies beyond
// cannot be read anyway.
func (r *Reader) decodedSize() (int64, error) {
	var total int64
	for _, t := range [][2]uint64{{r.sb.InodeTable, r.sb.DirectoryTable}, {r.sb.DirectoryTable, r.dirEnd}} {
		br := bufio.NewReaderSize(io.NewSectionReader(r.r, int64(t[0]), int64(t[1]-t[0])), 64<<10)
		var h [2]byte
		for {
			if _, err := io.ReadFull(br, h[:]); err == io.EOF || err == io.ErrUnexpectedEOF {
				break
			} else if err != nil {
				return 0, fmt.Errorf("read metadata block headers: %w", err)
			}
			word := le.Uint16(h[:])
			n := int(word &^ metaUncompressed)
			if n == 0 || n > metadataSize {
				break
			}
			if _, err := br.Discard(n); err != nil {
				break
			}
			if word&metaUncompressed != 0 {
				total += int64(n)
			} else {
				total += metadataSize
			}
		}
	}
	return total, nil
}

// Superblock returns the image's superblock information.
func (r *Reader) Superblock() Superblock {
	s := Superblock{BlockSize: r.sb.BlockSize, Inodes: r.sb.Inodes, Fragments: r.sb.Fragments, IDs: r.sb.IDs,
		Flags: r.sb.Flags, BytesUsed: r.sb.BytesUsed, ModTime: time.Unix(int64(r.sb.MkfsTime), 0).UTC()}
	switch {
	case r.sb.Flags&(flagUncompressedData|flagUncompressedInodes) == flagUncompressedData|flagUncompressedInodes:
		s.Compression = sysext.None
	case r.sb.Compression == compGzip:
		s.Compression = sysext.Gzip
	case r.sb.Compression == compXz:
		s.Compression = sysext.Xz
	case r.sb.Compression == compLz4:
		s.Compression = sysext.Lz4
	case r.sb.Compression == compZstd:
		s.Compression = sysext.Zstd
	}
	return s
}

// errFormat marks a structure of the image that is inconsistent.
var errFormat = errors.New("squashfs: corrupt image")

func corrupt(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errFormat, fmt.Sprintf(format, a...))
}

// readAt reads len(p) bytes at off, which must lie inside the image.
func (r *Reader) readAt(p []byte, off uint64) error {
	if off > r.sb.BytesUsed || uint64(len(p)) > r.sb.BytesUsed-off {
		return corrupt("read of %d bytes at %d beyond the image end %d", len(p), off, r.sb.BytesUsed)
	}
	if _, err := r.r.ReadAt(p, int64(off)); err != nil {
		return fmt.Errorf("squashfs: read at %d: %w", off, err)
	}
	return nil
}

// Limits of the work of one operation: every metadata byte it
// decompresses or parses counts, and every byte of the paths a walk
// builds. An undamaged image's operations stay well below workPerByte
// times the decoded size of its inode and directory tables: a walk decodes
// each block about once, parses each listing once and builds one path per
// entry (whose name and inode are in the tables), a lookup reads one
// listing per path component. A crafted image whose directories loop,
// share listings, nest deep or make a path's lookup read huge listings
// again and again reaches the limit and fails, so no image makes the
// reader work out of proportion to its tables, however they repeat.
const (
	workPerByte = 16
	minWork     = 1 << 20
)

// errWork marks an operation stopped by its work limit.
var errWork = fmt.Errorf("%w: reading it takes more work than its tables can hold (directories that loop or share listings?)", errFormat)

// work is what is left of one operation's work limit.
type work struct{ left int64 }

// newWork starts the work of one operation: a path lookup, a listing, a
// walk, an inode, the reads of one open file.
func (r *Reader) newWork() *work { return &work{left: r.maxWork} }

// charge counts n units of work.
func (w *work) charge(n int) error {
	if w.left -= int64(n); w.left < 0 {
		return errWork
	}
	return nil
}

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

// inodeAt decodes the inode at a reference; a regular file's block list
// and a directory's index are left for reads and lookups.
func (r *Reader) inodeAt(ref uint64, w *work) (*inode, error) {
	if ref>>16 >= r.sb.DirectoryTable-r.sb.InodeTable || ref&0xffff >= metadataSize {
		return nil, corrupt("inode reference %#x outside the inode table", ref)
	}
	c := r.cursorAt(w, tablePos{block: r.sb.InodeTable + ref>>16, off: int(ref & 0xffff)}, r.sb.DirectoryTable)
	h, err := c.read(16)
	if err != nil {
		return nil, err
	}
	in := &inode{typ: le.Uint16(h), mode: le.Uint16(h[2:]), mtime: le.Uint32(h[8:]), number: le.Uint32(h[12:]), xattr: invalidXattr, nlink: 1}
	if in.uid, err = r.id(w, le.Uint16(h[4:])); err != nil {
		return nil, err
	}
	if in.gid, err = r.id(w, le.Uint16(h[6:])); err != nil {
		return nil, err
	}
	var fields []byte
	switch in.typ {
	case typeDir:
		if fields, err = c.read(16); err != nil {
			return nil, err
		}
		in.dirStart, in.nlink = le.Uint32(fields), le.Uint32(fields[4:])
		in.size, in.dirOffset = uint64(le.Uint16(fields[8:])), le.Uint16(fields[10:])
	case typeDir + extOffset:
		if fields, err = c.read(24); err != nil {
			return nil, err
		}
		in.nlink, in.size, in.dirStart = le.Uint32(fields), uint64(le.Uint32(fields[4:])), le.Uint32(fields[8:])
		in.indexCount, in.dirOffset, in.xattr = le.Uint16(fields[16:]), le.Uint16(fields[18:]), le.Uint32(fields[20:])
		in.index = c.at
	case typeFile:
		if fields, err = c.read(16); err != nil {
			return nil, err
		}
		in.start, in.frag, in.fragAt, in.size = uint64(le.Uint32(fields)), le.Uint32(fields[4:]), le.Uint32(fields[8:]), uint64(le.Uint32(fields[12:]))
		err = r.blockCount(c, in)
	case typeFile + extOffset:
		if fields, err = c.read(40); err != nil {
			return nil, err
		}
		in.start, in.size = le.Uint64(fields), le.Uint64(fields[8:])
		in.nlink, in.frag, in.fragAt, in.xattr = le.Uint32(fields[24:]), le.Uint32(fields[28:]), le.Uint32(fields[32:]), le.Uint32(fields[36:])
		err = r.blockCount(c, in)
	case typeSymlink, typeSymlink + extOffset:
		if fields, err = c.read(8); err != nil {
			return nil, err
		}
		in.nlink, in.size = le.Uint32(fields), uint64(le.Uint32(fields[4:]))
		if in.size == 0 || in.size > maxSymlinkLen {
			return nil, corrupt("symlink inode %d has target length %d", in.number, in.size)
		}
		t, err := c.read(int(in.size))
		if err != nil {
			return nil, err
		}
		in.target = string(t)
	case typeBlock, typeChar, typeBlock + extOffset, typeChar + extOffset:
		if fields, err = c.read(8); err != nil {
			return nil, err
		}
		in.nlink, in.rdev = le.Uint32(fields), le.Uint32(fields[4:])
	case typeFifo, typeSocket, typeFifo + extOffset, typeSocket + extOffset:
		if in.nlink, err = c.u32(); err != nil {
			return nil, err
		}
	default:
		return nil, corrupt("inode %d has unknown type %d", in.number, in.typ)
	}
	if err != nil {
		return nil, err
	}
	if in.typ > typeDir+extOffset && in.typ != typeFile+extOffset {
		if in.xattr, err = c.u32(); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// blockCount records how many block sizes a regular file's inode lists
// and where the list starts; the list is read as the file is read (see
// blockList), so a hostile size costs nothing until then.
func (r *Reader) blockCount(c *cursor, in *inode) error {
	bs := uint64(r.sb.BlockSize)
	in.nblocks = in.size / bs
	if in.frag == invalidFragment && in.size%bs != 0 {
		in.nblocks++
	}
	if in.frag != invalidFragment && in.frag >= r.sb.Fragments {
		return corrupt("file inode %d: fragment %d beyond the %d fragments", in.number, in.frag, r.sb.Fragments)
	}
	in.list = c.at
	return nil
}

// dirEntry is one directory entry of an image.
type dirEntry struct {
	r    *Reader
	name string
	typ  uint16
	ref  uint64
}

// listDir calls fn for each entry of a directory, starting at the last
// index entry whose name sorts before from (all entries when from is "");
// fn returns false to stop. When runs is not nil, listDir records there
// where each header of the listing starts and fails at one recorded
// before: the listings of two directories met on one walk never overlap.
func (r *Reader) listDir(dir *inode, from string, w *work, runs map[tablePos]bool, fn func(dirEntry) bool) error {
	if basicType(dir.typ) != typeDir {
		return corrupt("inode %d is not a directory", dir.number)
	}
	if dir.size < 3 {
		return corrupt("directory inode %d has size %d", dir.number, dir.size)
	}
	total := dir.size - 3
	c := r.cursorAt(w, tablePos{block: r.sb.DirectoryTable + uint64(dir.dirStart), off: int(dir.dirOffset)}, r.dirEnd)
	left := total
	if from != "" && dir.indexCount > 0 {
		ic := r.cursorAt(w, dir.index, r.sb.DirectoryTable)
		var last uint32
		for range dir.indexCount {
			e, err := ic.read(dirIndexSize)
			if err != nil {
				return err
			}
			pos, start, nlen := le.Uint32(e), le.Uint32(e[4:]), le.Uint32(e[8:])+1
			if nlen > maxNameLen {
				return corrupt("directory inode %d: index name of %d bytes", dir.number, nlen)
			}
			name, err := ic.read(int(nlen))
			if err != nil {
				return err
			}
			if string(name) > from || uint64(pos) >= total || pos < last {
				break
			}
			last = pos
			c = r.cursorAt(w, tablePos{block: r.sb.DirectoryTable + uint64(start), off: int((uint32(dir.dirOffset) + pos) % metadataSize)}, r.dirEnd)
			left = total - uint64(pos)
		}
	}
	for left > 0 {
		if left < dirHeaderSize {
			return corrupt("directory inode %d: listing ends inside a header", dir.number)
		}
		if runs != nil {
			at, err := c.align()
			if err != nil {
				return err
			}
			if runs[at] {
				return fmt.Errorf("%w: directory inode %d: listing overlaps one read before", errLoop, dir.number)
			}
			runs[at] = true
		}
		h, err := c.read(dirHeaderSize)
		if err != nil {
			return err
		}
		left -= dirHeaderSize
		count, start := le.Uint32(h)+1, le.Uint32(h[4:])
		if count > maxDirRun {
			return corrupt("directory inode %d: header with %d entries", dir.number, count)
		}
		for range count {
			if left < dirEntrySize {
				return corrupt("directory inode %d: listing ends inside an entry", dir.number)
			}
			e, err := c.read(dirEntrySize)
			if err != nil {
				return err
			}
			typ, nlen := le.Uint16(e[4:]), uint64(le.Uint16(e[6:]))+1
			if typ < typeDir || typ > typeSocket+extOffset {
				return corrupt("directory inode %d: entry of unknown type %d", dir.number, typ)
			}
			if nlen > maxNameLen || left < dirEntrySize+nlen {
				return corrupt("directory inode %d: entry name of %d bytes", dir.number, nlen)
			}
			ref := uint64(start)<<16 | uint64(le.Uint16(e))
			name, err := c.read(int(nlen))
			if err != nil {
				return err
			}
			left -= dirEntrySize + nlen
			s := string(name)
			if s == "." || s == ".." || strings.ContainsRune(s, '/') {
				return corrupt("directory inode %d: invalid entry name %q", dir.number, s)
			}
			if !fn(dirEntry{r: r, name: s, typ: typ, ref: ref}) {
				return nil
			}
		}
	}
	return nil
}

// lookup finds a name in a directory.
func (r *Reader) lookup(dir *inode, name string, w *work) (*inode, error) {
	var found *dirEntry
	err := r.listDir(dir, name, w, nil, func(e dirEntry) bool {
		if e.name == name {
			found = &e
			return false
		}
		return e.name < name
	})
	if err != nil {
		return nil, err
	}
	if found == nil {
		return nil, fs.ErrNotExist
	}
	return r.inodeAt(found.ref, w)
}

// resolve walks a path from the root. Symlinks in the middle are always
// followed; the last one only when follow is set.
func (r *Reader) resolve(op, name string, follow bool, w *work) (*inode, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	stack := []*inode{r.root}
	// todo holds the components still to walk, the next one last, so that
	// a symlink's target is pushed without copying the rest.
	var todo []string
	push := func(p string) {
		parts := strings.Split(p, "/")
		for i := len(parts) - 1; i >= 0; i-- {
			todo = append(todo, parts[i])
		}
	}
	if name != "." {
		push(name)
	}
	hops := 0
	for len(todo) > 0 {
		p := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		switch p {
		case "", ".":
			continue
		case "..":
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		cur := stack[len(stack)-1]
		if basicType(cur.typ) != typeDir {
			return nil, &fs.PathError{Op: op, Path: name, Err: fmt.Errorf("not a directory")}
		}
		child, err := r.lookup(cur, p, w)
		if err != nil {
			return nil, &fs.PathError{Op: op, Path: name, Err: err}
		}
		if basicType(child.typ) == typeSymlink && (len(todo) > 0 || follow) {
			if hops++; hops > maxSymlinkHops {
				return nil, &fs.PathError{Op: op, Path: name, Err: fmt.Errorf("too many levels of symbolic links")}
			}
			if strings.HasPrefix(child.target, "/") {
				stack = stack[:1]
			}
			push(child.target)
			continue
		}
		stack = append(stack, child)
	}
	return stack[len(stack)-1], nil
}

// fileInfo implements fs.FileInfo for an inode.
type fileInfo struct {
	name string
	in   *inode
}

func (f fileInfo) Name() string       { return f.name }
func (f fileInfo) Size() int64        { return int64(min(f.in.size, math.MaxInt64)) }
func (f fileInfo) Mode() fs.FileMode  { return fileMode(f.in.typ, f.in.mode) }
func (f fileInfo) ModTime() time.Time { return time.Unix(int64(f.in.mtime), 0).UTC() }
func (f fileInfo) IsDir() bool        { return basicType(f.in.typ) == typeDir }
func (f fileInfo) Sys() any {
	s := &Stat{UID: f.in.uid, GID: f.in.gid, Nlink: f.in.nlink, Inode: f.in.number}
	s.Major, s.Minor = decodeDev(f.in.rdev)
	return s
}

func (e dirEntry) Name() string      { return e.name }
func (e dirEntry) IsDir() bool       { return basicType(e.typ) == typeDir }
func (e dirEntry) Type() fs.FileMode { return fileMode(e.typ, 0).Type() }
func (e dirEntry) Info() (fs.FileInfo, error) {
	in, err := e.r.inodeAt(e.ref, e.r.newWork())
	if err != nil {
		return nil, err
	}
	return fileInfo{name: e.name, in: in}, nil
}

// Stat returns the FileInfo of name, following symlinks.
func (r *Reader) Stat(name string) (fs.FileInfo, error) {
	in, err := r.resolve("stat", name, true, r.newWork())
	if err != nil {
		return nil, err
	}
	return fileInfo{name: path.Base(name), in: in}, nil
}

// Lstat returns the FileInfo of name without following a final symlink.
func (r *Reader) Lstat(name string) (fs.FileInfo, error) {
	in, err := r.resolve("lstat", name, false, r.newWork())
	if err != nil {
		return nil, err
	}
	return fileInfo{name: path.Base(name), in: in}, nil
}

// ReadLink returns the target of the symlink name.
func (r *Reader) ReadLink(name string) (string, error) {
	in, err := r.resolve("readlink", name, false, r.newWork())
	if err != nil {
		return "", err
	}
	if basicType(in.typ) != typeSymlink {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	return in.target, nil
}

// ReadDir lists the directory name, sorted by file name.
func (r *Reader) ReadDir(name string) ([]fs.DirEntry, error) {
	w := r.newWork()
	in, err := r.resolve("readdir", name, true, w)
	if err != nil {
		return nil, err
	}
	return r.readDir(name, in, w)
}

func (r *Reader) readDir(name string, in *inode, w *work) ([]fs.DirEntry, error) {
	if basicType(in.typ) != typeDir {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fmt.Errorf("not a directory")}
	}
	var out []fs.DirEntry
	if err := r.listDir(in, "", w, nil, func(e dirEntry) bool { out = append(out, e); return true }); err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

// Xattrs returns the extended attributes of name (not following a final
// symlink), keyed by full name.
func (r *Reader) Xattrs(name string) (map[string][]byte, error) {
	w := r.newWork()
	in, err := r.resolve("xattrs", name, false, w)
	if err != nil {
		return nil, err
	}
	x, err := r.xattrs(in, w)
	if err != nil {
		return nil, &fs.PathError{Op: "xattrs", Path: name, Err: err}
	}
	return x, nil
}

func (r *Reader) xattrs(in *inode, w *work) (map[string][]byte, error) {
	if in.xattr == invalidXattr {
		return nil, nil
	}
	if r.sb.XattrIDTable == invalidBlock {
		return nil, corrupt("inode %d has xattrs but the image has no xattr table", in.number)
	}
	var head [16]byte
	if err := r.readAt(head[:], r.sb.XattrIDTable); err != nil {
		return nil, err
	}
	kvStart, count := le.Uint64(head[:]), le.Uint32(head[8:])
	if in.xattr >= count {
		return nil, corrupt("inode %d: xattr id %d beyond the %d ids", in.number, in.xattr, count)
	}
	e, err := r.tableEntry(w, r.sb.XattrIDTable+16, uint64(in.xattr), xattrIDEntry)
	if err != nil {
		return nil, err
	}
	ref, n := le.Uint64(e), le.Uint32(e[8:])
	if n > maxXattrs {
		return nil, corrupt("inode %d: %d xattrs", in.number, n)
	}
	at := func(ref uint64) *cursor {
		return r.cursorAt(w, tablePos{block: kvStart + ref>>16, off: int(ref & 0xffff)}, r.sb.BytesUsed)
	}
	c := at(ref)
	x := map[string][]byte{}
	for range n {
		kh, err := c.read(4)
		if err != nil {
			return nil, err
		}
		typ, nsize := le.Uint16(kh), le.Uint16(kh[2:])
		if int(typ&^xattrOOL) >= len(xattrPrefixes) {
			return nil, corrupt("inode %d: xattr prefix %d", in.number, typ)
		}
		if nsize > maxXattrName {
			return nil, corrupt("inode %d: xattr name of %d bytes", in.number, nsize)
		}
		nm, err := c.read(int(nsize))
		if err != nil {
			return nil, err
		}
		name := xattrPrefixes[typ&^xattrOOL] + string(nm)
		vsize, err := c.u32()
		if err != nil {
			return nil, err
		}
		vc := c
		if typ&xattrOOL != 0 {
			if vsize != 8 {
				return nil, corrupt("inode %d: out-of-line xattr reference of %d bytes", in.number, vsize)
			}
			vref, err := c.u64()
			if err != nil {
				return nil, err
			}
			vc = at(vref)
			if vsize, err = vc.u32(); err != nil {
				return nil, err
			}
		}
		if vsize > maxXattrValue {
			return nil, corrupt("inode %d: xattr value of %d bytes", in.number, vsize)
		}
		v, err := vc.read(int(vsize))
		if err != nil {
			return nil, err
		}
		x[name] = bytes.Clone(v)
	}
	return x, nil
}

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

// dirFile is an open directory.
type dirFile struct {
	r       *Reader
	name    string
	info    fileInfo
	entries []fs.DirEntry
	read    bool
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *dirFile) Close() error               { return nil }
func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.name, Err: fmt.Errorf("is a directory")}
}

func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	if !d.read {
		var err error
		if d.entries, err = d.r.readDir(d.name, d.info.in, d.r.newWork()); err != nil {
			return nil, err
		}
		d.read = true
	}
	if n <= 0 {
		out := d.entries
		d.entries = nil
		return out, nil
	}
	if len(d.entries) == 0 {
		return nil, io.EOF
	}
	k := min(n, len(d.entries))
	out := d.entries[:k]
	d.entries = d.entries[k:]
	return out, nil
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
