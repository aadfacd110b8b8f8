package squashfs

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/sysext-bakery/bakery/sysext/tree"
)

var le = binary.LittleEndian

// child is one directory entry ready to be listed.
type child struct {
	name string
	ref  uint64
	ino  uint32
	typ  uint16
}

// dirIndex marks a header of a large directory's listing, so that the
// kernel can skip to it when looking up a name.
type dirIndex struct {
	pos  int
	name string
}

// unwritten marks an inode not yet in the inode table.
const unwritten = ^uint64(0)

// metaWalk writes the inode and directory tables as mksquashfs orders
// them: a directory's entries' inodes (subdirectories first, recursively,
// where their name comes), then its listing and its own inode, the root
// last. It is resumable, so that the tables are written while data is
// still being compressed: advance stops before the inode of a file whose
// data is not written yet and goes on when called again.
type metaWalk struct {
	stack []frame
	// files counts the files with content whose inode is written: they
	// come in walk order, as their data does.
	files int
	// root is the root's inode reference once it is written.
	root uint64
}

// frame is a directory whose entries are being written.
type frame struct {
	dir  tree.Ino
	k    int // the next entry
	kids []child
}

func newMetaWalk() *metaWalk { return &metaWalk{stack: []frame{{dir: tree.Root}}} }

// done reports whether every inode is written.
func (m *metaWalk) done() bool { return len(m.stack) == 0 }

// advance writes inodes and listings up to the inode of the file with
// content of rank ready (the first whose data is not yet written).
func (m *metaWalk) advance(w *writer, ready int) error {
	t := w.t
	for len(m.stack) > 0 {
		f := &m.stack[len(m.stack)-1]
		if f.k == t.NumEntries(f.dir) {
			parent := uint32(t.Len()) + 1 // as mksquashfs has it for the root
			if len(m.stack) > 1 {
				parent = w.ino[m.stack[len(m.stack)-2].dir]
			}
			ref, err := w.writeDir(f.dir, f.kids, parent)
			if err != nil {
				return err
			}
			dir := f.dir
			m.stack = m.stack[:len(m.stack)-1]
			if len(m.stack) == 0 {
				m.root = ref
				return nil
			}
			m.add(w, dir, ref)
			continue
		}
		_, c := t.Entry(f.dir, f.k)
		if t.Mode(c).IsDir() {
			m.stack = append(m.stack, frame{dir: c})
			continue
		}
		ref := w.exports[w.ino[c]-1]
		if ref == unwritten {
			d := fileData{frag: invalidFragment}
			if t.HasContent(c) {
				if m.files == ready {
					return nil
				}
				d = w.fileData(m.files)
				m.files++
			}
			var err error
			if ref, err = w.writeInode(c, d); err != nil {
				return err
			}
		}
		m.add(w, c, ref)
	}
	return nil
}

// add lists the inode i, written at ref, as the next entry of the
// directory on top of the stack.
func (m *metaWalk) add(w *writer, i tree.Ino, ref uint64) {
	f := &m.stack[len(m.stack)-1]
	name, _ := w.t.Entry(f.dir, f.k)
	typ, _ := inodeType(w.t.Mode(i))
	f.kids = append(f.kids, child{name: name, ref: ref, ino: w.ino[i], typ: typ})
	f.k++
}

// writeDir writes the listing of dir, whose entries are kids, and its
// inode, and returns the inode's reference; parent is the inode number of
// its parent.
func (w *writer) writeDir(dir tree.Ino, kids []child, parent uint32) (uint64, error) {
	listing, index := buildListing(kids)
	start, offset := w.dirs.ref()>>16, w.dirs.ref()&0xffff
	u0 := w.dirs.upos()
	w.dirs.write(listing)

	b, err := w.header(dir, typeDir)
	if err != nil {
		return 0, err
	}
	xattr := w.xattrOf(w.t.Xattrs(dir))
	nlink := w.t.Nlink(dir)
	size := uint64(len(listing)) + 3
	if len(index) == 0 && xattr == invalidXattr && size <= math.MaxUint16 && start <= math.MaxUint32 {
		b = le.AppendUint32(b, uint32(start))
		b = le.AppendUint32(b, nlink)
		b = le.AppendUint16(b, uint16(size))
		b = le.AppendUint16(b, uint16(offset))
		b = le.AppendUint32(b, parent)
	} else {
		if size > math.MaxUint32 || start > math.MaxUint32 || len(index) > math.MaxUint16 {
			return 0, fmt.Errorf("%s: directory too large for squashfs", w.t.Path(dir))
		}
		le.PutUint16(b, typeDir+extOffset)
		b = le.AppendUint32(b, nlink)
		b = le.AppendUint32(b, uint32(size))
		b = le.AppendUint32(b, uint32(start))
		b = le.AppendUint32(b, parent)
		b = le.AppendUint16(b, uint16(len(index)))
		b = le.AppendUint16(b, uint16(offset))
		b = le.AppendUint32(b, xattr)
		for _, ix := range index {
			b = le.AppendUint32(b, uint32(ix.pos))
			b = le.AppendUint32(b, uint32(w.dirs.blockStart(u0+int64(ix.pos))))
			b = le.AppendUint32(b, uint32(len(ix.name)-1))
			b = append(b, ix.name...)
		}
	}
	return w.emitInode(dir, b), nil
}

