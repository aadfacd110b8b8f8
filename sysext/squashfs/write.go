package squashfs

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"sync"

	"github.com/sysext-bakery/bakery/internal/chunked"
	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/tree"
)

// DefaultBlockSize is the data block size when Options.BlockSize is 0, as
// mksquashfs has it.
const DefaultBlockSize = 128 << 10

// Options say how Write encodes a tree. The zero value writes zstd level 15
// with 128 KiB blocks, keeping owners and giving every inode the time 0.
type Options struct {
	// Compression is the block compressor; empty means zstd.
	Compression sysext.Compression
	// Level is the compressor level (zstd 1..22, gzip 1..9, lz4 0..9 where
	// 2..9 select high compression); 0 means the compressor's default.
	Level int
	// BlockSize is a power of two from 4 KiB to 1 MiB; 0 means 128 KiB.
	BlockSize int
	// AllRoot makes every inode owned by root:root.
	AllRoot bool
	// Epoch is the superblock's creation time and, unless KeepMtimes is
	// set, the mtime of every inode.
	Epoch int64
	// KeepMtimes stores each node's own Mtime instead of Epoch.
	KeepMtimes bool
	// Workers is the number of compressing goroutines; 0 means GOMAXPROCS.
	Workers int
}

// fileLayout is where a regular file's data landed: the fragment holding
// its tail, and its full blocks.
type fileLayout struct {
	frag, fragOffset uint32
	// data is the index in writer.runs of the file's blocks, noBlocks
	// when it has none, or dupOf(rank) when the file shares the data of
	// the earlier file of that rank.
	data int32
}

// noBlocks is the fileLayout.data of a file without full blocks.
const noBlocks = -1

// dupOf is the fileLayout.data of a file sharing the data of the file of
// the given rank.
func dupOf(rank int32) int32 { return -2 - rank }

// blockRun is where the full blocks of a file landed.
type blockRun struct {
	start uint64
	sizes uint32 // where the blocks' size words start in writer.sizes
}

// fileData is where a file's data is, for its inode.
type fileData struct {
	start            uint64
	frag, fragOffset uint32
	sizes            []uint32
}

// writer holds the state of one Write call.
type writer struct {
	opts  Options
	codec *codec
	out   io.WriterAt
	pos   int64
	// t is the tree, once the stream has completed it.
	t     *tree.Tree
	shape shape
	// mu guards layouts, runs and sizes, which the reading goroutine
	// adds to while the writing one fills them in and reads them.
	mu sync.Mutex
	// layouts holds the layout of each file with content, by its rank in
	// walk order.
	layouts chunked.Slice[fileLayout]
	runs    []blockRun
	sizes   []uint32 // block size words, file after file
	frags   []byte   // fragment table entries

	// metadata state
	meta     compressor
	walk     *metaWalk
	inodes   *metaStream
	dirs     *metaStream
	ino      []uint32 // inode numbers by tree.Ino
	exports  []uint64 // inode references by inode number - 1
	ids      []uint32
	idIndex  map[uint32]uint16
	xattrs   *metaStream
	xattrIDs []byte
	xattrSet map[string]uint32
	scratch  []byte // the inode being encoded
}

// fileData is where the data of the file with content of the given rank,
// all written, is.
func (w *writer) fileData(rank int) fileData {
	w.mu.Lock()
	defer w.mu.Unlock()
	l := *w.layouts.At(rank)
	if l.data < noBlocks {
		l = *w.layouts.At(int(-2 - l.data))
	}
	d := fileData{frag: l.frag, fragOffset: l.fragOffset}
	if l.data >= 0 {
		r := w.runs[l.data]
		d.start, d.sizes = r.start, w.sizes[r.sizes:]
	}
	return d
}

