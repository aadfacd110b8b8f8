package squashfs

import (
	"io/fs"
	"math"
	"path"
	"time"
)

// maxSymlinkLen is the longest symlink target read (PATH_MAX).
const maxSymlinkLen = 4096

// Stat is what FileInfo.Sys returns for a file of an image.
type Stat struct {
	UID, GID     uint32
	Nlink        uint32
	Inode        uint32
	Major, Minor uint32
}

// inode is a decoded inode.
type inode struct {
	typ      uint16
	mode     uint16
	uid, gid uint32
	mtime    uint32
	number   uint32
	nlink    uint32
	xattr    uint32
	size     uint64
	// regular files: data blocks from start, then the tail in a fragment;
	// the list of the nblocks block sizes is read when the file is read.
	start   uint64
	frag    uint32
	fragAt  uint32
	nblocks uint64
	list    tablePos
	// directories: the listing, and the index of an extended directory,
	// read only by lookups
	dirStart   uint32
	dirOffset  uint16
	indexCount uint16
	index      tablePos
	// symlinks and devices
	target string
	rdev   uint32
}

// inodeAt decodes the inode at a reference; a regular file's block list
// and a directory's index are left for reads and lookups.
func (r *Reader) inodeAt(ref uint64, w *work) (*inode, error) {
	if ref>>16 >= r.sb.DirectoryTable-r.sb.InodeTable || ref&0xffff >= metadataSize {
		return nil, corrupt("inode reference %#x outside the inode table", ref)
	}
	c := r.cursorAt(w, tablePos{block: r.sb.InodeTable + ref>>16, off: int(ref & 0xffff)}, r.sb.DirectoryTable)
	h, err := c.read(16)
	if err != nil {
		return nil, err
	}
	in := &inode{typ: le.Uint16(h), mode: le.Uint16(h[2:]), mtime: le.Uint32(h[8:]), number: le.Uint32(h[12:]), xattr: invalidXattr, nlink: 1}
	if in.uid, err = r.id(w, le.Uint16(h[4:])); err != nil {
		return nil, err
	}
	if in.gid, err = r.id(w, le.Uint16(h[6:])); err != nil {
		return nil, err
	}
	var fields []byte
	switch in.typ {
	case typeDir:
		if fields, err = c.read(16); err != nil {
			return nil, err
		}
		in.dirStart, in.nlink = le.Uint32(fields), le.Uint32(fields[4:])
		in.size, in.dirOffset = uint64(le.Uint16(fields[8:])), le.Uint16(fields[10:])
	case typeDir + extOffset:
		if fields, err = c.read(24); err != nil {
			return nil, err
		}
		in.nlink, in.size, in.dirStart = le.Uint32(fields), uint64(le.Uint32(fields[4:])), le.Uint32(fields[8:])
		in.indexCount, in.dirOffset, in.xattr = le.Uint16(fields[16:]), le.Uint16(fields[18:]), le.Uint32(fields[20:])
		in.index = c.at
	case typeFile:
		if fields, err = c.read(16); err != nil {
			return nil, err
		}
		in.start, in.frag, in.fragAt, in.size = uint64(le.Uint32(fields)), le.Uint32(fields[4:]), le.Uint32(fields[8:]), uint64(le.Uint32(fields[12:]))
		err = r.blockCount(c, in)
	case typeFile + extOffset:
		if fields, err = c.read(40); err != nil {
			return nil, err
		}
		in.start, in.size = le.Uint64(fields), le.Uint64(fields[8:])
		in.nlink, in.frag, in.fragAt, in.xattr = le.Uint32(fields[24:]), le.Uint32(fields[28:]), le.Uint32(fields[32:]), le.Uint32(fields[36:])
		err = r.blockCount(c, in)
	case typeSymlink, typeSymlink + extOffset:
		if fields, err = c.read(8); err != nil {
			return nil, err
		}
		in.nlink, in.size = le.Uint32(fields), uint64(le.Uint32(fields[4:]))
		if in.size == 0 || in.size > maxSymlinkLen {
			return nil, corrupt("symlink inode %d has target length %d", in.number, in.size)
		}
		t, err := c.read(int(in.size))
		if err != nil {
			return nil, err
		}
		in.target = string(t)
	case typeBlock, typeChar, typeBlock + extOffset, typeChar + extOffset:
		if fields, err = c.read(8); err != nil {
			return nil, err
		}
		in.nlink, in.rdev = le.Uint32(fields), le.Uint32(fields[4:])
	case typeFifo, typeSocket, typeFifo + extOffset, typeSocket + extOffset:
		if in.nlink, err = c.u32(); err != nil {
			return nil, err
		}
	default:
		return nil, corrupt("inode %d has unknown type %d", in.number, in.typ)
	}
	if err != nil {
		return nil, err
	}
	if in.typ > typeDir+extOffset && in.typ != typeFile+extOffset {
		if in.xattr, err = c.u32(); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// blockCount records how many block sizes a regular file's inode lists
// and where the list starts; the list is read as the file is read (see
// blockList), so a hostile size costs nothing until then.
func (r *Reader) blockCount(c *cursor, in *inode) error {
	bs := uint64(r.sb.BlockSize)
	in.nblocks = in.size / bs
	if in.frag == invalidFragment && in.size%bs != 0 {
		in.nblocks++
	}
	if in.frag != invalidFragment && in.frag >= r.sb.Fragments {
		return corrupt("file inode %d: fragment %d beyond the %d fragments", in.number, in.frag, r.sb.Fragments)
	}
	in.list = c.at
	return nil
}

// fileInfo implements fs.FileInfo for an inode.
type fileInfo struct {
	name string
	in   *inode
}

func (f fileInfo) Name() string       { return f.name }
func (f fileInfo) Size() int64        { return int64(min(f.in.size, math.MaxInt64)) }
func (f fileInfo) Mode() fs.FileMode  { return fileMode(f.in.typ, f.in.mode) }
func (f fileInfo) ModTime() time.Time { return time.Unix(int64(f.in.mtime), 0).UTC() }
func (f fileInfo) IsDir() bool        { return basicType(f.in.typ) == typeDir }
func (f fileInfo) Sys() any {
	s := &Stat{UID: f.in.uid, GID: f.in.gid, Nlink: f.in.nlink, Inode: f.in.number}
	s.Major, s.Minor = decodeDev(f.in.rdev)
	return s
}

// Stat returns the FileInfo of name, following symlinks.
func (r *Reader) Stat(name string) (fs.FileInfo, error) {
	in, err := r.resolve("stat", name, true, r.newWork())
	if err != nil {
		return nil, err
	}
	return fileInfo{name: path.Base(name), in: in}, nil
}

// Lstat returns the FileInfo of name without following a final symlink.
func (r *Reader) Lstat(name string) (fs.FileInfo, error) {
	in, err := r.resolve("lstat", name, false, r.newWork())
	if err != nil {
		return nil, err
	}
	return fileInfo{name: path.Base(name), in: in}, nil
}

// ReadLink returns the target of the symlink name.
func (r *Reader) ReadLink(name string) (string, error) {
	in, err := r.resolve("readlink", name, false, r.newWork())
	if err != nil {
		return "", err
	}
	if basicType(in.typ) != typeSymlink {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	return in.target, nil
}
