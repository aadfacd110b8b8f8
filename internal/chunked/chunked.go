// Package chunked is a slice that grows by fixed-size chunks: growing it
// copies nothing and leaves no garbage behind, and a pointer to an element
// stays valid, so that a table of a million small records costs what its
// records do and no more, even while it grows.
package chunked

// chunkLen is the number of elements of a chunk.
const chunkLen = 4096

// Slice is a growing sequence of T; the zero value is empty.
type Slice[T any] struct {
	chunks [][]T
	n      int
}

// Append adds v at the end and returns its index.
func (s *Slice[T]) Append(v T) int {
	if s.n%chunkLen == 0 {
		s.chunks = append(s.chunks, make([]T, 0, chunkLen))
	}
	c := &s.chunks[len(s.chunks)-1]
	*c = append(*c, v)
	s.n++
	return s.n - 1
}

// At returns the element at index i, which stays where it is.
func (s *Slice[T]) At(i int) *T { return &s.chunks[i/chunkLen][i%chunkLen] }

// Len is the number of elements.
func (s *Slice[T]) Len() int { return s.n }
