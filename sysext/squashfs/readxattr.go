package squashfs

import (
	"bytes"
	"io/fs"
)

// Limits of one inode's xattrs as read.
const (
	maxXattrs     = 1 << 16
	maxXattrName  = 255
	maxXattrValue = 1 << 16
)

// Xattrs returns the extended attributes of name (not following a final
// symlink), keyed by full name.
func (r *Reader) Xattrs(name string) (map[string][]byte, error) {
	w := r.newWork()
	in, err := r.resolve("xattrs", name, false, w)
	if err != nil {
		return nil, err
	}
	x, err := r.xattrs(in, w)
	if err != nil {
		return nil, &fs.PathError{Op: "xattrs", Path: name, Err: err}
	}
	return x, nil
}

func (r *Reader) xattrs(in *inode, w *work) (map[string][]byte, error) {
	if in.xattr == invalidXattr {
		return nil, nil
	}
	if r.sb.XattrIDTable == invalidBlock {
		return nil, corrupt("inode %d has xattrs but the image has no xattr table", in.number)
	}
	var head [16]byte
	if err := r.readAt(head[:], r.sb.XattrIDTable); err != nil {
		return nil, err
	}
	kvStart, count := le.Uint64(head[:]), le.Uint32(head[8:])
	if in.xattr >= count {
		return nil, corrupt("inode %d: xattr id %d beyond the %d ids", in.number, in.xattr, count)
	}
	e, err := r.tableEntry(w, r.sb.XattrIDTable+16, uint64(in.xattr), xattrIDEntry)
	if err != nil {
		return nil, err
	}
	ref, n := le.Uint64(e), le.Uint32(e[8:])
	if n > maxXattrs {
		return nil, corrupt("inode %d: %d xattrs", in.number, n)
	}
	at := func(ref uint64) *cursor {
		return r.cursorAt(w, tablePos{block: kvStart + ref>>16, off: int(ref & 0xffff)}, r.sb.BytesUsed)
	}
	c := at(ref)
	x := map[string][]byte{}
	for range n {
		kh, err := c.read(4)
		if err != nil {
			return nil, err
		}
		typ, nsize := le.Uint16(kh), le.Uint16(kh[2:])
		if int(typ&^xattrOOL) >= len(xattrPrefixes) {
			return nil, corrupt("inode %d: xattr prefix %d", in.number, typ)
		}
		if nsize > maxXattrName {
			return nil, corrupt("inode %d: xattr name of %d bytes", in.number, nsize)
		}
		nm, err := c.read(int(nsize))
		if err != nil {
			return nil, err
		}
		name := xattrPrefixes[typ&^xattrOOL] + string(nm)
		vsize, err := c.u32()
		if err != nil {
			return nil, err
		}
		vc := c
		if typ&xattrOOL != 0 {
			if vsize != 8 {
				return nil, corrupt("inode %d: out-of-line xattr reference of %d bytes", in.number, vsize)
			}
			vref, err := c.u64()
			if err != nil {
				return nil, err
			}
			vc = at(vref)
			if vsize, err = vc.u32(); err != nil {
				return nil, err
			}
		}
		if vsize > maxXattrValue {
			return nil, corrupt("inode %d: xattr value of %d bytes", in.number, vsize)
		}
		v, err := vc.read(int(vsize))
		if err != nil {
			return nil, err
		}
		x[name] = bytes.Clone(v)
	}
	return x, nil
}
