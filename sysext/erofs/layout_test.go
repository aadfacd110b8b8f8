package erofs

import (
	"slices"
	"strings"
	"testing"
)

func TestChunkMap(t *testing.T) {
	const x = nullAddr
	tests := []struct {
		name    string
		data    []extent
		nblocks int64
		bits    uint8
		chunks  []uint32
	}{
		{"data then hole", []extent{{0, 1}}, 4, 0, []uint32{0, x, x, x}},
		{"hole then data", []extent{{3, 4}}, 4, 0, []uint32{x, x, x, 0}},
		{"aligned holes", []extent{{0, 256}, {512, 768}}, 1024, 8, []uint32{0, x, 0, x}},
		{"data to a partial last chunk", []extent{{0, 2}, {4, 5}}, 5, 1, []uint32{0, x, 0}},
		{"all hole", []extent{}, 257, 9, []uint32{x}},
		{"all hole, one block", []extent{}, 1, 0, []uint32{x}},
		{"capped chunk", []extent{{0, 1 << 20}}, 1 << 21, maxChunkBits, []uint32{0, 0, x, x}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bits, chunks := chunkMap(tt.data, tt.nblocks)
			if bits != tt.bits || !slices.Equal(chunks, tt.chunks) {
				t.Errorf("chunkMap = %d, %v; want %d, %v", bits, chunks, tt.bits, tt.chunks)
			}
		})
	}
}

func TestMetaSpace(t *testing.T) {
	m := newMetaSpace()
	steps := []struct {
		size int
		want int64
	}{
		{32, 1152},                // block 0, after the superblock: nid 36
		{blockSize, blockSize},    // a whole block of its own
		{2000, 1184},              // still fits block 0
		{1000, 2 * blockSize},     // block 0 has 896 bytes left: a new block
		{900, 2*blockSize + 1024}, // block 2 is the only one it fits
		{896, 3200},               // fills block 0 exactly: best fit
		{5000, 3 * blockSize},     // longer than a block: starts one, takes two
		{3000, 4*blockSize + 928}, // after the long one's 5024 bytes
		{32, 5*blockSize - 160},   // block 4 (160 bytes left) rather than block 2 (2144)
	}
	for i, s := range steps {
		if got := m.place(s.size); got != s.want {
			t.Fatalf("step %d: place(%d) = %d, want %d", i, s.size, got, s.want)
		}
	}
	if m.blocks != 5 {
		t.Errorf("blocks = %d, want 5", m.blocks)
	}
}

func TestArrange(t *testing.T) {
	big := strings.Repeat("v", maxXattrValue+1)
	tests := []struct {
		name     string
		n        inode
		layout   uint16
		extended bool
		tail     int
		blocks   int64
		err      string
	}{
		{"empty file", inode{mode: sIFREG}, layoutFlatPlain, false, 0, 0, ""},
		{"one byte", inode{mode: sIFREG, size: 1}, layoutFlatInline, false, 1, 0, ""},
		{"tail fills the block", inode{mode: sIFREG, size: 2*blockSize - 32}, layoutFlatInline, false, blockSize - 32, 1, ""},
		{"tail one byte over", inode{mode: sIFREG, size: 2*blockSize - 31}, layoutFlatPlain, false, 0, 2, ""},
		{"block size - 1", inode{mode: sIFREG, size: blockSize - 1}, layoutFlatPlain, false, 0, 1, ""},
		{"whole blocks", inode{mode: sIFREG, size: 3 * blockSize}, layoutFlatPlain, false, 0, 3, ""},
		{"extended, tail fits", inode{mode: sIFREG, size: 2*blockSize - 64, uid: 70000}, layoutFlatInline, true, blockSize - 64, 1, ""},
		{"extended, tail over", inode{mode: sIFREG, size: 2*blockSize - 63, gid: 70000}, layoutFlatPlain, true, 0, 2, ""},
		{"many links", inode{mode: sIFREG, size: 10, nlink: 70000}, layoutFlatInline, true, 10, 0, ""},
		{"over 4 GiB", inode{mode: sIFREG, size: 5 << 30}, layoutFlatPlain, true, 0, 5 << 18, ""},
		{"xattrs take the room", inode{mode: sIFREG, size: blockSize + 4000, xattrs: []xattr{{"user.a", strings.Repeat("v", 100)}}}, layoutFlatPlain, false, 0, 2, ""},
		{"holes", inode{mode: sIFREG, size: 3 * blockSize, data: []extent{{1, 2}}}, layoutChunkBased, false, 0, 0, ""},
		{"symlink", inode{mode: sIFLNK, size: 10, target: "0123456789"}, layoutFlatInline, false, 10, 0, ""},
		{"device", inode{mode: sIFCHR, rdev: 0x103}, layoutFlatPlain, false, 0, 0, ""},
		{"empty directory", inode{mode: sIFDIR, entries: []dirent{{name: "."}, {name: ".."}}}, layoutFlatInline, false, 27, 0, ""},
		{"xattr value too long", inode{mode: sIFREG, xattrs: []xattr{{"user.a", big}}}, 0, false, 0, 0, "erofs allows 65535"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := tt.n
			err := n.arrange(nil)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("arrange = %v, want error containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p := n.placement
			if p.layout != tt.layout || p.extended != tt.extended || p.tail != tt.tail || p.blocks != tt.blocks {
				t.Errorf("arrange: layout %d, extended %v, tail %d, blocks %d; want %d, %v, %d, %d",
					p.layout, p.extended, p.tail, p.blocks, tt.layout, tt.extended, tt.tail, tt.blocks)
			}
		})
	}
}

