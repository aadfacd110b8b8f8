package erofs

import (
	"encoding/binary"
	"strings"

	"github.com/sysext-bakery/bakery/sysext"
)

// The on-disk format of uncompressed erofs, as the kernel's
// fs/erofs/erofs_fs.h defines it; every number is little-endian.
const (
	blockBits = 12
	blockSize = 1 << blockBits

	superblockOffset = 1024
	superblockSize   = 128
	sbMagic          = 0xe0f5e1e2
	sbOffBlockBits   = 12
	sbOffRootNid     = 14
	sbOffBlocks      = 36
	sbOffUUID        = 48
	sbOffIncompat    = 80
	sbOffComprAlgs   = 84 // available_compr_algs, or lz4_max_distance

	// featureChunkedFile is the feature_incompat bit of images holding
	// chunk-based files.
	featureChunkedFile = 0x4
	// Feature_incompat bits only compressed images set: lz4 zero padding,
	// compression configurations (the same bit marks big pclusters), tail
	// packing of compressed data.
	featureZeroPadding  = 0x1
	featureComprCfgs    = 0x2
	featureZtailpacking = 0x10

	// slotSize is the unit of nids: inodes start on 32-byte boundaries,
	// counted from the first metadata block.
	slotSize          = 32
	compactInodeSize  = 32
	extendedInodeSize = 64

	layoutFlatPlain  = 0 // data in consecutive blocks
	layoutFlatInline = 2 // full blocks, then the tail right after the inode
	layoutChunkBased = 4 // a block map: one start block per chunk

	// nullAddr is the block address of a hole in a block map, and the start
	// block of an inode without data blocks.
	nullAddr = 0xffffffff

	blockMapEntrySize = 4
	// maxChunkBits caps a chunk at 2^19 blocks (2 GiB), so that a chunk's
	// byte size fits the 32-bit unsigned long of 32-bit kernels.
	maxChunkBits = 19

	direntSize = 12 // nid u64, nameoff u16, file type u8, reserved u8

	xattrHeaderSize      = 12 // name filter u32, shared count u8, reserved
	xattrEntryHeaderSize = 4  // name length u8, name index u8, value size u16
	maxXattrValue        = 0xffff
)

// compressorNames are the compression algorithms of erofs, by their bit in
// available_compr_algs.
var compressorNames = []string{"lz4", "lzma", "deflate", "zstd"}

// Directory entry file types.
const (
	ftRegular = 1 + iota
	ftDir
	ftCharDev
	ftBlockDev
	ftFifo
	ftSocket
	ftSymlink
)

// Unix file types, as i_mode holds them.
const (
	sIFMT   = 0xf000
	sIFSOCK = 0xc000
	sIFLNK  = 0xa000
	sIFREG  = 0x8000
	sIFBLK  = 0x6000
	sIFDIR  = 0x4000
	sIFCHR  = 0x2000
	sIFIFO  = 0x1000
)

// fileType is the directory entry file type of the unix mode m.
func fileType(m uint16) uint8 {
	switch m & sIFMT {
	case sIFREG:
		return ftRegular
	case sIFDIR:
		return ftDir
	case sIFCHR:
		return ftCharDev
	case sIFBLK:
		return ftBlockDev
	case sIFIFO:
		return ftFifo
	case sIFSOCK:
		return ftSocket
	case sIFLNK:
		return ftSymlink
	}
	return 0
}

// superblock is what an image's superblock records.
type superblock struct {
	rootNid  uint16
	inodes   uint64
	epoch    uint64
	blocks   uint32
	incompat uint32
}

// encode writes the superblock into b (superblockSize bytes). The metadata
// and the shared xattrs both start at block 0; the UUID is
// sysext.ErofsUUID.
func (s superblock) encode(b []byte) {
	le := binary.LittleEndian
	le.PutUint32(b[0:], sbMagic)
	b[12] = blockBits
	le.PutUint16(b[sbOffRootNid:], s.rootNid)
	le.PutUint64(b[16:], s.inodes)
	le.PutUint64(b[24:], s.epoch)
	le.PutUint32(b[36:], s.blocks)
	copy(b[sbOffUUID:], sysext.ErofsUUID[:])
	le.PutUint32(b[80:], s.incompat)
}

// inodeCore is the fixed part of an inode.
type inodeCore struct {
	extended   bool
	layout     uint16
	xattrCount uint16 // i_xattr_icount (see xattrCount)
	mode       uint16
	nlink      uint32
	size       uint64
	u          uint32 // i_u: start block, device number or chunk format
	ino        uint32
	uid, gid   uint32
	mtime      uint64 // extended inodes; compact ones have the build time
}

// coreSize is the size of an inode core.
func coreSize(extended bool) int {
	if extended {
		return extendedInodeSize
	}
	return compactInodeSize
}

