package ddi

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"unicode/utf16"

	"github.com/google/uuid"
)

// Bounds of the partition tables the reader accepts: more than any DDI
// needs, little enough that a hostile header cannot make it allocate
// much.
const (
	maxEntries     = 1024
	maxEntrySize   = 1024
	minHeaderSize  = 92
	gptRevision1_0 = 0x00010000
)

// Partition is one used entry of a GPT.
type Partition struct {
	// Number is the entry's number, from 1.
	Number int
	// Type and UUID are the partition's type and unique UUIDs.
	Type, UUID uuid.UUID
	// Label is the partition's name.
	Label string
	// Attributes are the entry's attribute bits.
	Attributes uint64
	// Offset and Size are where the partition is on the disk, in bytes.
	Offset, Size int64
}

// Table is a disk's partition table.
type Table struct {
	// DiskGUID is the disk's GUID.
	DiskGUID uuid.UUID
	// Partitions are the used entries, in entry order.
	Partitions []Partition
}

// Detect reports whether r starts like a GPT disk of 512-byte sectors:
// the protective MBR's signature and "EFI PART" at byte 512.
func Detect(r io.ReaderAt) bool {
	b := make([]byte, 2*Sector)
	if n, _ := r.ReadAt(b, 0); n < len(b) {
		return false
	}
	return b[510] == 0x55 && b[511] == 0xaa && string(b[Sector:Sector+8]) == "EFI PART"
}

// ReadTable reads the primary GPT of a disk of size bytes and checks it
// as a node must before trusting any offset in it: the header's and the
// entries' CRC-32s, the header's own position, entry counts and sizes
// within bounds, every partition inside the usable area of the disk,
// clear of the table and of every other partition. A damaged primary
// table is refused, not repaired from the backup.
func ReadTable(r io.ReaderAt, size int64) (*Table, error) {
	if size < 3*Sector {
		return nil, fmt.Errorf("gpt: a disk of %d bytes is too small for a partition table", size)
	}
	h := make([]byte, Sector)
	if _, err := r.ReadAt(h, Sector); err != nil {
		return nil, fmt.Errorf("gpt: read header: %w", err)
	}
	le := binary.LittleEndian
	hdrSize := le.Uint32(h[12:])
	switch {
	case string(h[0:8]) != "EFI PART":
		return nil, errors.New("gpt: no GPT header (\"EFI PART\" missing at byte 512; only 512-byte sectors are read)")
	case le.Uint32(h[8:]) != gptRevision1_0:
		return nil, fmt.Errorf("gpt: header revision %#x: only 1.0 is known", le.Uint32(h[8:]))
	case hdrSize < minHeaderSize || hdrSize > Sector:
		return nil, fmt.Errorf("gpt: header size %d: it must be %d to %d", hdrSize, minHeaderSize, Sector)
	}
	want := le.Uint32(h[16:])
	hc := bytes.Clone(h[:hdrSize])
	clear(hc[16:20])
	if crc32.ChecksumIEEE(hc) != want {
		return nil, errors.New("gpt: header CRC-32 mismatch: the table is damaged")
	}
	sectors := uint64(size / Sector)
	myLBA, firstUsable, lastUsable := le.Uint64(h[24:]), le.Uint64(h[40:]), le.Uint64(h[48:])
	entriesLBA, count, entrySize := le.Uint64(h[72:]), le.Uint32(h[80:]), le.Uint32(h[84:])
	switch {
	case myLBA != 1:
		return nil, fmt.Errorf("gpt: the primary header says it is at sector %d, not 1", myLBA)
	case count == 0 || count > maxEntries:
		return nil, fmt.Errorf("gpt: %d partition entries: at most %d are read", count, maxEntries)
	case entrySize < 128 || entrySize > maxEntrySize || entrySize%128 != 0:
		return nil, fmt.Errorf("gpt: partition entries of %d bytes: 128 to %d, a multiple of 128", entrySize, maxEntrySize)
	}
	entriesBytes := uint64(count) * uint64(entrySize)
	entriesEnd := entriesLBA + (entriesBytes+Sector-1)/Sector
	switch {
	case entriesLBA < 2 || entriesEnd > sectors:
		return nil, fmt.Errorf("gpt: the partition entries (sectors %d to %d) lie outside the disk's %d sectors", entriesLBA, entriesEnd, sectors)
	case firstUsable > lastUsable || lastUsable >= sectors:
		return nil, fmt.Errorf("gpt: usable sectors %d to %d do not fit the disk's %d sectors", firstUsable, lastUsable, sectors)
	case entriesLBA <= lastUsable && entriesEnd > firstUsable:
		return nil, fmt.Errorf("gpt: the partition entries (sectors %d to %d) overlap the usable sectors %d to %d", entriesLBA, entriesEnd-1, firstUsable, lastUsable)
	}
	entries := make([]byte, entriesBytes)
	if _, err := r.ReadAt(entries, int64(entriesLBA)*Sector); err != nil {
		return nil, fmt.Errorf("gpt: read partition entries: %w", err)
	}
	if crc32.ChecksumIEEE(entries) != le.Uint32(h[88:]) {
		return nil, errors.New("gpt: partition entries CRC-32 mismatch: the table is damaged")
	}
	t := &Table{DiskGUID: guid(h[56:72])}
	for i := range int(count) {
		e := entries[i*int(entrySize):][:128]
		typ := guid(e[0:16])
		if typ == uuid.Nil {
			continue
		}
		first, last := le.Uint64(e[32:]), le.Uint64(e[40:])
		if first < firstUsable || last > lastUsable || first > last {
			return nil, fmt.Errorf("gpt: partition %d (sectors %d to %d) lies outside the usable sectors %d to %d", i+1, first, last, firstUsable, lastUsable)
		}
		t.Partitions = append(t.Partitions, Partition{
			Number: i + 1, Type: typ, UUID: guid(e[16:32]), Label: label(e[56:128]), Attributes: le.Uint64(e[48:]),
			Offset: int64(first) * Sector, Size: int64(last-first+1) * Sector,
		})
	}
	byStart := slices.Clone(t.Partitions)
	slices.SortFunc(byStart, func(a, b Partition) int { return cmp.Compare(a.Offset, b.Offset) })
	for i := 1; i < len(byStart); i++ {
		if a, b := byStart[i-1], byStart[i]; a.Offset+a.Size > b.Offset {
			return nil, fmt.Errorf("gpt: partitions %d and %d overlap", a.Number, b.Number)
		}
	}
	return t, nil
}

// guid reads a GPT GUID (its first three fields little endian).
func guid(b []byte) uuid.UUID {
	var u uuid.UUID
	copy(u[:], b)
	slices.Reverse(u[0:4])
	slices.Reverse(u[4:6])
	slices.Reverse(u[6:8])
	return u
}

// label decodes a partition name: UTF-16LE up to the first NUL.
func label(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}
