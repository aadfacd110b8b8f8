package stage

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// file writes a regular file at full, replacing any earlier file without
// reading or changing it (so hard links to the old file keep the old
// content).
func (s *stager) file(full string, m *member) error {
	if m.size > s.limit {
		return refused(ErrTooLarge, "%d bytes declared, %d allowed (MaxBytes)", m.size, s.limit)
	}
	mode := m.mode
	if s.mode != 0 {
		mode = s.mode
	}
	body, err := m.open()
	if err != nil {
		return refused(ErrFormat, "%v", err)
	}
	defer body.Close()
	n, err := s.writeFile(full, body, m.size, mode)
	if err != nil {
		return err
	}
	s.limit -= n
	s.result.Bytes += n
	return s.sink.File(full, mode, n)
}

// writeFile writes exactly size bytes of r (all of r when size is -1,
// within the limit) to full with mode, as replace makes entries (what is
// at a taken name passes existing's checks first), and records it as a
// hard link target. Runs of zeros become holes.
func (s *stager) writeFile(full string, r io.Reader, size int64, mode fs.FileMode) (int64, error) {
	var n int64
	err := s.replace(full, func(d *os.Root, name string) error {
		f, err := d.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if s.buf == nil {
			s.buf = make([]byte, 2*copyBlock)
		}
		n, err = copySparse(s.ctx, f, r, size, s.limit, s.buf)
		if err == nil {
			err = f.Chmod(mode)
		}
		if err == nil {
			err = s.recordWritten(f)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	}, func(d *os.Root, base string) error {
		_, err := s.existing(d, full, base, kindFile)
		return err
	})
	return n, err
}

// copyBlock is the unit of copying and of hole detection.
const copyBlock = 128 << 10

// copySparse copies r to the new, empty file f, skipping zero blocks so they
// become holes, until ctx is done. With size >= 0 exactly size bytes must
// come; with size -1, r is read to its end. More than limit bytes fail
// with ErrTooLarge. scratch holds 2*copyBlock bytes, the second half zeros.
func copySparse(ctx context.Context, f *os.File, r io.Reader, size, limit int64, scratch []byte) (int64, error) {
	want := size
	if size < 0 {
		want = limit + 1
	}
	buf, zero := scratch[:copyBlock], scratch[copyBlock:2*copyBlock]
	var n int64
	holeAtEnd := false
	for n < want {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		chunk := buf[:min(int64(len(buf)), want-n)]
		k, err := io.ReadFull(r, chunk)
		if k > 0 {
			if bytes.Equal(chunk[:k], zero[:k]) {
				if _, err := f.Seek(int64(k), io.SeekCurrent); err != nil {
					return n, err
				}
				holeAtEnd = true
			} else {
				if _, err := f.Write(chunk[:k]); err != nil {
					return n, err
				}
				holeAtEnd = false
			}
			n += int64(k)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			if size >= 0 {
				return n, refused(ErrFormat, "content ends after %d of %d bytes", n, size)
			}
			break
		}
		if err != nil {
			return n, fmt.Errorf("reading content: %w", err)
		}
	}
	if size >= 0 {
		// Read past the declared end: a zip entry verifies its checksum
		// there, and a longer body is corrupt.
		var one [1]byte
		k, err := r.Read(one[:])
		if k > 0 {
			return n, refused(ErrFormat, "content runs past the declared %d bytes", size)
		}
		if err != nil && err != io.EOF {
			return n, refused(ErrFormat, "checking the content: %v", err)
		}
	}
	if n > limit {
		return n, refused(ErrTooLarge, "more than %d bytes (MaxBytes)", limit)
	}
	if holeAtEnd {
		if err := f.Truncate(n); err != nil {
			return n, err
		}
	}
	return n, nil
}
