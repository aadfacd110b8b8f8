package erofs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sysext-bakery/bakery/internal/bounded"
	"github.com/sysext-bakery/bakery/sysext"
)

// fuzzNames are the names random trees are made of.
var fuzzNames = []string{"a", "b", "usr", "lib", "x.so.1", "é", "..a", strings.Repeat("L", 255), "sp ace", "Z"}

// errSkip tells the fuzz target an input it cannot build on this host.
var errSkip = errors.New("skip")

// genTree makes a small tree under dir as the bytes in ops say: each op is
// a kind byte followed by its arguments; running out of bytes ends the tree.
func genTree(dir string, ops []byte) error {
	next := func() (int, bool) {
		if len(ops) == 0 {
			return 0, false
		}
		b := ops[0]
		ops = ops[1:]
		return int(b), true
	}
	cwd := dir
	var files, all []string
	for range 64 {
		kind, ok1 := next()
		arg, ok2 := next()
		if !ok1 || !ok2 {
			break
		}
		p := filepath.Join(cwd, fuzzNames[arg%len(fuzzNames)])
		_, err := os.Lstat(p)
		exists := err == nil
		switch kind % 7 {
		case 0: // a file of up to 2*4096+255 bytes, some with special modes
			size, _ := next()
			size = size * 33 % (2*4096 + 256)
			if exists {
				continue
			}
			if err := os.WriteFile(p, bytes.Repeat([]byte{byte(arg)}, size), 0o644); err != nil {
				return err
			}
			if err := os.Chmod(p, fileMode(uint32(arg*37)&0o7777|0o400)); err != nil {
				return err
			}
			files = append(files, p)
		case 1: // a directory, entered
			if exists {
				continue
			}
			if err := os.Mkdir(p, 0o755); err != nil {
				return err
			}
			cwd = p
		case 2: // a symlink
			if exists {
				continue
			}
			if err := os.Symlink(strings.Repeat("../", arg%3)+fuzzNames[(arg/3)%len(fuzzNames)], p); err != nil {
				return err
			}
		case 3: // a hard link to an earlier file
			if exists || len(files) == 0 {
				continue
			}
			if err := os.Link(files[arg%len(files)], p); err != nil {
				return err
			}
		case 4: // an xattr on an earlier file or directory
			if len(all) == 0 {
				continue
			}
			value, _ := next()
			target := all[arg%len(all)]
			if fi, err := os.Lstat(target); err != nil || fi.Mode()&fs.ModeSymlink != 0 {
				continue // user. xattrs are for files and directories only
			}
			err := unix.Lsetxattr(target, fmt.Sprintf("user.k%d", arg%5), bytes.Repeat([]byte{byte(value)}, value%70), 0)
			if errors.Is(err, unix.ENOTSUP) {
				return errSkip
			}
			if err != nil {
				return err
			}
		case 5: // back up one directory
			if cwd != dir {
				cwd = filepath.Dir(cwd)
			}
		case 6: // an empty directory or file
			if exists {
				continue
			}
			if arg%2 == 0 {
				err = os.Mkdir(p, 0o700)
			} else {
				err = os.WriteFile(p, nil, 0o600)
			}
			if err != nil {
				return err
			}
		}
		if !exists {
			all = append(all, p)
		}
	}
	return nil
}

// FuzzRoundTrip builds random small trees and checks that the reader gives
// back exactly the tree written.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte{0, 0, 9, 1, 2, 0, 3, 200, 2, 4, 3, 0, 4, 3, 7, 5, 0, 6, 8, 6, 9})
	f.Add([]byte{1, 7, 1, 6, 0, 5, 255, 3, 1, 3, 2, 4, 0, 99, 5, 0, 5, 0, 0, 4, 124})
	f.Add([]byte{6, 0, 6, 1, 2, 2, 2, 5, 0, 9, 250, 0, 19, 1, 3, 8, 3, 9, 4, 1, 66})
	f.Fuzz(func(t *testing.T, ops []byte) {
		src := t.TempDir()
		if err := genTree(src, ops); errors.Is(err, errSkip) {
			t.Skip("no user xattrs on this file system")
		} else if err != nil {
			t.Fatal(err)
		}
		source, err := hostSnapshot(src)
		if err != nil {
			t.Fatal(err)
		}
		img := build(t, src, sysext.BuildOptions{Epoch: 42})
		got, err := imageSnapshot(openImage(t, img))
		if err != nil {
			t.Fatal(err)
		}
		if d := diff(noHoles(expect(source, 42, false)), got); d != "" {
			t.Errorf("image differs from the tree:\n%s", d)
		}
		if _, err := exec.LookPath("fsck.erofs"); err == nil {
			if out, err := exec.Command("fsck.erofs", img).CombinedOutput(); err != nil {
				t.Errorf("fsck.erofs: %v\n%s", err, out)
			}
		}
	})
}

// FuzzOpen feeds the reader damaged images: it must return errors, never
// panic, hang or allocate without bound: each input must be done within
// bounded.Fuzz (1 s, 64 MiB). An input is an image and one byte to flip
// in it (none when at is out of range); the seed corpus in
// testdata/fuzz/FuzzOpen holds the hostile images of package hostile (see
// TestFuzzSeeds).
func FuzzOpen(f *testing.F) {
	dir := f.TempDir()
	if err := genTree(dir, []byte{0, 0, 9, 1, 2, 0, 3, 200, 2, 4, 3, 0, 6, 8}); err != nil {
		f.Fatal(err)
	}
	img := build(f, dir, sysext.BuildOptions{})
	good, err := os.ReadFile(img)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, 1100, byte(0xff))
	f.Add(good, 4096, byte(1))
	f.Add(good, len(good)-4000, byte(0x80))
	f.Fuzz(func(t *testing.T, image []byte, at int, b byte) {
		image = bytes.Clone(image)
		if at >= 0 && at < len(image) {
			image[at] ^= b
		}
		bounded.Run(t, bounded.Fuzz, func() { readAll(image) })
	})
}

// readAll opens an image, walks it and reads its first 64 entries every
// way the Image offers, ignoring errors.
func readAll(image []byte) {
	im, err := Open(bytes.NewReader(image))
	if err != nil {
		return
	}
	n := 0
	_ = im.Walk(func(p string, d fs.DirEntry, err error) error {
		if n++; err != nil || n > 64 {
			return err
		}
		d.Info()
		im.ReadLink(p)
		im.Stat(p)
		if d.IsDir() {
			im.ReadDir(p)
		}
		if f, err := im.Open(p); err == nil {
			io.Copy(io.Discard, io.LimitReader(f, 1<<20))
			f.Close()
		}
		return nil
	})
}
