// Package verity computes and checks dm-verity hash trees in the format
// `veritysetup format` writes: a version 1 superblock, sha256, 4096-byte
// data and hash blocks, a salt prepended to every hashed block, the levels
// of the tree stored top first after the superblock's block.
//
// The tree is bakery's own: containerd/go-dmverity hashes one block after
// the other, and bakery hashes on every core (the levels are split into
// runs of blocks that workers hash at once). The layout follows
// cryptsetup's lib/verity/verity_hash.c; the tests check every byte of the
// hash device against `veritysetup format` and have veritysetup verify
// ours.
//
// Reproducible by default: without a salt given, the salt is derived from
// the data (contentSalt: SHA-256 over its size and the CRC-32C of every
// MiB of it), so that equal data gives an equal tree on any machine and
// other data another salt. A salt only has to differ between images to
// stop precomputed attacks on many at once, it need not resist collisions;
// CRC-32C runs in hardware at many times SHA-256's speed, so the salt adds
// a fast parallel pass rather than a second SHA-256 of everything.
package verity

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"sync"

	"github.com/google/uuid"
	"golang.org/x/sys/unix"
)

// The tree's fixed parameters, as veritysetup's defaults.
const (
	// BlockSize is the size of the data blocks and of the hash blocks.
	BlockSize = 4096
	// DigestSize is the size of a sha256 digest.
	DigestSize = sha256.Size
	// MaxSaltSize is the longest salt the superblock holds.
	MaxSaltSize = 256
	// digestsPerBlock is how many digests a hash block holds (a power of
	// two: 4096/32).
	digestsPerBlock = BlockSize / DigestSize
	// maxLevels is veritysetup's bound on the tree's height.
	maxLevels = 63
	// superblockSize is the superblock's size; the hash tree starts at the
	// next block.
	superblockSize = 512
	// chunkBlocks is how many blocks a worker hashes at a time: 1 MiB of
	// data, two hash blocks of digests.
	chunkBlocks = 256
)

// Tree is a formatted hash tree: what a node needs besides the hash
// device to check the data.
type Tree struct {
	// RootHash is the digest of the top hash block (of the only data
	// block, for one-block data).
	RootHash []byte
	// Salt is the salt prepended to every hashed block.
	Salt []byte
	// UUID is the superblock's UUID.
	UUID [16]byte
	// DataBlocks is the number of 4096-byte data blocks covered.
	DataBlocks uint64
	// HashSize is the size of the hash device: the superblock's block and
	// every level.
	HashSize int64
}

// Options tune Format; the zero value is bakery's reproducible default.
type Options struct {
	// Salt is the salt; nil derives it from the data (see the package
	// doc). At most MaxSaltSize bytes.
	Salt []byte
	// UUID is the superblock's UUID; nil derives it from the salt.
	UUID *[16]byte
}

// levels returns where each level of the tree of dataBlocks blocks starts
// (in hash blocks from the start of the hash device, level 0 holding the
// digests of the data) and how many blocks it has, and the size of the
// hash device in blocks, as veritysetup lays it out: the superblock's
// block, then the levels from the top down.
func levels(dataBlocks uint64) (start, size []uint64, total uint64, err error) {
	const bits = 7 // log2(digestsPerBlock)
	n := 0
	for n*bits < 64 && (dataBlocks-1)>>(n*bits) != 0 {
		n++
	}
	if dataBlocks == 0 || n > maxLevels {
		return nil, nil, 0, fmt.Errorf("verity: %d data blocks: no tree of that size", dataBlocks)
	}
	start, size = make([]uint64, n), make([]uint64, n)
	total = 1 // the superblock's block
	for i := n - 1; i >= 0; i-- {
		shift := uint((i + 1) * bits)
		start[i] = total
		if shift >= 64 {
			size[i] = 1
		} else {
			size[i] = (dataBlocks + (1 << shift) - 1) >> shift
		}
		total += size[i]
	}
	if total > uint64(1<<62)/BlockSize {
		return nil, nil, 0, fmt.Errorf("verity: %d data blocks: the tree would be too large", dataBlocks)
	}
	return start, size, total, nil
}

// dataBlocks checks the size of the data and counts its blocks.
func dataBlocks(dataSize int64) (uint64, error) {
	if dataSize <= 0 || dataSize%BlockSize != 0 {
		return 0, fmt.Errorf("verity: data of %d bytes: it must be a positive multiple of %d bytes (pad the image to whole blocks)", dataSize, BlockSize)
	}
	return uint64(dataSize / BlockSize), nil
}

