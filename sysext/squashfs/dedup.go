package squashfs

import (
	"bytes"
	"fmt"
	"hash/maphash"
	"io"

	"github.com/sysext-bakery/bakery/sysext/tree"
)

// dedup finds the regular files whose content equals an earlier file's,
// in walk order, so that they share its data: the first of a size is
// only remembered; when a second file of that size comes, both are
// hashed, and a file whose hash matches an earlier one's is compared with
// it byte for byte. Files of a size no other file has are thus never
// read twice, and no decision rests on a hash alone.
type dedup struct {
	s    tree.Stream
	seed maphash.Seed
	// first holds the first file of each size until it is hashed, then
	// a file with rank -1.
	first map[int64]seen
	// byKey holds the first file of each key (dupKey); next chains the
	// later files of that key whose content differs (hash collisions).
	byKey map[uint64]seen
	next  map[uint32]seen
	// bufs are the buffers of hashing and comparing.
	bufs [2][]byte
}

// dedupBuf is the size of the buffers of hashing and comparing.
const dedupBuf = 32 << 10

// seen is a file met before: its tree.File's ID and its rank among the
// files with content.
type seen struct {
	id   uint32
	rank int32
}

// dupKey mixes a file's size into the hash of its content.
func dupKey(size int64, sum uint64) uint64 { return sum ^ uint64(size)*0x9e3779b97f4a7c15 }

func newDedup(s tree.Stream) *dedup {
	return &dedup{s: s, seed: maphash.MakeSeed(), first: map[int64]seen{}, byKey: map[uint64]seen{}, next: map[uint32]seen{},
		bufs: [2][]byte{make([]byte, dedupBuf), make([]byte, dedupBuf)}}
}

// original returns the rank of the first file before f, of the given
// rank, whose content equals f's, or -1 when there is none. content is
// f's content when the caller holds it (a file smaller than a block),
// else nil.
func (d *dedup) original(f tree.File, rank int32, content []byte) (int32, error) {
	size := f.Size
	first, ok := d.first[size]
	if !ok {
		d.first[size] = seen{f.ID, rank}
		return -1, nil
	}
	if first.rank >= 0 {
		sum, err := d.sumFile(tree.File{ID: first.id, Size: size})
		if err != nil {
			return -1, err
		}
		d.byKey[dupKey(size, sum)] = first
		d.first[size] = seen{rank: -1}
	}
	var sum uint64
	if content != nil {
		sum = maphash.Bytes(d.seed, content)
	} else {
		var err error
		if sum, err = d.sumFile(f); err != nil {
			return -1, err
		}
	}
	key := dupKey(size, sum)
	o, ok := d.byKey[key]
	if !ok {
		d.byKey[key] = seen{f.ID, rank}
		return -1, nil
	}
	for {
		same, err := d.same(o.id, f, content)
		if err != nil || same {
			return o.rank, err
		}
		n, ok := d.next[o.id]
		if !ok {
			d.next[o.id] = seen{f.ID, rank}
			return -1, nil
		}
		o = n
	}
}

// sumFile hashes the content of the file f.
func (d *dedup) sumFile(f tree.File) (uint64, error) {
	var h maphash.Hash
	h.SetSeed(d.seed)
	err := readContent(d.s, f, func(r io.Reader) error {
		n, err := io.CopyBuffer(&h, r, d.bufs[0])
		if err == nil && n != f.Size {
			err = fmt.Errorf("%s: read %d bytes, expected %d (did the file change while writing?)", d.s.Path(f), n, f.Size)
		}
		return err
	})
	return h.Sum64(), err
}

// same compares the content of the file of ID a (whose size may differ,
// as keys of several sizes may collide) with that of b (content, when not
// nil).
func (d *dedup) same(a uint32, b tree.File, content []byte) (bool, error) {
	fa := tree.File{ID: a}
	if content != nil {
		var equal bool
		err := readContent(d.s, fa, func(r io.Reader) error {
			var err error
			equal, err = d.sameStream(r, bytes.NewReader(content))
			return err
		})
		return equal, err
	}
	var equal bool
	err := readContent(d.s, fa, func(ra io.Reader) error {
		return readContent(d.s, b, func(rb io.Reader) error {
			var err error
			equal, err = d.sameStream(ra, rb)
			return err
		})
	})
	return equal, err
}

// sameStream reports whether a and b hold the same bytes.
func (d *dedup) sameStream(a, b io.Reader) (bool, error) {
	ba, bb := d.bufs[0], d.bufs[1]
	for {
		na, erra := io.ReadFull(a, ba)
		nb, errb := io.ReadFull(b, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		switch {
		case erra == io.EOF || erra == io.ErrUnexpectedEOF:
			return errb == io.EOF || errb == io.ErrUnexpectedEOF, nil
		case erra != nil:
			return false, erra
		case errb != nil:
			return false, errb
		}
	}
}

// readContent opens the content of the file f of s, hands it to fn and
// closes it.
func readContent(s tree.Stream, f tree.File, fn func(io.Reader) error) error {
	rc, err := s.Open(f)
	if err != nil {
		return err
	}
	err = fn(rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	return err
}
