package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// fakeFile is a file whose size the test sets and whose syncs it counts.
type fakeFile struct {
	size  atomic.Int64
	looks atomic.Int64 // calls of Size
	syncs atomic.Int64
	err   error
}

func (f *fakeFile) Size() (int64, error) { f.looks.Add(1); return f.size.Load(), nil }
func (f *fakeFile) Sync() error          { f.syncs.Add(1); return f.err }

// settle waits until the flusher has looked at the size twice more: the
// second look began after the first one's sync (if any) ended, so it saw
// the size the test set and acted on it.
func (f *fakeFile) settle(t *testing.T) {
	t.Helper()
	want := f.looks.Load() + 2
	for deadline := time.Now().Add(10 * time.Second); f.looks.Load() < want; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the flusher stopped looking at the file")
		}
	}
}

func TestFlusherSyncsEachChunk(t *testing.T) {
	for _, tc := range []struct {
		name      string
		sizes     []int64
		wantSyncs int64
	}{
		{"nothing written", []int64{0}, 0},
		{"less than a chunk", []int64{5, 9}, 0},
		{"one chunk", []int64{10}, 1},
		{"growing by chunks", []int64{12, 15, 25, 40}, 3},
		{"truncated and written again", []int64{30, 0, 8, 12}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeFile{}
			fl := startFlusher(f.Size, f.Sync, 10, time.Millisecond)
			for _, s := range tc.sizes {
				f.size.Store(s)
				f.settle(t)
			}
			if err := fl.halt(); err != nil {
				t.Fatal(err)
			}
			if got := f.syncs.Load(); got != tc.wantSyncs {
				t.Errorf("%d syncs, want %d", got, tc.wantSyncs)
			}
		})
	}
}

func TestFailedBackgroundSyncFailsCommit(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "f")
	os.WriteFile(dst, []byte("keep"), 0o644)
	f, err := Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	eio := errors.New("input/output error")
	fake := &fakeFile{err: eio}
	fake.size.Store(100)
	f.flush.halt() // Create's own, replaced by one that fails
	f.flush = startFlusher(fake.Size, fake.Sync, 10, time.Millisecond)
	for fake.syncs.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	if err := f.Commit(0o644); !errors.Is(err, eio) {
		t.Fatalf("Commit = %v, want the background sync's error", err)
	}
	if got, _ := os.ReadFile(dst); string(got) != "keep" {
		t.Errorf("destination changed to %q", got)
	}
	assertOnly(t, dir, "f")
}

// TestWriteByNameWhileFlushing writes the file through a second
// descriptor, as an image builder given the temp file's name does, while
// the background syncs run, and checks the committed content.
func TestWriteByNameWhileFlushing(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "image.raw")
	f, err := Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Abort()
	w, err := os.OpenFile(f.Name(), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for i := 0; i < 3*flushChunk/len(chunk); i++ {
		chunk[0] = byte(i)
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(0o644); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dst)
	if err != nil || fi.Size() != 3*flushChunk {
		t.Fatalf("stat = %v, %v; want %d bytes", fi, err, 3*flushChunk)
	}
	assertOnly(t, dir, "image.raw")
}
