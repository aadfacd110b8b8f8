// Package stage writes untrusted archives and files into a staging root without ever writing outside it.
//
// Every write goes through an [os.Root], so no member can reach outside the
// staging root whatever its name or the links planted before it. On top of
// that, hostile members are refused with an error rather than sanitised:
// absolute paths, ".." that leaves the extraction directory, writes through
// a symbolic link, hard links to anything but a regular file extracted
// earlier from the same archive, device nodes, fifos and sockets, sizes
// over [Options.MaxBytes], and names that are not valid UTF-8 or hold NUL.
// Each refusal wraps one of the exported sentinel errors, so callers test
// it with [errors.Is]. [Layers] applies a container image's layers the
// same way, with OCI whiteouts confined to what the image itself wrote.
//
// Owners are left as the process's and modification times are not kept:
// the image builder sets both. A [Sink] (see [WithSink]) is told of every
// entry once it is in place, for a caller that builds the tree as it is
// staged. A regular file whose name is free is written in place (a Sink
// hears of it only once it is whole, and a failed staging's root is
// thrown away); one that replaces an entry is written to a temporary name
// and renamed over it, so what was there is never changed. Files are not
// fsynced, because a staging root is scratch that is rebuilt from the
// verified cache after any failure.
package stage

import (
	"archive/tar"
	"archive/zip"
	"compress/bzip2"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// DefaultMaxBytes is the limit on the bytes one archive may write when
// [Options.MaxBytes] is zero: 16 GiB.
const DefaultMaxBytes int64 = 16 << 30

// DefaultMaxEntries is the limit on the members of one source when
// [Options.MaxEntries] is zero: 250,000, 15 times the Go toolchain's tree
// and more than a whole Debian /usr with compilers (150,000). Every member
// costs a file system operation or more (tens of µs on ext4), so it also
// bounds the time a hostile archive of empty files takes.
const DefaultMaxEntries = 250_000

// Options controls how [Archive] unpacks.
type Options struct {
	// StripComponents removes that many leading components from every
	// member name, counted as GNU tar does ("./a/b" has three: ".", "a",
	// "b"). A member left with no name is skipped.
	StripComponents int
	// Include selects members by path.Match globs on the stripped member
	// path (no leading "/" or "./"). A pattern that matches a directory
	// also selects everything beneath it: "bin" and "b*" both select
	// "bin/tool". Empty selects every member. Every pattern must select
	// at least one member, or Archive fails with [ErrNoMatch]. Members
	// that are not selected are still checked for hostile names.
	Include []string
	// To is the directory inside the root the members are unpacked into,
	// such as "/usr/libexec/cni"; "" means "/". It and its missing
	// parents are created with mode 0755.
	To string
	// Mode, when not zero, replaces the mode of every regular file.
	// Either Go's flags (fs.ModeSetuid|0o755) or raw octal (0o4755) may be
	// used. Zero keeps the archive's permission, setuid, setgid and sticky
	// bits.
	Mode fs.FileMode
	// MaxBytes limits the bytes written, per entry and in total, checked
	// against each entry's declared size before anything is written.
	// Zero or less means [DefaultMaxBytes].
	MaxBytes int64
	// MaxEntries limits the members read, whether unpacked or not (a zip
	// archive's are counted before any is). Zero or less means
	// [DefaultMaxEntries].
	MaxEntries int
	// Origin names the archive at the start of every error, such as the
	// URL it was downloaded from; empty means the file's name.
	Origin string
}

// Result reports what [Archive] wrote.
type Result struct {
	// Bytes is the sum of the sizes of the regular files written.
	Bytes int64
}

// Archive unpacks src, a verified local archive whose format is detected
// from its content (see [DetectFormat]), into root under opts.To, until
// ctx is done. On error, members already unpacked stay in root; the caller
// discards the staging root.
func Archive(ctx context.Context, root *os.Root, src *os.File, opts Options) (Result, error) {
	name := opts.Origin
	if name == "" {
		name = src.Name()
	}
	info, err := src.Stat()
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", name, err)
	}
	format, err := DetectFormat(src)
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", name, err)
	}
	st, err := newStager(ctx, root, name, opts)
	if err != nil {
		return Result{}, err
	}
	var members memberSource
	if format == Zip {
		zr, err := zip.NewReader(src, info.Size())
		if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
			return Result{}, withFix(name, refused(ErrFormat, "reading the zip directory: %v", err))
		}
		if len(zr.File) > st.entries {
			return Result{}, st.tooManyEntries()
		}
		members = &zipSource{files: zr.File}
	} else {
		r, closeFn, err := decompressAhead(format, io.NewSectionReader(src, 0, info.Size()))
		if err != nil {
			return Result{}, withFix(name, refused(ErrFormat, "opening the %s stream: %v", format, err))
		}
		defer closeFn()
		members = &tarSource{tr: tar.NewReader(r)}
	}
	if err := st.run(members); err != nil {
		return Result{}, err
	}
	return st.result, nil
}

// decompressAhead is decompress with the tar stream read ahead in its own
// goroutine when it is compressed (readAhead), for reading it whole; call
// the returned function once done with it.
func decompressAhead(format Format, r io.Reader) (io.Reader, func(), error) {
	zr, closeFn, err := decompress(format, r)
	if err != nil || format == Tar {
		return zr, closeFn, err
	}
	ahead, stop := readAhead(zr)
	return ahead, func() { stop(); closeFn() }, nil
}

// decompress returns the tar stream inside a stream of the given format.
func decompress(format Format, r io.Reader) (io.Reader, func(), error) {
	noop := func() {}
	switch format {
	case Tar:
		return r, noop, nil
	case TarGzip:
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, err
		}
		return zr, func() { zr.Close() }, nil
	case TarXz:
		xr, err := xz.NewReader(r)
		return xr, noop, err
	case TarZstd:
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, nil, err
		}
		return zr, zr.Close, nil
	case TarBzip2:
		return bzip2.NewReader(r), noop, nil
	}
	return nil, nil, fmt.Errorf("format %s holds no tar stream", format)
}
