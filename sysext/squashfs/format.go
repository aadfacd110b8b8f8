package squashfs

import (
	"encoding/binary"
	"fmt"
	"io/fs"

	"github.com/sysext-bakery/bakery/internal/unixmode"
)

// On-disk constants of squashfs 4.0 (squashfs_fs.h).
const (
	magic            = 0x73717368
	superblockSize   = 96
	metadataSize     = 8192
	metaUncompressed = 0x8000
	dataUncompressed = 1 << 24
	invalidFragment  = 0xFFFFFFFF
	invalidXattr     = 0xFFFFFFFF
	invalidBlock     = 0xFFFFFFFFFFFFFFFF
	maxNameLen       = 256
	dirHeaderSize    = 12
	dirEntrySize     = 8
	dirIndexSize     = 12
	fragmentEntry    = 16
	xattrIDEntry     = 16
	maxDirRun        = 256
)

// Superblock flags.
const (
	flagUncompressedInodes    = 0x0001
	flagUncompressedData      = 0x0002
	flagUncompressedFragments = 0x0008
	flagAlwaysFragments       = 0x0020
	flagDuplicates            = 0x0040
	flagExportable            = 0x0080
	flagUncompressedXattrs    = 0x0100
	flagCompressorOptions     = 0x0400
	flagUncompressedIDs       = 0x0800
)

// Compressor ids.
const (
	compGzip = 1
	compLzma = 2
	compLzo  = 3
	compXz   = 4
	compLz4  = 5
	compZstd = 6
)

// Inode types; the extended type of a basic one is basic+7.
const (
	typeDir     = 1
	typeFile    = 2
	typeSymlink = 3
	typeBlock   = 4
	typeChar    = 5
	typeFifo    = 6
	typeSocket  = 7
	extOffset   = 7
)

// Xattr name prefixes as stored in the xattr table.
var xattrPrefixes = []string{"user.", "trusted.", "security."}

const xattrOOL = 0x100

// superblock is the 96-byte squashfs 4.0 superblock.
type superblock struct {
	Inodes         uint32
	MkfsTime       uint32
	BlockSize      uint32
	Fragments      uint32
	Compression    uint16
	BlockLog       uint16
	Flags          uint16
	IDs            uint16
	Major, Minor   uint16
	RootInode      uint64
	BytesUsed      uint64
	IDTable        uint64
	XattrIDTable   uint64
	InodeTable     uint64
	DirectoryTable uint64
	FragmentTable  uint64
	LookupTable    uint64
}

// marshal encodes the superblock in its on-disk form.
func (s *superblock) marshal() []byte {
	b := make([]byte, superblockSize)
	le := binary.LittleEndian
	le.PutUint32(b[0:], magic)
	le.PutUint32(b[4:], s.Inodes)
	le.PutUint32(b[8:], s.MkfsTime)
	le.PutUint32(b[12:], s.BlockSize)
	le.PutUint32(b[16:], s.Fragments)
	le.PutUint16(b[20:], s.Compression)
	le.PutUint16(b[22:], s.BlockLog)
	le.PutUint16(b[24:], s.Flags)
	le.PutUint16(b[26:], s.IDs)
	le.PutUint16(b[28:], s.Major)
	le.PutUint16(b[30:], s.Minor)
	le.PutUint64(b[32:], s.RootInode)
	le.PutUint64(b[40:], s.BytesUsed)
	le.PutUint64(b[48:], s.IDTable)
	le.PutUint64(b[56:], s.XattrIDTable)
	le.PutUint64(b[64:], s.InodeTable)
	le.PutUint64(b[72:], s.DirectoryTable)
	le.PutUint64(b[80:], s.FragmentTable)
	le.PutUint64(b[88:], s.LookupTable)
	return b
}

