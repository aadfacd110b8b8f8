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
	for _, tc := range []struct {
		name string
		fn   func()
		want string
	}{
		{"within", func() { sink = make([]byte, 1<<20) }, ""},
		{"allocates", func() { sink = make([]byte, 32<<20) }, "allocated 32 MiB"},
		{"allocates while running", func() {
			for range 64 {
				sink = make([]byte, 1<<20)
			}
			<-block
		}, "still running"},
		{"hangs", func() { <-block }, "still running after 500ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(l, tc.fn)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Check = %v, want %q", err, tc.want)
			}
		})
	}
}