// codec checks the options, setting the default block size, and returns
// the block codec they ask for.
func (opts *Options) codec() (*codec, error) {
	if opts.BlockSize == 0 {
		opts.BlockSize = DefaultBlockSize
	}
	if opts.BlockSize < 4096 || opts.BlockSize > 1<<20 || opts.BlockSize&(opts.BlockSize-1) != 0 {
		return nil, fmt.Errorf("block size %d: use a power of two from 4096 to 1048576", opts.BlockSize)
	}
	if opts.Epoch < 0 || opts.Epoch > math.MaxUint32 {
		return nil, fmt.Errorf("epoch %d: squashfs times are 0..%d", opts.Epoch, uint32(math.MaxUint32))
	}
	return newCodec(opts.Compression, opts.Level, opts.BlockSize)
}

// Write writes the squashfs image of the tree t to w, starting at offset
// 0, and returns the image's length (a multiple of 4 KiB).
func Write(ctx context.Context, w io.WriterAt, t *tree.Tree, opts Options) (int64, error) {
	return WriteStream(ctx, w, t.Files(), opts)
}

// WriteStream is Write of the tree s hands out: the data of its files is
// compressed and written as they come, the rest once the tree is
// complete. The inode and directory tables are written into memory,
// compressed, as the data of their files is, and hold a few bytes per
// inode; the rest of what WriteStream keeps grows with the tree's inodes
// by a few dozen bytes each (tree.Tree holds the tree itself), and not
// with file sizes.
func WriteStream(ctx context.Context, w io.WriterAt, s tree.Stream, opts Options) (int64, error) {
	k, err := opts.codec()
	if err != nil {
		return 0, err
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	mc, err := k.newMetadataCompressor()
	if err != nil {
		return 0, err
	}
	uncompressed := k.name == sysext.None
	wr := &writer{opts: opts, codec: k, out: w, meta: mc, walk: newMetaWalk(),
		inodes: &metaStream{c: mc, raw: uncompressed}, dirs: &metaStream{c: mc, raw: uncompressed},
		xattrs: &metaStream{c: mc, raw: uncompressed}, idIndex: map[uint32]uint16{}, xattrSet: map[string]uint32{}}
	return wr.write(ctx, s)
}

// prepare checks the complete tree against squashfs's limits and numbers
// its inodes, so that they can be written.
func (w *writer) prepare(r treeResult) error {
	if r.err != nil {
		return r.err
	}
	sh, err := checkTree(r.t)
	if err != nil {
		return err
	}
	w.t, w.shape = r.t, sh
	w.ino = make([]uint32, w.t.Len())
	w.exports = make([]uint64, w.t.Len())
	for i := range w.exports {
		w.exports[i] = unwritten
	}
	next := uint32(1)
	w.number(tree.Root, &next)
	return nil
}

func (w *writer) write(ctx context.Context, s tree.Stream) (int64, error) {
	w.pos = superblockSize
	if w.codec.options != nil {
		w.pos += 2 + int64(len(w.codec.options))
	}
	if err := w.writeData(ctx, s); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if w.layouts.Len() != w.shape.files {
		return 0, fmt.Errorf("internal error: %d files with content read, the tree has %d", w.layouts.Len(), w.shape.files)
	}
	if err := w.walk.advance(w, w.shape.files); err != nil {
		return 0, err
	}
	if !w.walk.done() {
		return 0, fmt.Errorf("internal error: inodes left unwritten")
	}
	uncompressed := w.codec.name == sysext.None
	sb := superblock{
		Inodes: uint32(w.t.Len()), MkfsTime: uint32(w.opts.Epoch), BlockSize: uint32(w.opts.BlockSize),
		Fragments: uint32(len(w.frags) / fragmentEntry), Compression: w.codec.id,
		BlockLog: uint16(bitsLen(w.opts.BlockSize)), Flags: flagAlwaysFragments | flagDuplicates | flagExportable,
		IDs: uint16(len(w.ids)), Major: 4, RootInode: w.walk.root,
	}
	if uncompressed {
		sb.Flags |= flagUncompressedInodes | flagUncompressedData | flagUncompressedFragments | flagUncompressedXattrs | flagUncompressedIDs
	}
	if w.codec.options != nil {
		sb.Flags |= flagCompressorOptions
	}
	steps := []struct {
		name string
		do   func() error
	}{
		{"inode table", func() error { sb.InodeTable = uint64(w.pos); return w.put(w.inodes.finish()) }},
		{"directory table", func() error { sb.DirectoryTable = uint64(w.pos); return w.put(w.dirs.finish()) }},
		{"fragment table", func() (err error) { sb.FragmentTable, err = w.table(w.frags, nil); return err }},
		{"export table", func() (err error) {
			var b []byte
			for _, r := range w.exports {
				b = binary.LittleEndian.AppendUint64(b, r)
			}
			sb.LookupTable, err = w.table(b, nil)
			return err
		}},
		{"id table", func() (err error) {
			var b []byte
			for _, id := range w.ids {
				b = binary.LittleEndian.AppendUint32(b, id)
			}
			sb.IDTable, err = w.table(b, nil)
			return err
		}},
		{"xattr table", func() (err error) {
			sb.XattrIDTable = invalidBlock
			if len(w.xattrIDs) == 0 {
				return nil
			}
			start := uint64(w.pos)
			if err := w.put(w.xattrs.finish()); err != nil {
				return err
			}
			head := binary.LittleEndian.AppendUint64(nil, start)
			head = binary.LittleEndian.AppendUint32(head, uint32(len(w.xattrIDs)/xattrIDEntry))
			head = binary.LittleEndian.AppendUint32(head, 0)
			sb.XattrIDTable, err = w.table(w.xattrIDs, head)
			return err
		}},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			return 0, fmt.Errorf("write %s: %w", s.name, err)
		}
	}
	sb.BytesUsed = uint64(w.pos)
	if pad := (4096 - w.pos%4096) % 4096; pad > 0 {
		if err := w.put(make([]byte, pad)); err != nil {
			return 0, fmt.Errorf("write padding: %w", err)
		}
	}
	head := sb.marshal()
	if w.codec.options != nil {
		head = binary.LittleEndian.AppendUint16(head, uint16(len(w.codec.options))|metaUncompressed)
		head = append(head, w.codec.options...)
	}
	if _, err := w.out.WriteAt(head, 0); err != nil {
		return 0, fmt.Errorf("write superblock: %w", err)
	}
	return w.pos, nil
}

