package squashfs

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sysext-bakery/bakery/internal/hostxattr"
)

// fileFacts is what the tests compare about one file, however it was read.
type fileFacts struct {
	path, typ            string
	perm                 uint32 // permission bits incl. setuid/setgid/sticky
	uid, gid, nlink      uint32
	size                 string // "-" for directories, whose sizes differ by file system
	mtime                int64
	target, sum, dev     string
	xattrs               map[string][]byte
	inodeKey, linkLeader string
}

// dumpLines renders facts as sorted lines; hard links are named by the
// first path of their inode.
func dumpLines(facts []fileFacts) []string {
	slices.SortFunc(facts, func(a, b fileFacts) int { return strings.Compare(a.path, b.path) })
	first := map[string]string{}
	var lines []string
	for _, f := range facts {
		link := "-"
		if f.typ != "d" && f.nlink > 1 {
			if p, ok := first[f.inodeKey]; ok {
				link = p
			} else {
				first[f.inodeKey] = f.path
				link = f.path
			}
		}
		var xs []string
		for k, v := range f.xattrs {
			xs = append(xs, k+"="+hex.EncodeToString(v))
		}
		slices.Sort(xs)
		lines = append(lines, fmt.Sprintf("%s %s %04o %d:%d n%d %s t%d %q %s %s [%s] %s",
			f.path, f.typ, f.perm, f.uid, f.gid, f.nlink, f.size, f.mtime, f.target, f.sum, f.dev, strings.Join(xs, " "), link))
	}
	return lines
}

func typeLetter(m fs.FileMode) string {
	switch m.Type() {
	case fs.ModeDir:
		return "d"
	case fs.ModeSymlink:
		return "l"
	case fs.ModeDevice:
		return "b"
	case fs.ModeDevice | fs.ModeCharDevice:
		return "c"
	case fs.ModeNamedPipe:
		return "p"
	case fs.ModeSocket:
		return "s"
	}
	return "f"
}

func sumOf(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// dumpHost describes the tree at root as the host kernel shows it.
func dumpHost(root string) ([]string, error) {
	facts, err := hostFacts(root)
	return dumpLines(facts), err
}

// hostFacts collects the facts of the tree at root.
func hostFacts(root string) ([]fileFacts, error) {
	var facts []fileFacts
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		f := fileFacts{path: rel, typ: typeLetter(info.Mode()), perm: st.Mode & 0o7777, uid: st.Uid, gid: st.Gid,
			nlink: uint32(st.Nlink), size: fmt.Sprint(st.Size), mtime: st.Mtim.Sec, dev: "-", sum: "-",
			inodeKey: fmt.Sprint(st.Dev, ":", st.Ino)}
		if f.xattrs, err = hostxattr.Read(p); err != nil {
			return err
		}
		switch f.typ {
		case "d":
			f.size = "-"
		case "l":
			f.target, err = os.Readlink(p)
		case "b", "c":
			f.dev = fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		case "f":
			var fh *os.File
			if fh, err = os.Open(p); err == nil {
				f.sum, err = sumOf(fh)
				fh.Close()
			}
		}
		facts = append(facts, f)
		return err
	})
	return facts, err
}

// listingLines renders facts the way parseListing reads an unsquashfs
// -lln listing: what a long listing shows (no content, xattrs or links).
func listingLines(facts []fileFacts) []string {
	var lines []string
	for _, f := range facts {
		size := f.size
		switch f.typ {
		case "d":
			size = "-" // directory sizes differ by file system
		case "b", "c":
			// unsquashfs -lln prints the stored rdev as rdev>>8, rdev&0xff,
			// which for minors above 255 is not major, minor.
			var major, minor uint32
			fmt.Sscanf(f.dev, "%d:%d", &major, &minor)
			rdev := encodeDev(major, minor)
			size = fmt.Sprintf("%d:%d", rdev>>8, rdev&0xff)
		}
		lines = append(lines, fmt.Sprintf("%s %s %04o %d/%d %s %s %q", f.path, f.typ, f.perm, f.uid, f.gid, size,
			time.Unix(f.mtime, 0).UTC().Format("2006-01-02 15:04"), f.target))
	}
	slices.Sort(lines)
	return lines
}

