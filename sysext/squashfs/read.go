package squashfs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
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