func TestShareXattrs(t *testing.T) {
	with := func(xs ...xattr) *inode { return &inode{xattrs: xs} }
	small := xattr{"user.a", "1"}      // an 8-byte entry
	larger := xattr{"user.a", "12345"} // a 12-byte entry
	label := xattr{"security.selinux", "system_u:object_r:usr_t:s0"}
	tests := []struct {
		name   string
		inodes []*inode
		want   []xattr
	}{
		{"one inode", []*inode{with(label)}, nil},
		{"two inodes, 8-byte entry", []*inode{with(small), with(small)}, nil},
		{"three inodes, 8-byte entry", []*inode{with(small), with(small), with(small)}, []xattr{small}},
		{"two inodes, 12-byte entry", []*inode{with(larger), with(larger)}, []xattr{larger}},
		{"different values", []*inode{with(small), with(larger)}, nil},
		{"sorted", []*inode{with(small, label), with(small, label), with(small)}, []xattr{label, small}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := shareXattrs(tt.inodes); !slices.Equal(got, tt.want) {
				t.Errorf("shareXattrs = %v, want %v", got, tt.want)
			}
		})
	}
}

// dirInode returns a directory (its parent, nil for the root) holding
// entries.
func dirInode(parent *inode, entries ...dirent) *inode {
	d := &inode{mode: sIFDIR | 0o755, nlink: 2}
	if parent == nil {
		parent = d
	}
	d.entries = append([]dirent{{".", d}, {"..", parent}}, entries...)
	return d
}

func TestPlan(t *testing.T) {
	label := []xattr{{"security.selinux", "system_u:object_r:usr_t:s0"}}
	tests := []struct {
		name   string
		tree   func() []*inode
		blocks int64
		meta   int64
		shared int
		starts []uint32 // first data block of each inode (flat layouts)
	}{
		{"inline only", func() []*inode {
			f := &inode{mode: sIFREG | 0o644, nlink: 1, size: 10}
			return []*inode{dirInode(nil, dirent{"f", f}), f}
		}, 1, 1, 0, []uint32{1, 1}},
		{"data blocks after the metadata", func() []*inode {
			a := &inode{mode: sIFREG | 0o644, nlink: 1, size: 2*blockSize + 5}
			b := &inode{mode: sIFREG | 0o644, nlink: 1, size: blockSize - 1}
			return []*inode{dirInode(nil, dirent{"a", a}, dirent{"b", b}), a, b}
		}, 4, 1, 0, []uint32{1, 1, 3}},
		{"shared xattr, read a block at a time", func() []*inode {
			a := &inode{mode: sIFREG | 0o644, nlink: 1, xattrs: label}
			b := &inode{mode: sIFREG | 0o644, nlink: 1, xattrs: label}
			return []*inode{dirInode(nil, dirent{"a", a}, dirent{"b", b}), a, b}
		}, 2, 1, 1, []uint32{1, 1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inodes := tt.tree()
			l, err := plan(inodes)
			if err != nil {
				t.Fatal(err)
			}
			if l.blocks != tt.blocks || l.metaBlocks != tt.meta || len(l.shared) != tt.shared {
				t.Errorf("plan: %d blocks, %d metadata, %d shared xattrs; want %d, %d, %d",
					l.blocks, l.metaBlocks, len(l.shared), tt.blocks, tt.meta, tt.shared)
			}
			if root := inodes[0].nid; root != (superblockOffset+superblockSize)/slotSize {
				t.Errorf("root nid %d, want right after the superblock", root)
			}
			var starts []uint32
			for _, n := range inodes {
				starts = append(starts, n.start)
			}
			if !slices.Equal(starts, tt.starts) {
				t.Errorf("start blocks %v, want %v", starts, tt.starts)
			}
			seen := map[uint64]int{}
			for i, n := range inodes {
				if other, ok := seen[n.nid]; ok {
					t.Errorf("inodes %d and %d share nid %d", i, other, n.nid)
				}
				seen[n.nid] = i
			}
		})
	}
}

// TestPlanChunks checks the blocks a file with holes gets: one run per
// chunk holding data, none for its holes.
func TestPlanChunks(t *testing.T) {
	f := &inode{mode: sIFREG | 0o644, nlink: 1, size: 10*blockSize + 1, data: []extent{{0, 2}, {6, 8}, {10, 11}}}
	g := &inode{mode: sIFREG | 0o644, nlink: 1, size: 2 * blockSize}
	inodes := []*inode{dirInode(nil, dirent{"f", f}, dirent{"g", g}), f, g}
	l, err := plan(inodes)
	if err != nil {
		t.Fatal(err)
	}
	const x = nullAddr
	if want := []uint32{1, x, x, 3, x, 5}; f.chunkBits != 1 || !slices.Equal(f.chunks, want) {
		t.Errorf("f: chunk bits %d, chunks %v; want 1, %v", f.chunkBits, f.chunks, want)
	}
	if g.start != 6 || l.blocks != 8 || l.incompat != featureChunkedFile {
		t.Errorf("g starts at %d, %d blocks, incompat %#x; want 6, 8, %#x", g.start, l.blocks, l.incompat, featureChunkedFile)
	}
	if want := f.headerSize() + 6*blockMapEntrySize; f.recordSize() != want {
		t.Errorf("f's record is %d bytes, want %d", f.recordSize(), want)
	}
}
