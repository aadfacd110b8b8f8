package download

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// body is the resource every server of the tests serves.
var body = bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB

// behaviour answers request n (1-based), from byte off (0 without Range).
type behaviour func(w http.ResponseWriter, n int, off int64)

// serveRange answers as a server that honours Range.
func serveRange(w http.ResponseWriter, off int64) {
	if off > 0 {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, len(body)-1, len(body)))
		w.Header().Set("Content-Length", strconv.Itoa(len(body)-int(off)))
		w.WriteHeader(http.StatusPartialContent)
	}
	w.Write(body[off:])
}

// breakAfter sends the headers of the whole answer, then k bytes, then
// drops the connection.
func breakAfter(w http.ResponseWriter, off int64, k int) {
	w.Header().Set("Content-Length", strconv.Itoa(len(body)-int(off)))
	if off > 0 {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, len(body)-1, len(body)))
		w.WriteHeader(http.StatusPartialContent)
	}
	w.Write(body[off : int(off)+k])
	w.(http.Flusher).Flush()
	conn, _, _ := w.(http.Hijacker).Hijack()
	conn.Close()
}

func TestGet(t *testing.T) {
	tests := []struct {
		name     string
		serve    behaviour
		opts     Options
		wantErr  string // "" = the whole body arrives
		requests int
		ranges   bool // a later request had a Range header
	}{
		{"whole", func(w http.ResponseWriter, n int, off int64) { serveRange(w, off) }, Options{Size: -1}, "", 1, false},
		{"resumed after a broken connection", func(w http.ResponseWriter, n int, off int64) {
			if n == 1 {
				breakAfter(w, off, 300_000)
				return
			}
			serveRange(w, off)
		}, Options{Size: int64(len(body))}, "", 2, true},
		{"started over when Range is ignored", func(w http.ResponseWriter, n int, off int64) {
			if n == 1 {
				breakAfter(w, 0, 300_000)
				return
			}
			w.Write(body) // 200 with the whole body
		}, Options{Size: int64(len(body))}, "", 2, true},
		{"started over on another range", func(w http.ResponseWriter, n int, off int64) {
			switch {
			case n == 1:
				breakAfter(w, 0, 300_000)
			case off > 0:
				w.Header().Set("Content-Range", "bytes 0-10/100")
				w.WriteHeader(http.StatusPartialContent)
				w.Write(body[:11])
			default:
				w.Write(body)
			}
		}, Options{Size: int64(len(body)), Backoff: time.Millisecond}, "", 3, true},
		{"not found is final", func(w http.ResponseWriter, n int, off int64) { http.NotFound(w, nil) }, Options{Size: -1}, "404 Not Found", 1, false},
		{"unavailable until given up", func(w http.ResponseWriter, n int, off int64) { w.WriteHeader(http.StatusServiceUnavailable) },
			Options{Size: -1, Stalls: 3, Backoff: time.Millisecond}, "gave up after 3 attempts", 3, false},
		{"declared too large", func(w http.ResponseWriter, n int, off int64) { serveRange(w, off) },
			Options{Size: -1, MaxSize: 1000, Advice: "raise it"}, "more than the limit of 1000B; raise it", 1, false},
		{"too large without a length", func(w http.ResponseWriter, n int, off int64) {
			w.(http.Flusher).Flush() // chunked: no Content-Length
			w.Write(body)
		}, Options{Size: -1, MaxSize: 4096}, "more than the limit of 4KiB", 1, false},
		{"short answer of a known size", func(w http.ResponseWriter, n int, off int64) {
			if n == 1 {
				w.Write(body[:1000]) // a complete answer, but short
				return
			}
			serveRange(w, off)
		}, Options{Size: int64(len(body))}, "", 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var requests atomic.Int32
			var ranged atomic.Bool
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := int(requests.Add(1))
				var off int64
				if rg := r.Header.Get("Range"); rg != "" {
					ranged.Store(true)
					off, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"), 10, 64)
				}
				tt.serve(w, n, off)
			}))
			defer srv.Close()
			var buf bytes.Buffer
			h := sha256.New()
			target := Target{Writers: []io.Writer{&buf, h}, Reset: func() error { buf.Reset(); h.Reset(); return nil }}
			var last int64
			tt.opts.Progress = func(done, total int64) { last = done }
			n, err := Get(context.Background(), srv.Client(), srv.URL, target, tt.opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Get = %d, %v; want an error saying %q", n, err, tt.wantErr)
				}
			} else {
				want := sha256.Sum256(body)
				if err != nil || n != int64(len(body)) || !bytes.Equal(h.Sum(nil), want[:]) || !bytes.Equal(buf.Bytes(), body) {
					t.Fatalf("Get = %d, %v; %d bytes, right content: %v", n, err, buf.Len(), bytes.Equal(buf.Bytes(), body))
				}
				if last != n {
					t.Errorf("progress ended at %d of %d", last, n)
				}
			}
			if got := int(requests.Load()); got != tt.requests {
				t.Errorf("%d requests, want %d", got, tt.requests)
			}
			if ranged.Load() != tt.ranges {
				t.Errorf("a Range request: %v, want %v", ranged.Load(), tt.ranges)
			}
		})
	}
}

// TestGetStopsWhenCancelled cancels a download that never ends.
func TestGetStopsWhenCancelled(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for r.Context().Err() == nil {
			if _, err := w.Write(body[:4096]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			time.Sleep(time.Millisecond)
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var buf bytes.Buffer
	start := time.Now()
	_, err := Get(ctx, srv.Client(), srv.URL, Target{Writers: []io.Writer{&buf}, Reset: func() error { buf.Reset(); return nil }}, Options{Size: -1})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("Get = %v after %v, want the context's error promptly", err, time.Since(start))
	}
}
