package squashfs

import (
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
)

// maxSymlinkHops is how many symlinks one path lookup follows (the
// kernel's limit).
const maxSymlinkHops = 40

// dirEntry is one directory entry of an image.
type dirEntry struct {
	r    *Reader
	name string
	typ  uint16
	ref  uint64
}

// listDir calls fn for each entry of a directory, starting at the last
// index entry whose name sorts before from (all entries when from is "");
// fn returns false to stop. When runs is not nil, listDir records there
// where each header of the listing starts and fails at one recorded
// before: the listings of two directories met on one walk never overlap.
func (r *Reader) listDir(dir *inode, from string, w *work, runs map[tablePos]bool, fn func(dirEntry) bool) error {
	if basicType(dir.typ) != typeDir {
		return corrupt("inode %d is not a directory", dir.number)
	}
	if dir.size < 3 {
		return corrupt("directory inode %d has size %d", dir.number, dir.size)
	}
	total := dir.size - 3
	c := r.cursorAt(w, tablePos{block: r.sb.DirectoryTable + uint64(dir.dirStart), off: int(dir.dirOffset)}, r.dirEnd)
	left := total
	if from != "" && dir.indexCount > 0 {
		ic := r.cursorAt(w, dir.index, r.sb.DirectoryTable)
		var last uint32
		for range dir.indexCount {
			e, err := ic.read(dirIndexSize)
			if err != nil {
				return err
			}
			pos, start, nlen := le.Uint32(e), le.Uint32(e[4:]), le.Uint32(e[8:])+1
			if nlen > maxNameLen {
				return corrupt("directory inode %d: index name of %d bytes", dir.number, nlen)
			}
			name, err := ic.read(int(nlen))
			if err != nil {
				return err
			}
			if string(name) > from || uint64(pos) >= total || pos < last {
				break
			}
			last = pos
			c = r.cursorAt(w, tablePos{block: r.sb.DirectoryTable + uint64(start), off: int((uint32(dir.dirOffset) + pos) % metadataSize)}, r.dirEnd)
			left = total - uint64(pos)
		}
	}
	for left > 0 {
		if left < dirHeaderSize {
			return corrupt("directory inode %d: listing ends inside a header", dir.number)
		}
		if runs != nil {
			at, err := c.align()
			if err != nil {
				return err
			}
			if runs[at] {
				return fmt.Errorf("%w: directory inode %d: listing overlaps one read before", errLoop, dir.number)
			}
			runs[at] = true
		}
		h, err := c.read(dirHeaderSize)
		if err != nil {
			return err
		}
		left -= dirHeaderSize
		count, start := le.Uint32(h)+1, le.Uint32(h[4:])
		if count > maxDirRun {
			return corrupt("directory inode %d: header with %d entries", dir.number, count)
		}
		for range count {
			if left < dirEntrySize {
				return corrupt("directory inode %d: listing ends inside an entry", dir.number)
			}
			e, err := c.read(dirEntrySize)
			if err != nil {
				return err
			}
			typ, nlen := le.Uint16(e[4:]), uint64(le.Uint16(e[6:]))+1
			if typ < typeDir || typ > typeSocket+extOffset {
				return corrupt("directory inode %d: entry of unknown type %d", dir.number, typ)
			}
			if nlen > maxNameLen || left < dirEntrySize+nlen {
				return corrupt("directory inode %d: entry name of %d bytes", dir.number, nlen)
			}
			ref := uint64(start)<<16 | uint64(le.Uint16(e))
			name, err := c.read(int(nlen))
			if err != nil {
				return err
			}
			left -= dirEntrySize + nlen
			s := string(name)
			if s == "." || s == ".." || strings.ContainsRune(s, '/') {
				return corrupt("directory inode %d: invalid entry name %q", dir.number, s)
			}
			if !fn(dirEntry{r: r, name: s, typ: typ, ref: ref}) {
				return nil
			}
		}
	}
	return nil
}

