package bakery

import (
	"context"
	"fmt"

	"github.com/sysext-bakery/bakery/internal/atomicfile"
	"github.com/sysext-bakery/bakery/internal/digest"
	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/ddi"
	"github.com/sysext-bakery/bakery/sysext/sidecar"
)

// Output is an image written to temporary files beside its destination,
// with its dm-verity sidecars when it is signed and plain: none is
// visible until Commit.
type Output struct {
	// SHA256 is the image's digest, once Digest read it.
	SHA256 string
	// Size is the image's size.
	Size int64
	// Sidecars are the destinations of the sidecar files, if any.
	Sidecars []string
	files    []*atomicfile.File
}

// WriteImage has b write the image of the tree at srcDir for dst. With
// opts.Signing, a DDI carries the signature itself; a plain image gets
// the sidecars NAME.verity, NAME.roothash and NAME.roothash.p7s (package
// sysext/sidecar) beside it. The image is not read back for its digest
// unless the caller asks (Digest): image create prints none.
func WriteImage(ctx context.Context, b sysext.Builder, srcDir, dst string, opts sysext.BuildOptions) (*Output, error) {
	return writeOutput(ctx, dst, opts, func(tmp string) error { return b.Build(ctx, srcDir, tmp, opts) })
}

// writeOutput has build write an image into tmp, a temporary file beside
// dst, then, as WriteImage says, makes its sidecars.
func writeOutput(ctx context.Context, dst string, opts sysext.BuildOptions, build func(tmp string) error) (*Output, error) {
	tmp, err := atomicfile.Create(dst)
	if err != nil {
		return nil, err
	}
	o := &Output{files: []*atomicfile.File{tmp}}
	if err := build(tmp.Name()); err != nil {
		o.Abort()
		return nil, err
	}
	fi, err := tmp.Stat()
	if err != nil {
		o.Abort()
		return nil, err
	}
	o.Size = fi.Size()
	if opts.Signing != nil && !ddi.Detect(tmp) {
		files, _, err := sidecar.Create(ctx, tmp, o.Size, dst, opts.Signing)
		if err != nil {
			o.Abort()
			return nil, err
		}
		o.files = append(o.files, files...)
		for _, suffix := range []string{sidecar.VeritySuffix, sidecar.RootHashSuffix, sidecar.SignatureSuffix} {
			o.Sidecars = append(o.Sidecars, sidecar.Base(dst)+suffix)
		}
	}
	return o, nil
}

// Digest reads the image back for its sha256 into SHA256, before Commit
// (it reads the temporary file): the native writers seek back to write
// their headers at offset 0 last, so the digest cannot be taken as they
// write.
func (o *Output) Digest() error {
	sum, size, err := digest.File(o.files[0].Name())
	if err != nil {
		return err
	}
	if size != o.Size {
		return fmt.Errorf("%s: %d bytes, %d when written", o.files[0].Name(), size, o.Size)
	}
	o.SHA256 = sum.Hex
	return nil
}

// Commit makes the image and its sidecars visible, the sidecars first.
func (o *Output) Commit() error {
	for i := len(o.files) - 1; i >= 0; i-- {
		if err := o.files[i].Commit(0o644); err != nil {
			return fmt.Errorf("commit %s: %w", o.files[i].Name(), err)
		}
	}
	return nil
}

// Abort removes what was written.
func (o *Output) Abort() {
	for _, f := range o.files {
		f.Abort()
	}
}