// emitInode appends an encoded inode to the inode table and records it.
func (w *writer) emitInode(n tree.Ino, b []byte) uint64 {
	ref := w.inodes.ref()
	w.inodes.write(b)
	w.exports[w.ino[n]-1] = ref
	w.scratch = b[:0]
	return ref
}

// header encodes the common inode header of n with the basic type typ.
func (w *writer) header(n tree.Ino, typ uint16) ([]byte, error) {
	uid, gid := w.t.Owner(n)
	uidIndex, err := w.idOf(uid)
	if err != nil {
		return nil, err
	}
	gidIndex, err := w.idOf(gid)
	if err != nil {
		return nil, err
	}
	mtime := w.opts.Epoch
	if w.opts.KeepMtimes {
		mtime = w.t.Mtime(n)
	}
	if mtime < 0 || mtime > math.MaxUint32 {
		return nil, fmt.Errorf("%s: mtime %d does not fit squashfs (0..%d); set the epoch", w.t.Path(n), mtime, uint32(math.MaxUint32))
	}
	b := w.scratch[:0]
	b = le.AppendUint16(b, typ)
	b = le.AppendUint16(b, unixMode(w.t.Mode(n)))
	b = le.AppendUint16(b, uidIndex)
	b = le.AppendUint16(b, gidIndex)
	b = le.AppendUint32(b, uint32(mtime))
	b = le.AppendUint32(b, w.ino[n])
	return b, nil
}

// writeInode writes the inode of a non-directory, a file's data being
// where d says.
func (w *writer) writeInode(n tree.Ino, d fileData) (uint64, error) {
	mode := w.t.Mode(n)
	typ, _ := inodeType(mode)
	b, err := w.header(n, typ)
	if err != nil {
		return 0, err
	}
	xattr := w.xattrOf(w.t.Xattrs(n))
	nlink := w.t.Nlink(n)
	ext := xattr != invalidXattr
	if ext {
		le.PutUint16(b, typ+extOffset)
	}
	switch typ {
	case typeFile:
		size := uint64(w.t.Size(n))
		sizes := d.sizes[:size/uint64(w.opts.BlockSize)]
		var sparse uint64 // bytes in blocks of zeros, not stored
		for _, s := range sizes {
			if s == 0 {
				sparse += uint64(w.opts.BlockSize)
			}
		}
		if ext || nlink > 1 || sparse > 0 || size > math.MaxUint32 || d.start > math.MaxUint32 {
			le.PutUint16(b, typeFile+extOffset)
			b = le.AppendUint64(b, d.start)
			b = le.AppendUint64(b, size)
			b = le.AppendUint64(b, sparse)
			b = le.AppendUint32(b, nlink)
			b = le.AppendUint32(b, d.frag)
			b = le.AppendUint32(b, d.fragOffset)
			b = le.AppendUint32(b, xattr)
		} else {
			b = le.AppendUint32(b, uint32(d.start))
			b = le.AppendUint32(b, d.frag)
			b = le.AppendUint32(b, d.fragOffset)
			b = le.AppendUint32(b, uint32(size))
		}
		for _, s := range sizes {
			b = le.AppendUint32(b, s)
		}
	case typeSymlink:
		target := w.t.Target(n)
		b = le.AppendUint32(b, nlink)
		b = le.AppendUint32(b, uint32(len(target)))
		b = append(b, target...)
		if ext {
			b = le.AppendUint32(b, xattr)
		}
	case typeBlock, typeChar:
		b = le.AppendUint32(b, nlink)
		b = le.AppendUint32(b, encodeDev(w.t.Device(n)))
		if ext {
			b = le.AppendUint32(b, xattr)
		}
	case typeFifo, typeSocket:
		b = le.AppendUint32(b, nlink)
		if ext {
			b = le.AppendUint32(b, xattr)
		}
	}
	return w.emitInode(n, b), nil
}

// buildListing encodes a directory's entries as squashfs directory headers
// and entries. Like mksquashfs it starts a new header every 256 entries,
// when the inode block changes, when the inode number is out of the 16-bit
// delta range, and when the listing since the last index passes 8 KiB,
// recording an index there.
func buildListing(kids []child) ([]byte, []dirIndex) {
	var (
		b         []byte
		index     []dirIndex
		hdr       = -1
		count     int
		baseBlock uint64
		baseIno   uint32
		lastIndex int
	)
	closeRun := func() {
		if hdr >= 0 {
			le.PutUint32(b[hdr:], uint32(count-1))
		}
	}
	for _, k := range kids {
		blk := k.ref >> 16
		size := dirEntrySize + len(k.name)
		delta := int64(k.ino) - int64(baseIno)
		needIndex := hdr >= 0 && len(b)+size-lastIndex > metadataSize
		if hdr < 0 || count == maxDirRun || blk != baseBlock || delta > math.MaxInt16 || delta < math.MinInt16 || needIndex {
			closeRun()
			if needIndex {
				index = append(index, dirIndex{pos: len(b), name: k.name})
				lastIndex = len(b)
			}
			hdr, count, baseBlock, baseIno, delta = len(b), 0, blk, k.ino, 0
			b = le.AppendUint32(b, 0)
			b = le.AppendUint32(b, uint32(blk))
			b = le.AppendUint32(b, k.ino)
		}
		b = le.AppendUint16(b, uint16(k.ref&0xffff))
		b = le.AppendUint16(b, uint16(int16(delta)))
		b = le.AppendUint16(b, k.typ)
		b = le.AppendUint16(b, uint16(len(k.name)-1))
		b = append(b, k.name...)
		count++
	}
	closeRun()
	return b, index
}
