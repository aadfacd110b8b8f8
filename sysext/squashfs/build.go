package squashfs

import (
	"context"
	"fmt"
	"os"

	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/tree"
)

// Builder is the native squashfs sysext.Builder.
type Builder struct {
	// Workers is the number of compressing goroutines; 0 means GOMAXPROCS.
	Workers int
}

// Name is "native", as --builder spells it.
func (Builder) Name() string { return "native" }

// Compressions are zstd (the default), gzip, xz, lz4 and none.
func (Builder) Compressions() []sysext.Compression {
	return []sysext.Compression{sysext.Zstd, sysext.Gzip, sysext.Xz, sysext.Lz4, sysext.None}
}

// Check refuses a compression Write lacks, a level out of the
// compressor's range and an epoch squashfs cannot store.
func (Builder) Check(opts sysext.BuildOptions) error {
	o := Options{Compression: opts.Compression, Level: opts.Level, Epoch: opts.Epoch}
	if _, err := o.codec(); err != nil {
		return fmt.Errorf("squashfs: %w", err)
	}
	return nil
}

var _ sysext.StreamBuilder = Builder{}

// Build writes the squashfs image of srcDir to dst with every inode's time
// set to opts.Epoch. The data of the files is compressed while the walk
// of srcDir goes on (tree.ReadStream).
func (b Builder) Build(ctx context.Context, srcDir, dst string, opts sysext.BuildOptions) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	return b.build(ctx, tree.ReadStream(ctx, srcDir), dst, " from "+srcDir, opts)
}

// BuildTree writes the squashfs image of t to dst.
func (b Builder) BuildTree(ctx context.Context, t *tree.Tree, dst string, opts sysext.BuildOptions) error {
	return b.BuildStream(ctx, t.Files(), dst, opts)
}

// BuildStream writes the squashfs image of the tree s hands out to dst,
// compressing the files as they come.
func (b Builder) BuildStream(ctx context.Context, s tree.Stream, dst string, opts sysext.BuildOptions) error {
	return b.build(ctx, s, dst, "", opts)
}

// build writes the image of s to dst, naming it and where it is from in
// errors.
func (b Builder) build(ctx context.Context, s tree.Stream, dst, from string, opts sysext.BuildOptions) error {
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("create image: %w", err)
	}
	_, err = WriteStream(ctx, f, s, Options{
		Compression: opts.Compression, Level: opts.Level, AllRoot: opts.AllRoot,
		Epoch: opts.Epoch, Workers: b.Workers,
	})
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close image: %w", cerr)
	}
	if err != nil {
		return fmt.Errorf("write squashfs %s%s: %w", dst, from, err)
	}
	return nil
}