// bitsLen is log2 of a power of two.
func bitsLen(n int) int {
	l := 0
	for n > 1 {
		n >>= 1
		l++
	}
	return l
}

// put writes p at the current position.
func (w *writer) put(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if _, err := w.out.WriteAt(p, w.pos); err != nil {
		return err
	}
	w.pos += int64(len(p))
	return nil
}

// table writes entries as metadata blocks followed by head and the list of
// the blocks' positions, and returns where head starts (the superblock's
// pointer for fragment, export, id and xattr id tables).
func (w *writer) table(entries, head []byte) (uint64, error) {
	ptrs := head
	for off := 0; off < len(entries); off += metadataSize {
		ptrs = binary.LittleEndian.AppendUint64(ptrs, uint64(w.pos))
		blk, err := metaBlock(w.meta, nil, entries[off:min(off+metadataSize, len(entries))], w.codec.name == sysext.None)
		if err != nil {
			return 0, err
		}
		if err := w.put(blk); err != nil {
			return 0, err
		}
	}
	start := uint64(w.pos)
	return start, w.put(ptrs)
}

// metaBlock appends src as one metadata block (2-byte header, then the
// data compressed when that makes it smaller) to dst.
func metaBlock(c compressor, dst, src []byte, raw bool) ([]byte, error) {
	if !raw {
		out, ok, err := c.compress(make([]byte, 0, len(src)), src)
		if err != nil {
			return nil, err
		}
		if ok {
			dst = binary.LittleEndian.AppendUint16(dst, uint16(len(out)))
			return append(dst, out...), nil
		}
	}
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(src))|metaUncompressed)
	return append(dst, src...), nil
}

