package sysext

import (
	"context"
	"io"
	"io/fs"
	"strings"
	"testing"
)

// fakeBuilder is a builder that only says its name and compressions.
type fakeBuilder struct {
	name  string
	comps []Compression
}

func (b fakeBuilder) Name() string                                            { return b.name }
func (b fakeBuilder) Compressions() []Compression                             { return b.comps }
func (fakeBuilder) Check(BuildOptions) error                                  { return nil }
func (fakeBuilder) Build(context.Context, string, string, BuildOptions) error { return nil }

// fakeFormat is a format with the given builders.
type fakeFormat []Builder

func (fakeFormat) Name() string                    { return "fakefs" }
func (fakeFormat) KernelType() string              { return "fakefs" }
func (fakeFormat) Detect(io.ReaderAt) bool         { return false }
func (fakeFormat) Open(io.ReaderAt) (fs.FS, error) { return nil, nil }
func (fakeFormat) Reads(Compression) bool          { return true }
func (f fakeFormat) Builders() []Builder           { return f }

func TestSelectBuilder(t *testing.T) {
	f := fakeFormat{
		fakeBuilder{"native", []Compression{None, Zstd}},
		fakeBuilder{"tool", []Compression{Zstd, Lz4}},
		fakeBuilder{"other", []Compression{Xz}},
	}
	for _, tt := range []struct {
		name, builder string
		c             Compression
		want, err     string
	}{
		{"default", "", "", "native", ""},
		{"default's compression", "", Zstd, "native", ""},
		{"only another writes it", "", Lz4, "tool", ""},
		{"only the last writes it", "", Xz, "other", ""},
		{"nobody writes it: the default says why", "", "brotli", "native", ""},
		{"named", "tool", None, "tool", ""},
		{"named default", "native", Lz4, "native", ""},
		{"unknown name", "mksquashfs", "", "", `builder "mksquashfs" cannot write fakefs (use native, tool or other)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := SelectBuilder(f, tt.builder, tt.c)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("SelectBuilder = %v, %v; want an error containing %q", b, err, tt.err)
				}
				return
			}
			if err != nil || b.Name() != tt.want {
				t.Errorf("SelectBuilder = %v, %v; want %s", b, err, tt.want)
			}
		})
	}
}
