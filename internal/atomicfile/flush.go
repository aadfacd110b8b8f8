package atomicfile

import (
	"time"
)

// Background flushing: on virtual disks the cost of a sync grows with the
// data it flushes (the host writes its cache out), so one sync at the end
// of a large file can cost a tenth of a second per 200 MB. Syncing each new
// chunk while the file is still being written overlaps that cost with the
// writing; Commit's sync then only flushes the last chunk.
const (
	flushChunk = 16 << 20              // sync after this many new bytes
	flushPoll  = 20 * time.Millisecond // how often the size is looked at
)

// flusher syncs a growing file in the background.
type flusher struct {
	size  func() (int64, error)
	sync  func() error
	chunk int64
	poll  time.Duration
	stop  chan struct{}
	done  chan struct{}
	err   error // the first failed sync; read only after done is closed
}

// startFlusher polls size every poll and calls sync whenever the file has
// grown by chunk bytes since the last sync.
func startFlusher(size func() (int64, error), sync func() error, chunk int64, poll time.Duration) *flusher {
	fl := &flusher{size: size, sync: sync, chunk: chunk, poll: poll,
		stop: make(chan struct{}), done: make(chan struct{})}
	go fl.run()
	return fl
}

func (fl *flusher) run() {
	defer close(fl.done)
	tick := time.NewTicker(fl.poll)
	defer tick.Stop()
	var synced int64
	for {
		select {
		case <-fl.stop:
			return
		case <-tick.C:
		}
		size, err := fl.size()
		if err != nil {
			continue // the final sync in Commit reports real trouble
		}
		if size < synced { // truncated: a download starting over
			synced = size
		}
		if size-synced < fl.chunk {
			continue
		}
		if err := fl.sync(); err != nil {
			// Linux reports a write-back error to one sync per open file
			// only, so it is kept for Commit rather than lost here.
			fl.err = err
			return
		}
		synced = size
	}
}

// halt stops the flusher, waiting for a sync in progress, and returns the
// error of a failed background sync.
func (fl *flusher) halt() error {
	close(fl.stop)
	<-fl.done
	return fl.err
}
