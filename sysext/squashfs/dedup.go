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
	t    *tree.Tree
	seed maphash.Seed
	// first holds the first file of each size until it is hashed, then
	// a file with rank -1.
	first map[int64]seen
	// byKey holds the first file of each key (dupKey); next chains the
	// later files of that key whose content differs (hash collisions).
	byKey map[uint64]seen
	next  map[tree.Ino]seen
	buf   []byte
}

// seen is a file met before: its inode and its rank among the files with
// content.
type seen struct {
	ino  tree.Ino
	rank int32
}

// dupKey mixes a file's size into the hash of its content.
func dupKey(size int64, sum uint64) uint64 { return sum ^ uint64(size)*0x9e3779b97f4a7c15 }

func newDedup(t *tree.Tree) *dedup {
	return &dedup{t: t, seed: maphash.MakeSeed(), first: map[int64]seen{}, byKey: map[uint64]seen{}, next: map[tree.Ino]seen{}}
}

// original returns the rank of the first file before f whose content
// equals f's, or -1 when there is none. content is f's content when the
// caller holds it (a file smaller than a block), else nil.
func (d *dedup) original(f seen, content []byte) (int32, error) {
	size := d.t.Size(f.ino)
	first, ok := d.first[size]
	if !ok {
		d.first[size] = f
		return -1, nil
	}
	if first.rank >= 0 {
		sum, err := d.sumFile(first.ino)
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
		if sum, err = d.sumFile(f.ino); err != nil {
			return -1, err
		}
	}
	key := dupKey(size, sum)
	o, ok := d.byKey[key]
	if !ok {
		d.byKey[key] = f
		return -1, nil
	}
	for {
		same, err := d.same(o.ino, f.ino, content)
		if err != nil || same {
			return o.rank, err
		}
		n, ok := d.next[o.ino]
		if !ok {
			d.next[o.ino] = f
			return -1, nil
		}
		o = n
	}
}

// sumFile hashes the content of the file i.
func (d *dedup) sumFile(i tree.Ino) (uint64, error) {
	var h maphash.Hash
	h.SetSeed(d.seed)
	err := readContent(d.t, i, func(r io.Reader) error {
		n, err := io.Copy(&h, r)
		if err == nil && n != d.t.Size(i) {
			err = fmt.Errorf("read %d bytes, expected %d (did the file change while writing?)", n, d.t.Size(i))
		}
		return err
	})
	return h.Sum64(), err
}

// same compares the content of the file a with that of b (content, when
// not nil).
func (d *dedup) same(a, b tree.Ino, content []byte) (bool, error) {
	if d.t.Size(a) != d.t.Size(b) {
		return false, nil // keys collide across sizes
	}
	if content != nil {
		if cap(d.buf) < len(content) {
			d.buf = make([]byte, len(content))
		}
		d.buf = d.buf[:len(content)]
		err := readContent(d.t, a, func(r io.Reader) error {
			_, err := io.ReadFull(r, d.buf)
			return err
		})
		return bytes.Equal(d.buf, content), err
	}
	var equal bool
	err := readContent(d.t, a, func(ra io.Reader) error {
		return readContent(d.t, b, func(rb io.Reader) error {
			var err error
			equal, err = sameStream(ra, rb)
			return err
		})
	})
	return equal, err
}

// sameStream reports whether a and b hold the same bytes.
func sameStream(a, b io.Reader) (bool, error) {
	const chunk = 64 << 10
	ba, bb := make([]byte, chunk), make([]byte, chunk)
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

// readContent opens the content of the file i, hands it to fn and closes
// it.
func readContent(t *tree.Tree, i tree.Ino, fn func(io.Reader) error) error {
	rc, err := t.Open(i)
	if err != nil {
		return err
	}
	err = fn(rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	return err
}
