package bakery

import (
	"fmt"
	"slices"

	"github.com/sysext-bakery/bakery/internal/join"
	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/formats"
)

// checkBuild refuses image options bake must not use or the builder b
// cannot, so that a bake fails on them before fetching anything: b must
// be one of f's builders and accept opts, and f's own reader must read
// what b writes, since every baked image is read back (image inspect,
// push).
func checkBuild(f sysext.Format, b sysext.Builder, opts sysext.BuildOptions) error {
	if !slices.ContainsFunc(f.Builders(), func(fb sysext.Builder) bool { return fb.Name() == b.Name() }) {
		return fmt.Errorf("builder %s does not write %s", b.Name(), f.Name())
	}
	if err := b.Check(opts); err != nil {
		return err
	}
	if c := opts.Compression; !f.Reads(c) {
		return fmt.Errorf("--format %s --compression %s: bakery's own reader (image inspect, push) cannot read compressed %s, so bake does not write it; use --compression %s, or --format %s",
			f.Name(), c, f.Name(), join.Or(readable(f)), join.Or(reading(c)))
	}
	return nil
}

// readable lists the compressions of f's builders that f's reader reads.
func readable(f sysext.Format) []string {
	var out []string
	for _, b := range f.Builders() {
		for _, c := range b.Compressions() {
			if f.Reads(c) && !slices.Contains(out, string(c)) {
				out = append(out, string(c))
			}
		}
	}
	return out
}

// reading lists the formats bake writes compressed with c: a builder
// writes it and the format's reader reads it.
func reading(c sysext.Compression) []string {
	var out []string
	for _, f := range formats.All() {
		if f.Reads(c) && slices.ContainsFunc(f.Builders(), func(b sysext.Builder) bool { return slices.Contains(b.Compressions(), c) }) {
			out = append(out, f.Name())
		}
	}
	return out
}