// encode writes the inode core into b (coreSize bytes); a compact inode
// requires nlink, size, uid and gid to fit its 16- and 32-bit fields.
func (c inodeCore) encode(b []byte) {
	le := binary.LittleEndian
	format := c.layout << 1
	if c.extended {
		format |= 1
	}
	le.PutUint16(b[0:], format)
	le.PutUint16(b[2:], c.xattrCount)
	le.PutUint16(b[4:], c.mode)
	le.PutUint32(b[16:], c.u)
	le.PutUint32(b[20:], c.ino)
	if !c.extended {
		le.PutUint16(b[6:], uint16(c.nlink))
		le.PutUint32(b[8:], uint32(c.size))
		le.PutUint16(b[24:], uint16(c.uid))
		le.PutUint16(b[26:], uint16(c.gid))
		return
	}
	le.PutUint64(b[8:], c.size)
	le.PutUint32(b[24:], c.uid)
	le.PutUint32(b[28:], c.gid)
	le.PutUint64(b[32:], c.mtime)
	le.PutUint32(b[44:], c.nlink)
}

// xattr is one extended attribute, full name and value.
type xattr struct {
	name, value string
}

// xattrIndexes are the name prefixes erofs stores as an index byte: the
// namespaces images carry.
var xattrIndexes = []struct {
	prefix string
	index  uint8
}{
	{"user.", 1},
	{"trusted.", 4},
	{"security.", 6},
}

// splitXattrName returns the name index of name's prefix and the rest of
// the name; ok is false for a name of another namespace.
func splitXattrName(name string) (index uint8, suffix string, ok bool) {
	for _, p := range xattrIndexes {
		if rest, found := strings.CutPrefix(name, p.prefix); found {
			return p.index, rest, true
		}
	}
	return 0, "", false
}

// xattrEntrySize is the size of x's entry, padded to 4 bytes.
func xattrEntrySize(x xattr) int {
	_, suffix, _ := splitXattrName(x.name)
	return align(xattrEntryHeaderSize+len(suffix)+len(x.value), 4)
}

// encodeXattrEntry writes x's entry into b.
func encodeXattrEntry(b []byte, x xattr) {
	index, suffix, _ := splitXattrName(x.name)
	b[0] = uint8(len(suffix))
	b[1] = index
	binary.LittleEndian.PutUint16(b[2:], uint16(len(x.value)))
	n := copy(b[xattrEntryHeaderSize:], suffix)
	copy(b[xattrEntryHeaderSize+n:], x.value)
}

// xattrBodySize is the size of an inode's xattr body with nshared shared
// xattrs and the inline ones: 0 when it has none.
func xattrBodySize(nshared int, inline []xattr) int {
	if nshared == 0 && len(inline) == 0 {
		return 0
	}
	size := xattrHeaderSize + 4*nshared
	for _, x := range inline {
		size += xattrEntrySize(x)
	}
	return size
}

// xattrCount is i_xattr_icount for an xattr body of size bytes.
func xattrCount(size int) uint16 {
	if size == 0 {
		return 0
	}
	return uint16((size-xattrHeaderSize)/4 + 1)
}

// encodeXattrBody writes an inode's xattr body into b: the header, the ids
// of its shared xattrs, then its inline entries.
func encodeXattrBody(b []byte, shared []uint32, inline []xattr) {
	b[4] = uint8(len(shared))
	off := xattrHeaderSize
	for _, id := range shared {
		binary.LittleEndian.PutUint32(b[off:], id)
		off += 4
	}
	for _, x := range inline {
		encodeXattrEntry(b[off:], x)
		off += xattrEntrySize(x)
	}
}

// encodeBlockMap writes a chunk-based file's block map into b: the start
// block of each chunk, nullAddr for a hole.
func encodeBlockMap(b []byte, chunks []uint32) {
	for i, c := range chunks {
		binary.LittleEndian.PutUint32(b[i*blockMapEntrySize:], c)
	}
}

// dirent is a directory entry: a name and the inode it names.
type dirent struct {
	name string
	ino  *inode
}

// dirBlocks splits a directory's entries, sorted by name, into blocks of
// as many entries as fit, and returns the number of entries in each block
// and the directory's size: whole blocks but the last, which ends with its
// last name.
func dirBlocks(entries []dirent) (counts []int, size int64) {
	used, count := 0, 0
	for _, e := range entries {
		need := direntSize + len(e.name)
		if count > 0 && used+need > blockSize {
			counts = append(counts, count)
			size += blockSize
			used, count = 0, 0
		}
		used += need
		count++
	}
	if count > 0 {
		counts = append(counts, count)
		size += int64(used)
	}
	return counts, size
}

// encodeDir writes a directory's blocks (counts from dirBlocks) into b:
// in each block the entries (nid, name offset, file type), then their
// names; every block but the last is padded with zeros.
func encodeDir(b []byte, entries []dirent, counts []int) {
	le := binary.LittleEndian
	for i, count := range counts {
		blk := b[i*blockSize:]
		name := direntSize * count
		for j, e := range entries[:count] {
			d := blk[j*direntSize:]
			le.PutUint64(d, e.ino.nid)
			le.PutUint16(d[8:], uint16(name))
			d[10] = fileType(e.ino.mode)
			name += copy(blk[name:], e.name)
		}
		entries = entries[count:]
	}
}

// align rounds n up to a multiple of a (a power of two).
func align[T int | int64](n, a T) T {
	return (n + a - 1) &^ (a - 1)
}
