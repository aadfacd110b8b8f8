package stage

import (
	"context"
	"io/fs"
)

// Sink is told of each entry Archive, Layers, Tree and File write into
// the staging root, once it is in place, so that a caller can build the
// tree it holds as it is written instead of walking the root afterwards:
// a directory made or given a mode, a regular file written (replacing
// what was there), a symbolic link, a hard link to a regular file written
// before, and an entry removed (by an image layer's whiteout, or as a
// later layer's member could not replace it; a directory only once empty,
// after what it held). Paths are slash-separated, relative to the root,
// and cleaned (no leading "/"). The stager decides every path; a Sink
// only observes, but an error from it stops the staging with that error
// (bake refuses a source's file at the release file's path this way).
type Sink interface {
	Dir(path string, mode fs.FileMode) error
	File(path string, mode fs.FileMode, size int64) error
	Symlink(path, target string) error
	Link(path, target string) error
	Remove(path string) error
}

// sinkKey is the context key of a Sink.
type sinkKey struct{}

// WithSink returns a context under which Archive, Layers, Tree and File
// tell s of what they write and remove.
func WithSink(ctx context.Context, s Sink) context.Context {
	return context.WithValue(ctx, sinkKey{}, s)
}

// sinkOf is the Sink of ctx, or one that ignores everything.
func sinkOf(ctx context.Context) Sink {
	if s, ok := ctx.Value(sinkKey{}).(Sink); ok {
		return s
	}
	return noSink{}
}

// noSink ignores what the stager writes.
type noSink struct{}

func (noSink) Dir(string, fs.FileMode) error         { return nil }
func (noSink) File(string, fs.FileMode, int64) error { return nil }
func (noSink) Symlink(string, string) error          { return nil }
func (noSink) Link(string, string) error             { return nil }
func (noSink) Remove(string) error                   { return nil }
