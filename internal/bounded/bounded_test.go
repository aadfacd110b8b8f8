package bounded

import (
	"strings"
	"testing"
	"time"
)

var sink []byte

func TestCheck(t *testing.T) {
	l := Limits{Time: 500 * time.Millisecond, Alloc: 16 << 20}
	block := make(chan struct{})
	defer close(block)
	// finishedAllocating lets the test wait until the call left running
	// has stopped allocating, so that its allocations do not count against
	// the next case.
	finishedAllocating := make(chan struct{})
	for _, tc := range []struct {
		name string
		fn   func()
		want string
		wait <-chan struct{}
	}{
		{"within", func() { sink = make([]byte, 1<<20) }, "", nil},
		{"allocates", func() { sink = make([]byte, 32<<20) }, "allocated 32 MiB", nil},
		{"allocates while running", func() {
			for range 64 {
				sink = make([]byte, 1<<20)
			}
			close(finishedAllocating)
			<-block
		}, "still running", finishedAllocating},
		{"hangs", func() { <-block }, "still running after 500ms", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(l, tc.fn)
			if tc.wait != nil {
				<-tc.wait
			}
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Check = %v, want %q", err, tc.want)
			}
		})
	}
}