// Format computes the hash tree of the first dataSize bytes of data and
// writes the hash device (superblock and tree, Tree.HashSize bytes) to
// hash at offset 0. The data is hashed on every core; the tree is built in
// memory (1/127 of the data's size) and written once.
func Format(ctx context.Context, data io.ReaderAt, dataSize int64, hash io.WriterAt, opts Options) (*Tree, error) {
	blocks, err := dataBlocks(dataSize)
	if err != nil {
		return nil, err
	}
	data, unmap := mapFile(data, dataSize)
	defer unmap()
	salt := opts.Salt
	if salt == nil {
		if salt, err = contentSalt(ctx, data, blocks); err != nil {
			return nil, err
		}
	}
	if len(salt) > MaxSaltSize {
		return nil, fmt.Errorf("verity: salt of %d bytes: at most %d", len(salt), MaxSaltSize)
	}
	t := &Tree{Salt: bytes.Clone(salt), DataBlocks: blocks}
	if opts.UUID != nil {
		t.UUID = *opts.UUID
	} else {
		t.UUID = uuidFromSalt(salt)
	}
	dev, root, err := build(ctx, data, blocks, salt)
	if err != nil {
		return nil, err
	}
	t.RootHash, t.HashSize = root, int64(len(dev))
	copy(dev, t.superblock())
	if _, err := hash.WriteAt(dev, 0); err != nil {
		return nil, fmt.Errorf("verity: write hash device: %w", err)
	}
	return t, nil
}

// contentSalt is the default salt: SHA-256 over the number of data blocks
// and the CRC-32C of each run of chunkBlocks blocks, in order, the runs
// checksummed on every core.
func contentSalt(ctx context.Context, data io.ReaderAt, blocks uint64) ([]byte, error) {
	chunks := (blocks + chunkBlocks - 1) / chunkBlocks
	sums := make([]byte, 8+4*chunks)
	binary.LittleEndian.PutUint64(sums, blocks)
	table := crc32.MakeTable(crc32.Castagnoli)
	err := eachChunk(ctx, data, blocks, func(c uint64, b []byte) {
		binary.LittleEndian.PutUint32(sums[8+4*c:], crc32.Checksum(b, table))
	})
	if err != nil {
		return nil, err
	}
	salt := sha256.Sum256(sums)
	return salt[:], nil
}

// uuidFromSalt derives the superblock's UUID from the salt: a name-based
// (version 5) UUID.
func uuidFromSalt(salt []byte) [16]byte {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://github.com/sysext-bakery/bakery/verity/"+hex.EncodeToString(salt)))
}

// build computes the hash device (with its superblock's block left zero)
// of blocks data blocks and the root hash.
func build(ctx context.Context, data io.ReaderAt, blocks uint64, salt []byte) ([]byte, []byte, error) {
	start, size, total, err := levels(blocks)
	if err != nil {
		return nil, nil, err
	}
	dev := make([]byte, total*BlockSize)
	if len(start) == 0 { // one data block: the root is its digest
		root := make([]byte, DigestSize)
		return dev, root, hashBlocks(ctx, data, 1, root, salt)
	}
	src, srcBlocks := data, blocks
	for i := range start {
		lvl := dev[start[i]*BlockSize : (start[i]+size[i])*BlockSize]
		if err := hashBlocks(ctx, src, srcBlocks, lvl, salt); err != nil {
			return nil, nil, err
		}
		src, srcBlocks = memory(lvl), size[i]
	}
	top := start[len(start)-1] * BlockSize
	root := make([]byte, DigestSize)
	if err := hashBlocks(ctx, memory(dev[top:top+BlockSize]), 1, root, salt); err != nil {
		return nil, nil, err
	}
	return dev, root, nil
}

// hashBlocks writes the digests of the first n blocks of src into dst one
// after the other.
func hashBlocks(ctx context.Context, src io.ReaderAt, n uint64, dst []byte, salt []byte) error {
	return eachChunk(ctx, src, n, func(c uint64, b []byte) {
		h := sha256.New()
		for j := range uint64(len(b) / BlockSize) {
			h.Reset()
			h.Write(salt)
			h.Write(b[j*BlockSize : (j+1)*BlockSize])
			d := (c*chunkBlocks + j) * DigestSize
			h.Sum(dst[d : d : d+DigestSize])
		}
	})
}