// lookup finds a name in a directory.
func (r *Reader) lookup(dir *inode, name string, w *work) (*inode, error) {
	var found *dirEntry
	err := r.listDir(dir, name, w, nil, func(e dirEntry) bool {
		if e.name == name {
			found = &e
			return false
		}
		return e.name < name
	})
	if err != nil {
		return nil, err
	}
	if found == nil {
		return nil, fs.ErrNotExist
	}
	return r.inodeAt(found.ref, w)
}

// resolve walks a path from the root. Symlinks in the middle are always
// followed; the last one only when follow is set.
func (r *Reader) resolve(op, name string, follow bool, w *work) (*inode, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	stack := []*inode{r.root}
	// todo holds the components still to walk, the next one last, so that
	// a symlink's target is pushed without copying the rest.
	var todo []string
	push := func(p string) {
		parts := strings.Split(p, "/")
		for i := len(parts) - 1; i >= 0; i-- {
			todo = append(todo, parts[i])
		}
	}
	if name != "." {
		push(name)
	}
	hops := 0
	for len(todo) > 0 {
		p := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		switch p {
		case "", ".":
			continue
		case "..":
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		cur := stack[len(stack)-1]
		if basicType(cur.typ) != typeDir {
			return nil, &fs.PathError{Op: op, Path: name, Err: fmt.Errorf("not a directory")}
		}
		child, err := r.lookup(cur, p, w)
		if err != nil {
			return nil, &fs.PathError{Op: op, Path: name, Err: err}
		}
		if basicType(child.typ) == typeSymlink && (len(todo) > 0 || follow) {
			if hops++; hops > maxSymlinkHops {
				return nil, &fs.PathError{Op: op, Path: name, Err: fmt.Errorf("too many levels of symbolic links")}
			}
			if strings.HasPrefix(child.target, "/") {
				stack = stack[:1]
			}
			push(child.target)
			continue
		}
		stack = append(stack, child)
	}
	return stack[len(stack)-1], nil
}

func (e dirEntry) Name() string      { return e.name }
func (e dirEntry) IsDir() bool       { return basicType(e.typ) == typeDir }
func (e dirEntry) Type() fs.FileMode { return fileMode(e.typ, 0).Type() }
func (e dirEntry) Info() (fs.FileInfo, error) {
	in, err := e.r.inodeAt(e.ref, e.r.newWork())
	if err != nil {
		return nil, err
	}
	return fileInfo{name: e.name, in: in}, nil
}

// ReadDir lists the directory name, sorted by file name.
func (r *Reader) ReadDir(name string) ([]fs.DirEntry, error) {
	w := r.newWork()
	in, err := r.resolve("readdir", name, true, w)
	if err != nil {
		return nil, err
	}
	return r.readDir(name, in, w)
}

func (r *Reader) readDir(name string, in *inode, w *work) ([]fs.DirEntry, error) {
	if basicType(in.typ) != typeDir {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fmt.Errorf("not a directory")}
	}
	var out []fs.DirEntry
	if err := r.listDir(in, "", w, nil, func(e dirEntry) bool { out = append(out, e); return true }); err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

// dirFile is an open directory.
type dirFile struct {
	r       *Reader
	name    string
	info    fileInfo
	entries []fs.DirEntry
	read    bool
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *dirFile) Close() error               { return nil }
func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.name, Err: fmt.Errorf("is a directory")}
}

func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	if !d.read {
		var err error
		if d.entries, err = d.r.readDir(d.name, d.info.in, d.r.newWork()); err != nil {
			return nil, err
		}
		d.read = true
	}
	if n <= 0 {
		out := d.entries
		d.entries = nil
		return out, nil
	}
	if len(d.entries) == 0 {
		return nil, io.EOF
	}
	k := min(n, len(d.entries))
	out := d.entries[:k]
	d.entries = d.entries[k:]
	return out, nil
}
