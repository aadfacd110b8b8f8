package erofs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strings"

	"github.com/sysext-bakery/bakery/sysext"
)

// On-disk erofs layout used by finish (see the kernel's erofs_fs.h).
const (
	superblockOffset = 1024
	superblockSize   = 128
	sbMagic          = 0xe0f5e1e2
	sbFeatureSbCsum  = 0x1 // feature_compat: superblock checksum
	sbOffBlkSzBits   = 12
	sbOffRootNid     = 14
	sbOffInos        = 16
	sbOffBlocks      = 36
	sbOffMetaBlkAddr = 40
	sbOffUUID        = 48

	direntSize    = 12 // nid u64, nameoff u16, file_type u8, reserved u8
	direntOffType = 10

	layoutFlatPlain  = 0
	layoutFlatInline = 2
)

// finish completes an image go-erofs has written: each hard link's directory
// entry is pointed at its first name's inode, the superblock's inode count
// loses the inodes so left unreferenced, the UUID is set to sysext.ErofsUUID, and
// when the image ends with an inode, a zero block is appended: readers
// (fsck.erofs 1.5, go-erofs) read an inode's xattr header or 64 bytes
// whatever the inode's size, and fail at the end of the image.
func finish(img interface {
	io.ReaderAt
	io.WriterAt
}, links []hardLink) error {
	sbuf := make([]byte, superblockSize)
	if _, err := img.ReadAt(sbuf, superblockOffset); err != nil {
		return fmt.Errorf("read superblock: %w", err)
	}
	sb, err := parseSuperblock(sbuf)
	if err != nil {
		return err
	}
	for _, l := range links {
		firstNid, firstType, _, err := sb.resolve(img, l.first)
		if err != nil {
			return fmt.Errorf("hard link %s: first name %s: %w", l.name, l.first, err)
		}
		_, _, at, err := sb.resolve(img, l.name)
		if err != nil {
			return fmt.Errorf("hard link %s: %w", l.name, err)
		}
		var nid [8]byte
		binary.LittleEndian.PutUint64(nid[:], firstNid)
		if _, err := img.WriteAt(nid[:], at); err != nil {
			return fmt.Errorf("hard link %s: write directory entry: %w", l.name, err)
		}
		if _, err := img.WriteAt([]byte{firstType}, at+direntOffType); err != nil {
			return fmt.Errorf("hard link %s: write directory entry: %w", l.name, err)
		}
	}
	if err := padEnd(img, sbuf, sb.blockSize); err != nil {
		return err
	}
	inos := binary.LittleEndian.Uint64(sbuf[sbOffInos:])
	binary.LittleEndian.PutUint64(sbuf[sbOffInos:], inos-uint64(len(links)))
	copy(sbuf[sbOffUUID:], sysext.ErofsUUID[:])
	if _, err := img.WriteAt(sbuf, superblockOffset); err != nil {
		return fmt.Errorf("write superblock: %w", err)
	}
	return nil
}

// padEnd appends a zero block to the image when its last 32 bytes (the
// last inode slot) are not zero, and counts it in the superblock sbuf.
func padEnd(img interface {
	io.ReaderAt
	io.WriterAt
}, sbuf []byte, blockSize int64) error {
	blocks := binary.LittleEndian.Uint32(sbuf[sbOffBlocks:])
	end := int64(blocks) * blockSize
	last := make([]byte, 32)
	if _, err := img.ReadAt(last, end-32); err != nil {
		return fmt.Errorf("read the image's last block: %w", err)
	}
	if bytes.Count(last, []byte{0}) == len(last) {
		return nil
	}
	if _, err := img.WriteAt(make([]byte, blockSize), end); err != nil {
		return fmt.Errorf("pad the image: %w", err)
	}
	binary.LittleEndian.PutUint32(sbuf[sbOffBlocks:], blocks+1)
	return nil
}

// superblock holds what finish needs of an erofs superblock.
type superblock struct {
	blockSize int64
	rootNid   uint64
	metaStart int64 // byte offset of nid 0
}

// parseSuperblock reads the superblock bytes b (at offset 1024 on disk).
func parseSuperblock(b []byte) (superblock, error) {
	if binary.LittleEndian.Uint32(b) != sbMagic {
		return superblock{}, fmt.Errorf("superblock: no erofs magic")
	}
	if binary.LittleEndian.Uint32(b[8:])&sbFeatureSbCsum != 0 {
		return superblock{}, fmt.Errorf("superblock: checksummed superblocks are not supported")
	}
	bits := b[sbOffBlkSzBits]
	if bits < 9 || bits > 16 {
		return superblock{}, fmt.Errorf("superblock: block size 2^%d out of range", bits)
	}
	bs := int64(1) << bits
	return superblock{
		blockSize: bs,
		rootNid:   uint64(binary.LittleEndian.Uint16(b[sbOffRootNid:])),
		metaStart: int64(binary.LittleEndian.Uint32(b[sbOffMetaBlkAddr:])) * bs,
	}, nil
}