// parseSuperblock decodes and sanity-checks a superblock.
func parseSuperblock(b []byte) (*superblock, error) {
	if len(b) < superblockSize {
		return nil, fmt.Errorf("superblock: image shorter than %d bytes", superblockSize)
	}
	le := binary.LittleEndian
	if le.Uint32(b) != magic {
		return nil, fmt.Errorf("superblock: bad magic %#x, not a squashfs image", le.Uint32(b))
	}
	s := &superblock{
		Inodes:         le.Uint32(b[4:]),
		MkfsTime:       le.Uint32(b[8:]),
		BlockSize:      le.Uint32(b[12:]),
		Fragments:      le.Uint32(b[16:]),
		Compression:    le.Uint16(b[20:]),
		BlockLog:       le.Uint16(b[22:]),
		Flags:          le.Uint16(b[24:]),
		IDs:            le.Uint16(b[26:]),
		Major:          le.Uint16(b[28:]),
		Minor:          le.Uint16(b[30:]),
		RootInode:      le.Uint64(b[32:]),
		BytesUsed:      le.Uint64(b[40:]),
		IDTable:        le.Uint64(b[48:]),
		XattrIDTable:   le.Uint64(b[56:]),
		InodeTable:     le.Uint64(b[64:]),
		DirectoryTable: le.Uint64(b[72:]),
		FragmentTable:  le.Uint64(b[80:]),
		LookupTable:    le.Uint64(b[88:]),
	}
	if s.Major != 4 || s.Minor != 0 {
		return nil, fmt.Errorf("superblock: version %d.%d, only squashfs 4.0 is supported", s.Major, s.Minor)
	}
	if s.BlockSize < 4096 || s.BlockSize > 1<<20 || s.BlockSize&(s.BlockSize-1) != 0 || 1<<s.BlockLog != s.BlockSize {
		return nil, fmt.Errorf("superblock: block size %d (log %d) is not a power of two in 4 KiB..1 MiB", s.BlockSize, s.BlockLog)
	}
	if s.InodeTable >= s.DirectoryTable || s.DirectoryTable > s.BytesUsed || s.IDTable > s.BytesUsed {
		return nil, fmt.Errorf("superblock: table offsets out of order (inodes %d, directories %d, ids %d, size %d)",
			s.InodeTable, s.DirectoryTable, s.IDTable, s.BytesUsed)
	}
	if s.IDs == 0 {
		return nil, fmt.Errorf("superblock: id table is empty")
	}
	return s, nil
}

// unixMode converts an fs.FileMode to the permission and special bits
// squashfs stores (the file type is the inode type).
func unixMode(m fs.FileMode) uint16 { return uint16(unixmode.Bits(m)) }

// fileMode converts an inode type and stored mode bits to an fs.FileMode.
func fileMode(typ uint16, mode uint16) fs.FileMode {
	m := unixmode.FileMode(uint32(mode))
	switch basicType(typ) {
	case typeDir:
		m |= fs.ModeDir
	case typeSymlink:
		m |= fs.ModeSymlink
	case typeBlock:
		m |= fs.ModeDevice
	case typeChar:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case typeFifo:
		m |= fs.ModeNamedPipe
	case typeSocket:
		m |= fs.ModeSocket
	}
	return m
}

// basicType maps an extended inode type to its basic type.
func basicType(typ uint16) uint16 {
	if typ > extOffset {
		return typ - extOffset
	}
	return typ
}

// inodeType is the basic squashfs inode type of an fs.FileMode.
func inodeType(m fs.FileMode) (uint16, error) {
	switch m.Type() {
	case fs.ModeDir:
		return typeDir, nil
	case 0:
		return typeFile, nil
	case fs.ModeSymlink:
		return typeSymlink, nil
	case fs.ModeDevice:
		return typeBlock, nil
	case fs.ModeDevice | fs.ModeCharDevice:
		return typeChar, nil
	case fs.ModeNamedPipe:
		return typeFifo, nil
	case fs.ModeSocket:
		return typeSocket, nil
	}
	return 0, fmt.Errorf("file type %v has no squashfs inode type", m.Type())
}

// encodeDev packs a Linux major/minor pair the way squashfs stores rdev
// (the kernel's new_encode_dev, 32 bits).
func encodeDev(major, minor uint32) uint32 {
	return (minor & 0xff) | (major&0xfff)<<8 | (minor&^0xff)<<12
}

// decodeDev unpacks a squashfs rdev.
func decodeDev(d uint32) (major, minor uint32) {
	return (d & 0xfff00) >> 8, (d & 0xff) | (d>>12)&0xfff00
}

// xattrKey splits a full xattr name into its prefix id and the stored name.
func xattrKey(name string) (uint16, string, error) {
	for i, p := range xattrPrefixes {
		if len(name) > len(p) && name[:len(p)] == p {
			return uint16(i), name[len(p):], nil
		}
	}
	return 0, "", fmt.Errorf("xattr %q: squashfs stores only user., trusted. and security. xattrs; remove it from the tree", name)
}
