// Package bounded checks, in tests and fuzz targets, that a call finishes
// in bounded time and allocates bounded memory, so that a reader that
// loops or balloons on a hostile input fails fast instead of hanging.
package bounded

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// Limits bound one call.
type Limits struct {
	// Time is the longest the call may run.
	Time time.Duration
	// Alloc is the most it may allocate, in bytes, counted as the growth
	// of runtime.MemStats.TotalAlloc: what other goroutines allocate
	// meanwhile counts too.
	Alloc uint64
}

// Fuzz are the limits of one input of a fuzz target.
var Fuzz = Limits{Time: time.Second, Alloc: 64 << 20}

// Test are the limits of a unit test's call on a hostile input: the same
// memory, more time for a loaded machine.
var Test = Limits{Time: 10 * time.Second, Alloc: 64 << 20}

// pollEvery is how often a running call's allocations are checked.
const pollEvery = 20 * time.Millisecond

// Check runs fn in a goroutine and returns an error as soon as it runs
// longer or allocates more than l allows; fn is then left running. A panic
// in fn is not recovered.
func Check(l Limits, fn func()) error {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.TotalAlloc
	allocated := func() uint64 {
		runtime.ReadMemStats(&ms)
		return ms.TotalAlloc - base
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	start := time.Now()
	deadline := time.NewTimer(l.Time)
	defer deadline.Stop()
	poll := time.NewTicker(pollEvery)
	defer poll.Stop()
	for {
		select {
		case <-done:
			if a := allocated(); a > l.Alloc {
				return fmt.Errorf("allocated %d MiB, more than the %d MiB allowed", a>>20, l.Alloc>>20)
			}
			return nil
		case <-poll.C:
			if a := allocated(); a > l.Alloc {
				return fmt.Errorf("allocated %d MiB after %v and still running, more than the %d MiB allowed", a>>20, time.Since(start).Round(time.Millisecond), l.Alloc>>20)
			}
		case <-deadline.C:
			return fmt.Errorf("still running after %v, allocated %d MiB", l.Time, allocated()>>20)
		}
	}
}

// Run is Check that fails t.
func Run(t testing.TB, l Limits, fn func()) {
	t.Helper()
	if err := Check(l, fn); err != nil {
		t.Fatal(err)
	}
}