// resolve looks p (slash-separated, relative to the root, no symlinks
// followed) up and returns its nid and file type and the image offset of its
// directory entry.
func (sb superblock) resolve(r io.ReaderAt, p string) (nid uint64, ftype uint8, at int64, err error) {
	nid = sb.rootNid
	for _, name := range strings.Split(p, "/") {
		if nid, ftype, at, err = sb.lookup(r, nid, name); err != nil {
			return 0, 0, 0, err
		}
	}
	return nid, ftype, at, nil
}

// lookup finds name in the directory dir.
func (sb superblock) lookup(r io.ReaderAt, dir uint64, name string) (nid uint64, ftype uint8, at int64, err error) {
	ino, err := sb.inode(r, dir)
	if err != nil {
		return 0, 0, 0, err
	}
	nblocks := (ino.size + sb.blockSize - 1) / sb.blockSize
	for i := int64(0); i < nblocks; i++ {
		off := ino.dataStart + i*sb.blockSize
		if ino.layout == layoutFlatInline && i == nblocks-1 {
			off = ino.inlineStart
		}
		blk := make([]byte, min(sb.blockSize, ino.size-i*sb.blockSize))
		if _, err := r.ReadAt(blk, off); err != nil {
			return 0, 0, 0, fmt.Errorf("directory nid %d: read block %d: %w", dir, i, err)
		}
		if j, ok := findDirent(blk, name); ok {
			e := blk[j*direntSize:]
			return binary.LittleEndian.Uint64(e), e[direntOffType], off + int64(j*direntSize), nil
		}
	}
	return 0, 0, 0, fmt.Errorf("%s: not in directory nid %d", name, dir)
}

// findDirent returns the index of the entry called name in the directory
// block blk.
func findDirent(blk []byte, name string) (int, bool) {
	if len(blk) < direntSize {
		return 0, false
	}
	count := int(binary.LittleEndian.Uint16(blk[8:])) / direntSize
	if count*direntSize > len(blk) {
		return 0, false
	}
	for j := 0; j < count; j++ {
		start := int(binary.LittleEndian.Uint16(blk[j*direntSize+8:]))
		end := len(blk)
		if j+1 < count {
			end = int(binary.LittleEndian.Uint16(blk[(j+1)*direntSize+8:]))
		}
		if start > end || end > len(blk) {
			return 0, false
		}
		n := blk[start:end]
		if j+1 == count {
			if k := bytes.IndexByte(n, 0); k >= 0 {
				n = n[:k]
			}
		}
		if string(n) == name {
			return j, true
		}
	}
	return 0, false
}

// inode is what lookup needs of a directory inode.
type inode struct {
	layout      uint16
	size        int64
	dataStart   int64 // byte offset of block 0 of a flat layout
	inlineStart int64 // byte offset of the inline tail
}

// inode reads the inode nid.
func (sb superblock) inode(r io.ReaderAt, nid uint64) (inode, error) {
	addr := sb.metaStart + int64(nid)*32
	var b [64]byte
	if _, err := r.ReadAt(b[:], addr); err != nil {
		return inode{}, fmt.Errorf("read inode nid %d: %w", nid, err)
	}
	format := binary.LittleEndian.Uint16(b[0:])
	ino := inode{layout: format >> 1 & 7}
	coreSize := int64(32)
	if format&1 == 0 {
		ino.size = int64(binary.LittleEndian.Uint32(b[8:]))
	} else {
		coreSize = 64
		ino.size = int64(binary.LittleEndian.Uint64(b[8:]))
	}
	if ino.layout != layoutFlatPlain && ino.layout != layoutFlatInline {
		return inode{}, fmt.Errorf("inode nid %d: data layout %d is not flat", nid, ino.layout)
	}
	var xattrSize int64
	if icount := int64(binary.LittleEndian.Uint16(b[2:])); icount > 0 {
		xattrSize = 12 + (icount-1)*4
	}
	ino.dataStart = int64(binary.LittleEndian.Uint32(b[16:])) * sb.blockSize
	ino.inlineStart = addr + coreSize + xattrSize
	return ino, nil
}
