package erofs

import (
	"cmp"
	"fmt"
	"math/bits"
	"slices"
)

// placement is where plan puts one inode and how it stores its data.
type placement struct {
	nid       uint64
	extended  bool
	layout    uint16
	shared    []int   // its shared xattrs, as indexes into layout.shared
	inline    []xattr // its other xattrs, stored after the inode core
	xattrBody int     // size of the xattr body
	dirCounts []int   // directory: entries per block (see dirBlocks)
	tail      int     // FLAT_INLINE: data bytes stored after the xattr body
	blocks    int64   // flat layouts: data blocks
	start     uint32  // flat layouts: first data block
	chunkBits uint8   // chunk-based: a chunk is 2^chunkBits blocks
	chunks    []uint32
}

// headerSize is the size of the inode core and the xattr body.
func (p *placement) headerSize() int {
	return coreSize(p.extended) + p.xattrBody
}

// recordSize is the room the inode takes in the metadata: header and
// inline tail or block map.
func (p *placement) recordSize() int {
	return p.headerSize() + p.tail + blockMapEntrySize*len(p.chunks)
}

// layout is where an image's parts go: metadata (superblock, inodes with
// their xattrs, tails and block maps, shared xattrs) in blocks 0 to
// metaBlocks-1, data blocks after them in inode order.
type layout struct {
	metaBlocks int64
	blocks     int64 // the image's size in blocks
	shared     []sharedXattr
	incompat   uint32
}

// sharedXattr is an xattr stored once, at off in the metadata, for all the
// inodes that have it.
type sharedXattr struct {
	xattr
	off int64
}

// id is the shared xattr's id: its offset in 4-byte units from block 0.
func (s sharedXattr) id() uint32 { return uint32(s.off / 4) }

// plan lays an image of inodes out (the root first): it decides each
// inode's data layout and xattr storage, places the inodes, best fit, in
// the metadata blocks and gives data blocks to what is not stored inline.
func plan(inodes []*inode) (layout, error) {
	var l layout
	shared := shareXattrs(inodes)
	index := make(map[xattr]int, len(shared))
	for i, x := range shared {
		index[x] = i
	}
	meta := newMetaSpace()
	var lastInode int64
	for i, n := range inodes {
		if err := n.arrange(index); err != nil {
			return layout{}, fmt.Errorf("%s: %w", n.rel(), err)
		}
		off := meta.place(n.recordSize())
		n.nid = uint64(off / slotSize)
		lastInode = max(lastInode, off)
		if i == 0 {
			// Right after the root, whose nid must fit 16 bits.
			for _, x := range shared {
				l.shared = append(l.shared, sharedXattr{x, meta.place(xattrEntrySize(x))})
			}
		}
	}
	l.metaBlocks = meta.blocks
	next := l.metaBlocks
	for _, n := range inodes {
		next = n.assignBlocks(next)
		if n.layout == layoutChunkBased {
			l.incompat |= featureChunkedFile
		}
	}
	// Readers (go-erofs, fsck.erofs 1.5) read 64 bytes at an inode and a
	// whole block at a shared xattr, whatever their size.
	end := lastInode + extendedInodeSize
	for _, s := range l.shared {
		end = max(end, s.off+blockSize)
	}
	l.blocks = max(next, align(end, blockSize)/blockSize)
	if l.blocks >= nullAddr {
		return layout{}, fmt.Errorf("image of %d blocks: erofs addresses at most %d (16 TiB)", l.blocks, nullAddr-1)
	}
	return l, nil
}

// shareXattrs returns the xattrs worth storing once for all the inodes
// that have them, sorted: those of several inodes whose entries take more
// room in all those inodes than once plus a 4-byte id in each.
func shareXattrs(inodes []*inode) []xattr {
	count := map[xattr]int{}
	for _, n := range inodes {
		for _, x := range n.xattrs {
			count[x]++
		}
	}
	var shared []xattr
	for x, c := range count {
		if size := xattrEntrySize(x); c > 1 && size <= blockSize && c*size > size+4*c {
			shared = append(shared, x)
		}
	}
	slices.SortFunc(shared, func(a, b xattr) int {
		return cmp.Or(cmp.Compare(a.name, b.name), cmp.Compare(a.value, b.value))
	})
	return shared
}