// metaStream accumulates a metadata table (inodes, directories, xattrs)
// as a sequence of 8 KiB blocks.
type metaStream struct {
	c   compressor
	raw bool
	out []byte
	buf []byte
	// starts holds each written block's offset in out.
	starts []uint64
	err    error
}

// ref is the position of the next byte: block offset << 16 | offset.
func (m *metaStream) ref() uint64 { return uint64(len(m.out))<<16 | uint64(len(m.buf)) }

// upos is the position of the next byte in the uncompressed stream.
func (m *metaStream) upos() int64 { return int64(len(m.starts))*metadataSize + int64(len(m.buf)) }

// blockStart is the offset in out of the block holding uncompressed byte u
// (at most the block being filled).
func (m *metaStream) blockStart(u int64) uint64 {
	if b := u / metadataSize; b < int64(len(m.starts)) {
		return m.starts[b]
	}
	return uint64(len(m.out))
}

func (m *metaStream) write(p []byte) {
	m.buf = append(m.buf, p...)
	for len(m.buf) >= metadataSize {
		m.flush(metadataSize)
	}
}

func (m *metaStream) flush(n int) {
	if m.err != nil {
		return
	}
	m.starts = append(m.starts, uint64(len(m.out)))
	m.out, m.err = metaBlock(m.c, m.out, m.buf[:n], m.raw)
	m.buf = m.buf[:copy(m.buf, m.buf[n:])]
}

// finish flushes the last block and returns the table.
func (m *metaStream) finish() []byte {
	if len(m.buf) > 0 {
		m.flush(len(m.buf))
	}
	if m.err != nil {
		return nil
	}
	return m.out
}

// number assigns inode numbers from *next in the order metaWalk writes
// inodes: a directory's entries before the directory, the root last.
func (w *writer) number(dir tree.Ino, next *uint32) {
	for k := range w.t.NumEntries(dir) {
		_, c := w.t.Entry(dir, k)
		if w.t.Mode(c).IsDir() {
			w.number(c, next)
		} else if w.ino[c] == 0 {
			w.ino[c] = *next
			*next++
		}
	}
	w.ino[dir] = *next
	*next++
}

// idOf gives the id table index of a uid or gid (0 with AllRoot).
func (w *writer) idOf(id uint32) (uint16, error) {
	if w.opts.AllRoot {
		id = 0
	}
	if i, ok := w.idIndex[id]; ok {
		return i, nil
	}
	if len(w.ids) == 1<<16 {
		return 0, fmt.Errorf("more than 65536 distinct uids and gids")
	}
	w.idIndex[id] = uint16(len(w.ids))
	w.ids = append(w.ids, id)
	return uint16(len(w.ids) - 1), nil
}

// xattrOf stores a node's xattrs (once per distinct set) and returns the
// index of its xattr id entry, or invalidXattr when it has none.
func (w *writer) xattrOf(x map[string][]byte) uint32 {
	if len(x) == 0 {
		return invalidXattr
	}
	names := make([]string, 0, len(x))
	for name := range x {
		names = append(names, name)
	}
	slices.Sort(names)
	var kv []byte
	for _, name := range names {
		prefix, short, _ := xattrKey(name) // checked by checkTree
		kv = le.AppendUint16(kv, prefix)
		kv = le.AppendUint16(kv, uint16(len(short)))
		kv = append(kv, short...)
		kv = le.AppendUint32(kv, uint32(len(x[name])))
		kv = append(kv, x[name]...)
	}
	if i, ok := w.xattrSet[string(kv)]; ok {
		return i
	}
	ref := w.xattrs.ref()
	w.xattrs.write(kv)
	i := uint32(len(w.xattrIDs) / xattrIDEntry)
	w.xattrIDs = le.AppendUint64(w.xattrIDs, ref)
	w.xattrIDs = le.AppendUint32(w.xattrIDs, uint32(len(names)))
	w.xattrIDs = le.AppendUint32(w.xattrIDs, uint32(len(kv)))
	w.xattrSet[string(kv)] = i
	return i
}
