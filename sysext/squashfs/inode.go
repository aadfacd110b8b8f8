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

// writeDir writes the inodes of a directory's children (subdirectories
// first, recursively), then its listing and its own inode, and returns the
// directory's inode reference.
func (w *writer) writeDir(dir *tree.Node, parent uint32) (uint64, error) {
	entries := w.tree.Entries[dir]
	kids := make([]child, len(entries))
	for i, e := range entries {
		n := e.Node
		ref, ok := w.refs[n]
		if !ok {
			var err error
			if n.Mode.IsDir() {
				ref, err = w.writeDir(n, w.ino[dir])
			} else {
				ref, err = w.writeInode(n)
			}
			if err != nil {
				return 0, err
			}
		}
		typ, _ := inodeType(n.Mode)
		kids[i] = child{name: e.Name, ref: ref, ino: w.ino[n], typ: typ}
	}
	listing, index := buildListing(kids)
	start, offset := w.dirs.ref()>>16, w.dirs.ref()&0xffff
	u0 := w.dirs.upos()
	w.dirs.write(listing)

	b, err := w.header(dir, typeDir)
	if err != nil {
		return 0, err
	}
	xattr := w.xattrOf(dir.Xattrs)
	size := uint64(len(listing)) + 3
	if len(index) == 0 && xattr == invalidXattr && size <= math.MaxUint16 && start <= math.MaxUint32 {
		b = le.AppendUint32(b, uint32(start))
		b = le.AppendUint32(b, w.tree.Nlink[dir])
		b = le.AppendUint16(b, uint16(size))
		b = le.AppendUint16(b, uint16(offset))
		b = le.AppendUint32(b, parent)
	} else {
		if size > math.MaxUint32 || start > math.MaxUint32 || len(index) > math.MaxUint16 {
			return 0, fmt.Errorf("%s: directory too large for squashfs", w.tree.Paths[dir])
		}
		le.PutUint16(b, typeDir+extOffset)
		b = le.AppendUint32(b, w.tree.Nlink[dir])
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
func (w *writer) emitInode(n *tree.Node, b []byte) uint64 {
	ref := w.inodes.ref()
	w.inodes.write(b)
	w.refs[n] = ref
	w.exports[w.ino[n]-1] = ref
	return ref
}

// header encodes the common inode header of n with the basic type typ.
func (w *writer) header(n *tree.Node, typ uint16) ([]byte, error) {
	uid, err := w.idOf(n.UID)
	if err != nil {
		return nil, err
	}
	gid, err := w.idOf(n.GID)
	if err != nil {
		return nil, err
	}
	mtime := w.opts.Epoch
	if w.opts.KeepMtimes {
		mtime = n.Mtime
	}
	if mtime < 0 || mtime > math.MaxUint32 {
		return nil, fmt.Errorf("%s: mtime %d does not fit squashfs (0..%d); set the epoch", w.tree.Paths[n], mtime, uint32(math.MaxUint32))
	}
	b := make([]byte, 0, 64)
	b = le.AppendUint16(b, typ)
	b = le.AppendUint16(b, unixMode(n.Mode))
	b = le.AppendUint16(b, uid)
	b = le.AppendUint16(b, gid)
	b = le.AppendUint32(b, uint32(mtime))
	b = le.AppendUint32(b, w.ino[n])
	return b, nil
}

// writeInode writes the inode of a non-directory node.
func (w *writer) writeInode(n *tree.Node) (uint64, error) {
	typ, _ := inodeType(n.Mode)
	b, err := w.header(n, typ)
	if err != nil {
		return 0, err
	}
	xattr := w.xattrOf(n.Xattrs)
	nlink := w.tree.Nlink[n]
	ext := xattr != invalidXattr
	if ext {
		le.PutUint16(b, typ+extOffset)
	}
	switch typ {
	case typeFile:
		l := w.layout[n]
		if l == nil {
			l = &fileLayout{frag: invalidFragment}
		}
		size := uint64(n.Size)
		if ext || nlink > 1 || l.sparse > 0 || size > math.MaxUint32 || l.start > math.MaxUint32 {
			le.PutUint16(b, typeFile+extOffset)
			b = le.AppendUint64(b, l.start)
			b = le.AppendUint64(b, size)
			b = le.AppendUint64(b, l.sparse)
			b = le.AppendUint32(b, nlink)
			b = le.AppendUint32(b, l.frag)
			b = le.AppendUint32(b, l.fragOffset)
			b = le.AppendUint32(b, xattr)
		} else {
			b = le.AppendUint32(b, uint32(l.start))
			b = le.AppendUint32(b, l.frag)
			b = le.AppendUint32(b, l.fragOffset)
			b = le.AppendUint32(b, uint32(size))
		}
		for _, s := range l.sizes {
			b = le.AppendUint32(b, s)
		}
	case typeSymlink:
		b = le.AppendUint32(b, nlink)
		b = le.AppendUint32(b, uint32(len(n.Target)))
		b = append(b, n.Target...)
		if ext {
			b = le.AppendUint32(b, xattr)
		}
	case typeBlock, typeChar:
		b = le.AppendUint32(b, nlink)
		b = le.AppendUint32(b, encodeDev(n.Major, n.Minor))
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