// arrange decides how n is stored: compact or extended inode, which xattrs
// are shared (those in shared), and its data layout: a block map when it
// has holes, else whole blocks with the tail after the inode when it fits
// in the inode's block (FLAT_INLINE), else blocks only (FLAT_PLAIN).
func (n *inode) arrange(shared map[xattr]int) error {
	n.placement = placement{}
	p := &n.placement
	for _, x := range n.xattrs {
		if len(x.value) > maxXattrValue {
			return fmt.Errorf("xattr %s is %d bytes, erofs allows %d", x.name, len(x.value), maxXattrValue)
		}
		if i, ok := shared[x]; ok {
			p.shared = append(p.shared, i)
		} else {
			p.inline = append(p.inline, x)
		}
	}
	p.xattrBody = xattrBodySize(len(p.shared), p.inline)
	if p.xattrBody > xattrHeaderSize+4*(0xffff-1) {
		return fmt.Errorf("xattrs take %d bytes, more than an erofs inode holds", p.xattrBody)
	}
	if n.mode&sIFMT == sIFDIR {
		p.dirCounts, n.size = dirBlocks(n.entries)
	}
	p.extended = n.uid > 0xffff || n.gid > 0xffff || n.nlink > 0xffff || n.size > 0xffffffff
	if n.data != nil {
		p.layout = layoutChunkBased
		p.chunkBits, p.chunks = chunkMap(n.data, blocksOf(n.size))
		return nil
	}
	if tail := int(n.size % blockSize); tail > 0 && p.headerSize()+tail <= blockSize {
		p.layout, p.tail, p.blocks = layoutFlatInline, tail, n.size/blockSize
		return nil
	}
	p.layout, p.blocks = layoutFlatPlain, blocksOf(n.size)
	return nil
}

// assignBlocks gives n's data blocks from next on and returns the next
// free block.
func (n *inode) assignBlocks(next int64) int64 {
	p := &n.placement
	if p.layout != layoutChunkBased {
		p.start = uint32(next)
		return next + p.blocks
	}
	for i, c := range p.chunks {
		if c != nullAddr {
			p.chunks[i] = uint32(next)
			next += p.chunkBlocks(i, blocksOf(n.size))
		}
	}
	return next
}

// chunkBlocks is the number of blocks of chunk i of a file of nblocks.
func (p *placement) chunkBlocks(i int, nblocks int64) int64 {
	return min(int64(1)<<p.chunkBits, nblocks-int64(i)<<p.chunkBits)
}

// blocksOf is the number of blocks size bytes take.
func blocksOf(size int64) int64 {
	return align(size, blockSize) / blockSize
}

// extent is a run of blocks, [start, end).
type extent struct {
	start, end int64
}

// chunkMap plans the block map of a file of nblocks whose data is in the
// sorted, disjoint extents data: the largest chunk (2^bits blocks, at most
// the file and maxChunkBits) whose boundaries every extent boundary is on,
// so that no hole block is stored, and the chunks, 0 for a chunk holding
// data and nullAddr for a hole.
func chunkMap(data []extent, nblocks int64) (chunkBits uint8, chunks []uint32) {
	k := min(bits.Len64(uint64(max(nblocks-1, 0))), maxChunkBits)
	for _, e := range data {
		for _, b := range []int64{e.start, e.end} {
			if b > 0 && b < nblocks {
				k = min(k, bits.TrailingZeros64(uint64(b)))
			}
		}
	}
	chunks = make([]uint32, (nblocks+1<<k-1)>>k)
	for i := range chunks {
		chunks[i] = nullAddr
	}
	for _, e := range data {
		for c := e.start >> k; c<<k < e.end; c++ {
			chunks[c] = 0
		}
	}
	return uint8(k), chunks
}

// slotsPerBlock is the number of inode slots in a block.
const slotsPerBlock = blockSize / slotSize

// metaSpace hands out room in the metadata blocks, from block 0 after the
// superblock on. A record up to a block long goes, best fit, into the
// fullest block it fits in, so that inodes with inline tails of all sizes
// fill the blocks; it never crosses a block boundary. A longer one starts a
// new block.
type metaSpace struct {
	blocks int64                  // blocks used so far
	free   [slotsPerBlock][]int64 // blocks by free slots (1 to slotsPerBlock-1)
}

// newMetaSpace returns the metadata of an empty image: block 0 holds the
// superblock.
func newMetaSpace() *metaSpace {
	m := &metaSpace{blocks: 1}
	m.addFree(0, (blockSize-superblockOffset-superblockSize)/slotSize)
	return m
}

// place returns the byte offset of room for size bytes.
func (m *metaSpace) place(size int) int64 {
	slots := align(size, slotSize) / slotSize
	for k := slots; k < slotsPerBlock; k++ {
		if n := len(m.free[k]); n > 0 {
			blk := m.free[k][n-1]
			m.free[k] = m.free[k][:n-1]
			m.addFree(blk, k-slots)
			return blk*blockSize + int64(blockSize-k*slotSize)
		}
	}
	start := m.blocks
	m.blocks += int64(align(slots, slotsPerBlock) / slotsPerBlock)
	m.addFree(m.blocks-1, (slotsPerBlock-slots%slotsPerBlock)%slotsPerBlock)
	return start * blockSize
}

// addFree records that blk has slots free.
func (m *metaSpace) addFree(blk int64, slots int) {
	if slots > 0 {
		m.free[slots] = append(m.free[slots], blk)
	}
}