// eachChunk reads the first n blocks of src in runs of chunkBlocks blocks
// (the last one shorter) and calls fn with each run's index and bytes, on
// every core at once; fn must not keep b. Memory is read in place. The
// first failure stops the reading: a failed read, or a fault on mapped
// memory (a mapped file truncated meanwhile), which is an error here
// rather than a crash.
func eachChunk(ctx context.Context, src io.ReaderAt, n uint64, fn func(c uint64, b []byte)) error {
	chunks := (n + chunkBlocks - 1) / chunkBlocks
	workers := min(uint64(runtime.GOMAXPROCS(0)), chunks)
	var (
		next     = make(chan uint64)
		failed   = make(chan struct{})
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	fail := func(err error) {
		errOnce.Do(func() {
			firstErr = err
			close(failed)
		})
	}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			debug.SetPanicOnFault(true)
			defer func() {
				if r := recover(); r != nil {
					fail(fmt.Errorf("verity: reading the data faulted (was the file truncated while it was read?): %v", r))
				}
			}()
			buf := make([]byte, chunkBlocks*BlockSize)
			for c := range next {
				first := c * chunkBlocks
				b := buf[:min(chunkBlocks, n-first)*BlockSize]
				if m, ok := src.(memory); ok && uint64(len(m)) >= (first*BlockSize+uint64(len(b))) {
					fn(c, m[first*BlockSize:][:len(b)])
					continue
				}
				if k, err := src.ReadAt(b, int64(first*BlockSize)); k < len(b) {
					fail(fmt.Errorf("verity: read blocks %d to %d: %w", first, first+uint64(len(b)/BlockSize)-1, cmp.Or(err, io.ErrUnexpectedEOF)))
					continue
				}
				fn(c, b)
			}
		}()
	}
	var err error
produce:
	for c := uint64(0); c < chunks; c++ {
		if err = ctx.Err(); err != nil {
			break
		}
		select {
		case next <- c:
		case <-failed:
			break produce
		}
	}
	close(next)
	wg.Wait()
	return cmp.Or(err, firstErr)
}

// memory is data in memory, which eachChunk hashes in place.
type memory []byte

