package erofs

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"strings"
	"testing"

	"github.com/sysext-bakery/bakery/sysext"
)

// unhex decodes hex with spaces.
func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSuperblockEncode(t *testing.T) {
	b := make([]byte, superblockSize)
	superblock{rootNid: 36, inodes: 7, epoch: 1700000000, blocks: 27, incompat: featureChunkedFile}.encode(b)
	le := binary.LittleEndian
	checks := []struct {
		name      string
		got, want uint64
	}{
		{"magic", uint64(le.Uint32(b)), sbMagic},
		{"feature_compat", uint64(le.Uint32(b[8:])), 0},
		{"blkszbits", uint64(b[12]), blockBits},
		{"root nid", uint64(le.Uint16(b[sbOffRootNid:])), 36},
		{"inodes", le.Uint64(b[16:]), 7},
		{"build time", le.Uint64(b[24:]), 1700000000},
		{"blocks", uint64(le.Uint32(b[36:])), 27},
		{"meta_blkaddr", uint64(le.Uint32(b[40:])), 0},
		{"xattr_blkaddr", uint64(le.Uint32(b[44:])), 0},
		{"feature_incompat", uint64(le.Uint32(b[80:])), featureChunkedFile},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if !bytes.Equal(b[sbOffUUID:sbOffUUID+16], sysext.ErofsUUID[:]) {
		t.Errorf("UUID = %x", b[sbOffUUID:sbOffUUID+16])
	}
}

func TestInodeCoreEncode(t *testing.T) {
	tests := []struct {
		name string
		core inodeCore
		want string
	}{
		{"compact inline file", inodeCore{layout: layoutFlatInline, xattrCount: 3, mode: 0o100644, nlink: 2, size: 5000, u: nullAddr, ino: 9, uid: 1000, gid: 100, mtime: 77},
			"0400 0300 a481 0200 88130000 00000000 ffffffff 09000000 e803 6400 00000000"},
		{"extended plain file", inodeCore{extended: true, layout: layoutFlatPlain, mode: 0o100755, nlink: 70000, size: 1 << 33, u: 12, ino: 1, uid: 100000, gid: 200000, mtime: 1700000000},
			"0100 0000 ed81 0000 0000000002000000 0c000000 01000000 a0860100 400d0300 00f1536500000000 00000000 70110100 00000000000000000000000000000000"},
		{"compact chunk-based", inodeCore{layout: layoutChunkBased, mode: 0o100600, nlink: 1, size: 1 << 20, u: 8},
			"0800 0000 8081 0100 00001000 00000000 08000000 00000000 0000 0000 00000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := unhex(t, tt.want)
			got := make([]byte, coreSize(tt.core.extended))
			tt.core.encode(got)
			if !bytes.Equal(got, want) {
				t.Errorf("encode =\n%x\nwant\n%x", got, want)
			}
		})
	}
}

func TestXattrBody(t *testing.T) {
	tests := []struct {
		name   string
		shared []uint32
		inline []xattr
		count  uint16
		want   string
	}{
		{"none", nil, nil, 0, ""},
		{"inline", nil, []xattr{{"user.a", "1"}, {"security.capability", "xy"}}, 7,
			"00000000 00 00000000000000" +
				"01 01 0100 61 31 0000" +
				"0a 06 0200 6361706162696c697479 7879"},
		{"shared and inline", []uint32{300, 301}, []xattr{{"trusted.t", ""}}, 5,
			"00000000 02 00000000000000 2c010000 2d010000" +
				"01 04 0000 74 000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := unhex(t, tt.want)
			size := xattrBodySize(len(tt.shared), tt.inline)
			if size != len(want) || xattrCount(size) != tt.count {
				t.Fatalf("xattrBodySize = %d, xattrCount %d; want %d, %d", size, xattrCount(size), len(want), tt.count)
			}
			got := make([]byte, size)
			if size > 0 {
				encodeXattrBody(got, tt.shared, tt.inline)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("encodeXattrBody =\n%x\nwant\n%x", got, want)
			}
		})
	}
}

