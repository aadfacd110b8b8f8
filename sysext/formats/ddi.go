package formats

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/ddi"
)

// ddiFormat is a Discoverable Disk Image: a GPT disk holding the root file
// system, its dm-verity hash tree and, when signed, the root hash's
// signature (sysext/ddi). Inside it bakery writes erofs, as
// systemd-repart --make-ddi=sysext does, with erofs's builders; it reads
// any file system of the table inside.
type ddiFormat struct{}

// Name is "ddi".
func (ddiFormat) Name() string { return "ddi" }

// KernelType is erofs, the file system bakery writes inside; mounting a
// DDI mounts its root partition as the file system found there.
func (ddiFormat) KernelType() string { return erofsFormat{}.KernelType() }

// Detect looks for the GPT header.
func (ddiFormat) Detect(r io.ReaderAt) bool { return ddi.Detect(r) }

// Open reads the root partition (the host's architecture's, else the only
// one) with the native reader of the file system inside, without
// verifying it: merge verifies before it mounts.
func (ddiFormat) Open(r io.ReaderAt) (fs.FS, error) {
	_, inner, err := OpenDDI(r)
	return inner, err
}

// Reads is erofs's: what the builders write inside.
func (ddiFormat) Reads(c sysext.Compression) bool { return erofsFormat{}.Reads(c) }

// Builders wrap erofs's: native (the default) and mkfs.erofs.
func (ddiFormat) Builders() []sysext.Builder {
	var bs []sysext.Builder
	for _, b := range (erofsFormat{}).Builders() {
		bs = append(bs, ddi.Builder{Inner: b})
	}
	return bs
}

// OpenDDI opens the DDI r (see ddiFormat.Open) and its root file system.
func OpenDDI(r io.ReaderAt) (*ddi.Image, fs.FS, error) {
	size, err := sizeOf(r)
	if err != nil {
		return nil, nil, err
	}
	im, err := ddi.Open(r, size, "")
	if err != nil {
		return nil, nil, err
	}
	root := im.RootReader()
	inner, err := Inner(root)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", im.Root.Label, err)
	}
	fsys, err := inner.Open(root)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %s: %w", im.Root.Label, inner.Name(), err)
	}
	return im, fsys, nil
}

// Inner tells the file system of a DDI's root partition: any format of
// the table but a DDI.
func Inner(r io.ReaderAt) (sysext.Format, error) {
	for _, f := range all {
		if _, isDDI := f.(ddiFormat); !isDDI && f.Detect(r) {
			return f, nil
		}
	}
	return nil, errors.New("no file system bakery knows in the root partition")
}

// sizeOf tells the size of an image reader: a file's, or a reader's that
// knows its size.
func sizeOf(r io.ReaderAt) (int64, error) {
	switch r := r.(type) {
	case interface{ Size() int64 }:
		return r.Size(), nil
	case *os.File:
		fi, err := r.Stat()
		if err != nil {
			return 0, err
		}
		return fi.Size(), nil
	}
	return 0, fmt.Errorf("cannot tell the size of a %T", r)
}