// ReadAt implements io.ReaderAt.
func (m memory) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(m)) {
		return 0, io.EOF
	}
	n := copy(p, m[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// mapFile maps the first size bytes of r into memory, read-only, when r is
// a file or a section of one, so that the data is hashed straight from
// the page cache instead of being copied out of it twice; otherwise it
// returns r. The returned function unmaps.
func mapFile(r io.ReaderAt, size int64) (io.ReaderAt, func()) {
	file, off := r, int64(0)
	if sr, ok := r.(*io.SectionReader); ok && sr.Size() >= size {
		file, off, _ = sr.Outer()
	}
	// An *os.File, or a type embedding one (atomicfile.File).
	f, ok := file.(interface {
		Fd() uintptr
		Stat() (os.FileInfo, error)
	})
	if !ok || size <= 0 {
		return r, func() {}
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() || fi.Size() < off+size {
		return r, func() {}
	}
	page := int64(os.Getpagesize())
	start := off / page * page
	m, err := unix.Mmap(int(f.Fd()), start, int(off-start+size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return r, func() {}
	}
	return memory(m[off-start:]), func() { unix.Munmap(m) }
}

// superblock encodes the tree's superblock (512 bytes, little endian), as
// cryptsetup's struct verity_sb.
func (t *Tree) superblock() []byte {
	sb := make([]byte, superblockSize)
	copy(sb[0:8], "verity")
	binary.LittleEndian.PutUint32(sb[8:], 1)  // version
	binary.LittleEndian.PutUint32(sb[12:], 1) // hash type: normal (salt first)
	copy(sb[16:32], t.UUID[:])
	copy(sb[32:64], "sha256")
	binary.LittleEndian.PutUint32(sb[64:], BlockSize) // data block size
	binary.LittleEndian.PutUint32(sb[68:], BlockSize) // hash block size
	binary.LittleEndian.PutUint64(sb[72:], t.DataBlocks)
	binary.LittleEndian.PutUint16(sb[80:], uint16(len(t.Salt)))
	copy(sb[88:88+MaxSaltSize], t.Salt)
	return sb
}

// ReadSuperblock reads and checks the superblock at the start of a hash
// device: only what bakery writes and systemd-repart writes is accepted
// (version 1, sha256, 4096-byte blocks). The Tree has no RootHash: the
// root hash is not stored on the device.
func ReadSuperblock(hash io.ReaderAt) (*Tree, error) {
	sb := make([]byte, superblockSize)
	if _, err := hash.ReadAt(sb, 0); err != nil {
		return nil, fmt.Errorf("verity: read superblock: %w", err)
	}
	field := func(b []byte) string { return string(bytes.TrimRight(b, "\x00")) }
	switch {
	case string(sb[0:8]) != "verity\x00\x00":
		return nil, errors.New("verity: no superblock (magic \"verity\" missing)")
	case binary.LittleEndian.Uint32(sb[8:]) != 1:
		return nil, fmt.Errorf("verity: superblock version %d: only 1 is supported", binary.LittleEndian.Uint32(sb[8:]))
	case binary.LittleEndian.Uint32(sb[12:]) != 1:
		return nil, fmt.Errorf("verity: hash type %d: only 1 (salt first) is supported", binary.LittleEndian.Uint32(sb[12:]))
	case field(sb[32:64]) != "sha256":
		return nil, fmt.Errorf("verity: hash algorithm %q: only sha256 is supported", field(sb[32:64]))
	case binary.LittleEndian.Uint32(sb[64:]) != BlockSize || binary.LittleEndian.Uint32(sb[68:]) != BlockSize:
		return nil, fmt.Errorf("verity: block sizes %d and %d: only %d is supported", binary.LittleEndian.Uint32(sb[64:]), binary.LittleEndian.Uint32(sb[68:]), BlockSize)
	case binary.LittleEndian.Uint16(sb[80:]) > MaxSaltSize:
		return nil, fmt.Errorf("verity: salt of %d bytes: at most %d", binary.LittleEndian.Uint16(sb[80:]), MaxSaltSize)
	}
	t := &Tree{DataBlocks: binary.LittleEndian.Uint64(sb[72:])}
	copy(t.UUID[:], sb[16:32])
	t.Salt = bytes.Clone(sb[88 : 88+int(binary.LittleEndian.Uint16(sb[80:]))])
	_, _, total, err := levels(t.DataBlocks)
	if err != nil {
		return nil, err
	}
	t.HashSize = int64(total) * BlockSize
	return t, nil
}

// ErrMismatch is returned by Verify when the data, the tree or the root
// hash do not agree.
var ErrMismatch = errors.New("verity: hash tree mismatch")

// Verify checks data against the hash device and the root hash in
// userspace, as `veritysetup verify` does, for a node whose kernel cannot
// (no dm-verity): it reads the superblock, recomputes the whole tree from
// the data (dataSize bytes are available, at least the blocks the
// superblock covers) and compares every byte of the stored tree, its zero
// padding included, and the root hash. It returns the superblock's tree;
// a mismatch wraps ErrMismatch. hashSize is the size of the hash device.
func Verify(ctx context.Context, data io.ReaderAt, dataSize int64, hash io.ReaderAt, hashSize int64, rootHash []byte) (*Tree, error) {
	t, err := ReadSuperblock(hash)
	if err != nil {
		return nil, err
	}
	if t.DataBlocks > uint64(dataSize)/BlockSize {
		return nil, fmt.Errorf("verity: the superblock covers %d blocks, but the data has only %d bytes", t.DataBlocks, dataSize)
	}
	if t.HashSize > hashSize {
		return nil, fmt.Errorf("verity: the tree of %d data blocks needs %d bytes, but the hash device has only %d", t.DataBlocks, t.HashSize, hashSize)
	}
	data, unmap := mapFile(data, dataSize)
	defer unmap()
	if len(rootHash) != DigestSize {
		return nil, fmt.Errorf("verity: root hash of %d bytes: sha256 has %d", len(rootHash), DigestSize)
	}
	dev, root, err := build(ctx, data, t.DataBlocks, t.Salt)
	if err != nil {
		return nil, err
	}
	stored := make([]byte, len(dev)-BlockSize)
	if n, err := hash.ReadAt(stored, BlockSize); n < len(stored) {
		return nil, fmt.Errorf("verity: read hash tree: %w", cmp.Or(err, io.ErrUnexpectedEOF))
	}
	if subtle.ConstantTimeCompare(root, rootHash) != 1 {
		return nil, fmt.Errorf("%w: the data's root hash is %x, not %x", ErrMismatch, root, rootHash)
	}
	if !bytes.Equal(stored, dev[BlockSize:]) {
		return nil, fmt.Errorf("%w: the stored tree differs from the data's", ErrMismatch)
	}
	t.RootHash = root
	return t, nil
}
