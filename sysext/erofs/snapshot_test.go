package erofs

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	goerofs "github.com/erofs/go-erofs"
	"github.com/sysext-bakery/bakery/internal/hostxattr"
	"github.com/sysext-bakery/bakery/sysext/tree"
	"golang.org/x/sys/unix"
)

// entry is what the tests compare of one file, however it was read.
type entry struct {
	Mode   fs.FileMode
	UID    uint32
	GID    uint32
	Nlink  uint64
	Size   int64 // regular files
	Mtime  int64
	Target string
	Digest string // sha256 of a regular file's content
	Data   string // a regular file with holes: the blocks holding data
	Rdev   [2]uint32
	Xattrs map[string]string
	Link   string // a hard link's first name in walk order ("" when alone)
}

// snapshot is a tree's entries by slash path ("." for the root).
type snapshot map[string]entry

// diff lists the differences between want and got, "" when equal.
func diff(want, got snapshot) string {
	var out []string
	for p, w := range want {
		g, ok := got[p]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s: missing", p))
		case fmt.Sprint(w) != fmt.Sprint(g):
			out = append(out, fmt.Sprintf("%s:\n\twant %+v\n\tgot  %+v", p, w, g))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			out = append(out, fmt.Sprintf("%s: unexpected", p))
		}
	}
	sort.Strings(out)
	if len(out) > 10 {
		out = append(out[:10], fmt.Sprintf("… and %d more", len(out)-10))
	}
	return strings.Join(out, "\n")
}

// linkGroups sets Link on every entry sharing an identity (non-directories
// only) with an earlier one, and on that earlier one.
func linkGroups(s snapshot, order []string, ids map[string]uint64) {
	first := map[uint64]string{}
	count := map[uint64]int{}
	for _, p := range order {
		id, ok := ids[p]
		if !ok {
			continue
		}
		if _, seen := first[id]; !seen {
			first[id] = p
		}
		count[id]++
	}
	for _, p := range order {
		if id, ok := ids[p]; ok && count[id] > 1 {
			e := s[p]
			e.Link = first[id]
			s[p] = e
		}
	}
}

// digest hashes r.
func digest(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hostSnapshot reads the tree at root from the host (a source tree, a
// mounted image or an extraction), with the xattrs images carry and the
// holes of sparse files (SEEK_DATA and SEEK_HOLE, in whole blocks).
func hostSnapshot(root string) (snapshot, error) {
	s := snapshot{}
	var order []string
	ids := map[string]uint64{}
	inodes := map[[2]uint64]uint64{}
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		e := entry{Mode: fi.Mode(), UID: st.Uid, GID: st.Gid, Nlink: uint64(st.Nlink), Mtime: fi.ModTime().Unix()}
		switch fi.Mode().Type() {
		case 0:
			e.Size = fi.Size()
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			e.Digest, err = digest(f)
			f.Close()
			if err != nil {
				return err
			}
			holes, err := tree.Holes(p, e.Size)
			if err != nil {
				return err
			}
			data, err := dataBlocks(holes, e.Size)
			if err != nil {
				return err
			}
			if data != nil {
				e.Data = fmt.Sprint(data)
			}
		case fs.ModeSymlink:
			if e.Target, err = os.Readlink(p); err != nil {
				return err
			}
		case fs.ModeDevice, fs.ModeDevice | fs.ModeCharDevice:
			e.Rdev = [2]uint32{unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev))}
		}
		all, err := hostxattr.Read(p)
		if err != nil {
			return err
		}
		for _, x := range copiedXattrs(all) {
			if e.Xattrs == nil {
				e.Xattrs = map[string]string{}
			}
			e.Xattrs[x.name] = x.value
		}
		if !fi.IsDir() {
			k := [2]uint64{uint64(st.Dev), uint64(st.Ino)}
			if _, ok := inodes[k]; !ok {
				inodes[k] = uint64(len(inodes))
			}
			ids[rel] = inodes[k]
		}
		s[rel] = e
		order = append(order, rel)
		return nil
	})
	linkGroups(s, order, ids)
	return s, err
}

// noHoles is s without the holes of sparse files, which neither the
// package's reader nor mkfs.erofs 1.5 keeps.
func noHoles(s snapshot) snapshot {
	out := snapshot{}
	for p, e := range s {
		e.Data = ""
		out[p] = e
	}
	return out
}

// imageSnapshot reads the tree of an image through the package's reader,
// which tells no holes.
func imageSnapshot(im *Image) (snapshot, error) {
	s := snapshot{}
	var order []string
	ids := map[string]uint64{}
	err := fs.WalkDir(im, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if p == "." {
			// The root's DirEntry is from Stat; check Lstat agrees.
			if fi, err = im.Lstat("."); err != nil {
				return err
			}
		}
		st, ok := fi.Sys().(*goerofs.Stat)
		if !ok {
			return fmt.Errorf("%s: Sys is %T, want *goerofs.Stat", p, fi.Sys())
		}
		e := entry{Mode: fi.Mode(), UID: st.UID, GID: st.GID, Nlink: uint64(st.Nlink), Mtime: fi.ModTime().Unix()}
		switch fi.Mode().Type() {
		case 0:
			e.Size = fi.Size()
			f, err := im.Open(p)
			if err != nil {
				return err
			}
			e.Digest, err = digest(f)
			f.Close()
			if err != nil {
				return err
			}
		case fs.ModeSymlink:
			if e.Target, err = im.ReadLink(p); err != nil {
				return err
			}
		case fs.ModeDevice, fs.ModeDevice | fs.ModeCharDevice:
			e.Rdev = decodeDev(st.Rdev)
		}
		if len(st.Xattrs) > 0 {
			e.Xattrs = st.Xattrs
		}
		if !fi.IsDir() {
			ids[p] = uint64(st.Ino)
		}
		s[p] = e
		order = append(order, p)
		return nil
	})
	linkGroups(s, order, ids)
	return s, err
}

// decodeDev unpacks an erofs device number (the kernel's new_decode_dev).
func decodeDev(dev uint32) [2]uint32 {
	return [2]uint32{(dev & 0xfff00) >> 8, dev&0xff | (dev>>12)&0xfff00}
}

// expect is what an image of the source snapshot src must show.
func expect(src snapshot, epoch int64, allRoot bool) snapshot {
	want := snapshot{}
	for p, e := range src {
		e.Mtime = epoch
		if allRoot {
			e.UID, e.GID = 0, 0
		}
		want[p] = e
	}
	return want
}

// requireRoot skips a test that needs root.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (device nodes, owners, trusted. xattrs, loop mounts)")
	}
}
