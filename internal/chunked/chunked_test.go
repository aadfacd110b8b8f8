package chunked

import "testing"

// TestSlice appends across chunk boundaries and checks that elements keep
// their values and their addresses.
func TestSlice(t *testing.T) {
	var s Slice[int64]
	first := (*int64)(nil)
	for i := range 3*chunkLen + 7 {
		if got := s.Append(int64(i) * 3); got != i {
			t.Fatalf("Append returned index %d, want %d", got, i)
		}
		if i == 0 {
			first = s.At(0)
		}
	}
	if s.Len() != 3*chunkLen+7 {
		t.Fatalf("Len = %d", s.Len())
	}
	for _, i := range []int{0, 1, chunkLen - 1, chunkLen, 2*chunkLen + 1, 3*chunkLen + 6} {
		if *s.At(i) != int64(i)*3 {
			t.Errorf("At(%d) = %d, want %d", i, *s.At(i), i*3)
		}
	}
	if s.At(0) != first {
		t.Error("element 0 moved while the slice grew")
	}
	*s.At(chunkLen) = -1
	if *s.At(chunkLen) != -1 {
		t.Error("write through At lost")
	}
}