// parseListing reads the output of unsquashfs -lln -UTC into the form of
// listingLines.
func parseListing(out string) ([]string, error) {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		fields := strings.Fields(l)
		if len(fields) < 6 || len(fields[0]) != 10 {
			return nil, fmt.Errorf("unexpected listing line %q", l)
		}
		perm, typ := fields[0], string(fields[0][0])
		if typ == "-" {
			typ = "f"
		}
		var bits uint32
		for i, c := range perm[1:] {
			if c != '-' && c != 'S' && c != 'T' {
				bits |= 1 << (8 - i)
			}
		}
		for i, special := range []uint32{0o4000, 0o2000, 0o1000} {
			if c := perm[3+3*i]; c == 's' || c == 'S' || c == 't' || c == 'T' {
				bits |= special
				if c == 'S' || c == 'T' {
					bits &^= 1 << (6 - 3*i)
				}
			}
		}
		rest := fields[2:]
		size := rest[0]
		if typ == "b" || typ == "c" {
			if strings.HasSuffix(size, ",") { // "major, minor" as two fields
				size, rest = size+rest[1], rest[1:]
			}
			size = strings.Replace(size, ",", ":", 1)
		}
		if typ == "d" {
			size = "-"
		}
		when, name := rest[1]+" "+rest[2], rest[3]
		path := strings.TrimPrefix(strings.TrimPrefix(name, "squashfs-root"), "/")
		if path == "" {
			path = "."
		}
		target := ""
		if len(rest) > 5 && rest[4] == "->" {
			target = rest[5]
		}
		lines = append(lines, fmt.Sprintf("%s %s %04o %s %s %s %q", path, typ, bits, fields[1], size, when, target))
	}
	slices.Sort(lines)
	return lines, nil
}

// dumpImage describes an image as the Reader shows it, walked by Walk.
func dumpImage(r *Reader) ([]string, error) {
	var facts []fileFacts
	err := r.Walk(func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := r.Lstat(p)
		if err != nil {
			return err
		}
		st := info.Sys().(*Stat)
		f := fileFacts{path: p, typ: typeLetter(info.Mode()), perm: uint32(unixMode(info.Mode())), uid: st.UID, gid: st.GID,
			nlink: st.Nlink, size: fmt.Sprint(info.Size()), mtime: info.ModTime().Unix(), dev: "-", sum: "-",
			inodeKey: fmt.Sprint(st.Inode)}
		if f.xattrs, err = r.Xattrs(p); err != nil {
			return err
		}
		switch f.typ {
		case "d":
			f.size = "-"
		case "l":
			f.target, err = r.ReadLink(p)
		case "b", "c":
			f.dev = fmt.Sprintf("%d:%d", st.Major, st.Minor)
		case "f":
			var fh fs.File
			if fh, err = r.Open(p); err == nil {
				f.sum, err = sumOf(fh)
				fh.Close()
			}
		}
		facts = append(facts, f)
		return err
	})
	return dumpLines(facts), err
}

// diffLines reports the first differences between two dumps.
func diffLines(t *testing.T, what string, want, got []string) {
	t.Helper()
	w, g := map[string]bool{}, map[string]bool{}
	for _, l := range want {
		w[l] = true
	}
	for _, l := range got {
		g[l] = true
	}
	n := 0
	for _, l := range want {
		if !g[l] && n < 10 {
			t.Errorf("%s: missing  %s", what, l)
			n++
		}
	}
	for _, l := range got {
		if !w[l] && n < 20 {
			t.Errorf("%s: unexpected %s", what, l)
			n++
		}
	}
	if len(want) != len(got) {
		t.Errorf("%s: %d entries, want %d", what, len(got), len(want))
	}
}

// TestHelperDump is not a test: the kernel-mount test re-executes the test
// binary with it inside a private mount namespace to dump the mounted tree.
func TestHelperDump(t *testing.T) {
	dir, out := os.Getenv("SQUASHFS_DUMP_DIR"), os.Getenv("SQUASHFS_DUMP_OUT")
	if dir == "" || out == "" {
		t.Skip("helper process for TestFeatureTree (runs only when re-executed with SQUASHFS_DUMP_DIR)")
	}
	lines, err := dumpHost(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}