func TestSplitXattrName(t *testing.T) {
	tests := []struct {
		name   string
		index  uint8
		suffix string
		ok     bool
	}{
		{"user.mime", 1, "mime", true},
		{"trusted.overlay.opaque", 4, "overlay.opaque", true},
		{"security.selinux", 6, "selinux", true},
		{"security.", 6, "", true},
		{"system.posix_acl_access", 0, "", false},
		{"user", 0, "", false},
	}
	for _, tt := range tests {
		index, suffix, ok := splitXattrName(tt.name)
		if index != tt.index || suffix != tt.suffix || ok != tt.ok {
			t.Errorf("splitXattrName(%q) = %d, %q, %v; want %d, %q, %v", tt.name, index, suffix, ok, tt.index, tt.suffix, tt.ok)
		}
		if copied := copiedXattr(tt.name); copied != (tt.ok && tt.suffix != "") {
			t.Errorf("copiedXattr(%q) = %v", tt.name, copied)
		}
	}
}

func TestFileType(t *testing.T) {
	tests := []struct {
		mode uint16
		want uint8
	}{
		{sIFREG | 0o644, ftRegular},
		{sIFDIR | 0o755, ftDir},
		{sIFCHR, ftCharDev},
		{sIFBLK, ftBlockDev},
		{sIFIFO, ftFifo},
		{sIFSOCK, ftSocket},
		{sIFLNK | 0o777, ftSymlink},
		{0o644, 0},
	}
	for _, tt := range tests {
		if got := fileType(tt.mode); got != tt.want {
			t.Errorf("fileType(%#o) = %d, want %d", tt.mode, got, tt.want)
		}
	}
}

// names returns n entries named with l-byte names.
func names(n, l int) []dirent {
	entries := make([]dirent, n)
	for i := range entries {
		entries[i].name = strings.Repeat(string(rune('a'+i%26)), l)
	}
	return entries
}

func TestDirBlocks(t *testing.T) {
	tests := []struct {
		name    string
		entries []dirent
		counts  []int
		size    int64
	}{
		{"empty directory", []dirent{{name: "."}, {name: ".."}}, []int{2}, 2*direntSize + 3},
		{"one full block", names(16, 244), []int{16}, blockSize},
		{"one entry over", names(17, 244), []int{16, 1}, blockSize + 256},
		{"three blocks", names(40, 244), []int{16, 16, 8}, 2*blockSize + 8*256},
		{"long names", names(20, 255), []int{15, 5}, blockSize + 5*267},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			counts, size := dirBlocks(tt.entries)
			if !slices.Equal(counts, tt.counts) || size != tt.size {
				t.Errorf("dirBlocks = %v, %d; want %v, %d", counts, size, tt.counts, tt.size)
			}
		})
	}
}

func TestEncodeDir(t *testing.T) {
	dir := &inode{mode: sIFDIR | 0o755, placement: placement{nid: 36}}
	file := &inode{mode: sIFREG | 0o644, placement: placement{nid: 40}}
	link := &inode{mode: sIFLNK | 0o777, placement: placement{nid: 1 << 40}}
	entries := []dirent{{".", dir}, {"..", dir}, {"a", file}, {"ln", link}}
	counts, size := dirBlocks(entries)
	got := make([]byte, size)
	encodeDir(got, entries, counts)
	want := unhex(t, "2400000000000000 3000 02 00"+
		"2400000000000000 3100 02 00"+
		"2800000000000000 3300 01 00"+
		"0000000000010000 3400 07 00"+
		"2e 2e2e 61 6c6e")
	if !bytes.Equal(got, want) {
		t.Errorf("encodeDir =\n%x\nwant\n%x", got, want)
	}

	// Two blocks: the first padded with zeros, the second starting over.
	entries = append([]dirent{{".", dir}, {"..", dir}}, names(16, 244)...)
	for i := range entries[2:] {
		entries[2+i].ino = file
	}
	counts, size = dirBlocks(entries)
	got = make([]byte, size)
	encodeDir(got, entries, counts)
	if !slices.Equal(counts, []int{17, 1}) {
		t.Fatalf("counts = %v, want [17 1]", counts)
	}
	if nameoff := binary.LittleEndian.Uint16(got[blockSize+8:]); nameoff != direntSize {
		t.Errorf("second block: first name offset %d, want %d", nameoff, direntSize)
	}
	if pad := got[15*256+27 : blockSize]; !bytes.Equal(pad, make([]byte, len(pad))) {
		t.Errorf("first block's padding is not zero")
	}
}
