package sysext

import (
	"fmt"
	"io"
	"io/fs"

	"github.com/sysext-bakery/bakery/internal/filetype"
)

// ReadReleaseFile reads and parses the release file at p of fsys: an
// extension image's tree, read natively or mounted, or a root file system.
// Whatever fsys holds at p, it guarantees that
//
//   - it opens nothing but a regular file: it stats p first (fs.Stat,
//     following symlinks as fsys resolves them) and refuses any other type
//     of file unopened, so that a FIFO named like a release file cannot
//     block it in open, nor a device feed it without end;
//   - it reads at most MaxReleaseSize+1 bytes: a file whose size is larger
//     is refused unread, however sparse, and the read stops there in case
//     the file grew or its size lied;
//   - its errors name p and what was expected, and show none of the file's
//     content but the start of a bad line (see ParseRelease).
//
// Stat and open are two steps: where the tree can change between them (a
// live file system, unlike a read-only image) a FIFO put at p in between
// is opened, and blocks the open.
func ReadReleaseFile(fsys fs.FS, p string) (Release, error) {
	// fs.Stat falls back to opening the file when fsys has no Stat of its
	// own, which would defeat the check below.
	sfs, ok := fsys.(fs.StatFS)
	if !ok {
		return nil, fmt.Errorf("release file %q: the file system cannot stat without opening (no fs.StatFS)", p)
	}
	fi, err := sfs.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("release file: %w", err)
	}
	if err := checkReleaseInfo(p, fi); err != nil {
		return nil, err
	}
	f, err := fsys.Open(p)
	if err != nil {
		return nil, fmt.Errorf("release file: %w", err)
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, fmt.Errorf("release file: %w", err)
	}
	if err := checkReleaseInfo(p, fi); err != nil {
		return nil, err
	}
	rel, err := ParseRelease(io.LimitReader(f, MaxReleaseSize+1))
	if err != nil {
		return nil, fmt.Errorf("%q: %w", p, err)
	}
	return rel, nil
}

// checkReleaseInfo refuses a release file that is not a regular file of at
// most MaxReleaseSize bytes.
func checkReleaseInfo(p string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%q is %s, not a regular file: a release file must be a regular file", p, filetype.Name(fi.Mode()))
	}
	if fi.Size() > MaxReleaseSize {
		return fmt.Errorf("%q has %d bytes, more than the %d a release file may have: it must hold only KEY=value lines", p, fi.Size(), MaxReleaseSize)
	}
	return nil
}
