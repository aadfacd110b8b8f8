package sources

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sysext-bakery/bakery/internal/fixture"
)

func TestFetchSmallRefusesHugeDocumentWithoutRetrying(t *testing.T) {
	srv := fixture.Serve(t, map[string][]byte{"/sums": bytes.Repeat([]byte("0"), 2<<20)})
	f := &Fetcher{Cache: Cache{Dir: t.TempDir()}, Backoff: 1}
	_, err := f.FetchSmall(context.Background(), srv.URL+"/sums", "", accept)
	if err == nil || !strings.Contains(err.Error(), "more than the limit of 1MiB") {
		t.Fatalf("err = %v, want a size refusal", err)
	}
	if n := srv.Requests.Load(); n != 1 {
		t.Errorf("made %d requests, want 1: a size limit is not worth retrying", n)
	}
}

// TestServerWordsStayOutOfErrors: a failed download's error gives the
// status code and its standard text, not the reason phrase a server sent.
func TestServerWordsStayOutOfErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			bufio.NewReader(c).ReadString('\n')
			io.WriteString(c, "HTTP/1.1 403 token=hunter2\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			c.Close()
		}
	}()
	f := &Fetcher{Cache: Cache{Dir: t.TempDir()}, Backoff: 1}
	_, err = f.FetchSmall(context.Background(), "http://"+ln.Addr().String()+"/sums", "", accept)
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "403 Forbidden") {
		t.Errorf("err = %v, want one saying 403 Forbidden and not quoting the server", err)
	}
}

// cacheFiles lists every file (not folder) under a cache directory:
// blobs, temporary files, copies of documents.
func cacheFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	return files
}

// fetchWithin runs fetch and fails the test unless it returns within d.
func fetchWithin(t *testing.T, d time.Duration, fetch func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fetch() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("fetch still running after %v", d)
		return nil
	}
}

func TestFetchStopsAtTheSizeLimit(t *testing.T) {
	const limit = 1 << 20
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	var written atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/endless": // no Content-Length, never ends
			for {
				n, err := w.Write(chunk)
				written.Add(int64(n))
				if err != nil {
					return
				}
			}
		case "/declared": // announces a terabyte, then waits
			w.Header().Set("Content-Length", strconv.Itoa(1<<40))
			w.Write(chunk)
			<-r.Context().Done()
		}
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	large := filepath.Join(dir, "large")
	if err := os.WriteFile(large, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Truncate(large, 1<<40) // sparse: nothing to read if it is refused up front
	cases := []struct{ name, url, want string }{
		{"endless HTTP body", srv.URL + "/endless", "more than the limit of 1MiB"},
		{"HTTP Content-Length over the limit", srv.URL + "/declared", "1099511627776 bytes, more than the limit of 1MiB"},
		{"file over the limit", "file://" + large, "1099511627776 bytes, more than the limit of 1MiB"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &Fetcher{Cache: Cache{Dir: t.TempDir()}, MaxSize: limit, Backoff: 1}
			err := fetchWithin(t, 10*time.Second, func() error {
				_, err := f.Fetch(context.Background(), c.url, strings.Repeat("0", 64), dir)
				return err
			})
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "--max-source-size") {
				t.Errorf("err = %v, want one saying %q and how to raise the limit", err, c.want)
			}
			if left := cacheFiles(t, f.Cache.Dir); len(left) != 0 {
				t.Errorf("cache holds %q after the refusal", left)
			}
		})
	}
	if n := written.Load(); n > 64<<20 {
		t.Errorf("the endless body sent %d bytes before the fetch hung up", n)
	}
}

func TestFetchStopsWhenCancelled(t *testing.T) {
	started := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 64<<10)
		for i := 0; ; i++ {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			if i == 16 { // 1 MiB is in flight
				w.(http.Flusher).Flush()
				once.Do(func() { close(started) })
			}
		}
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("content"), 0o644)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		name string
		url  string
		ctx  func() context.Context
	}{
		{"HTTP mid-download", srv.URL + "/endless", func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			go func() { <-started; cancel() }()
			return ctx
		}},
		{"file, cancelled before", "file://" + file, func() context.Context { return cancelled }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &Fetcher{Cache: Cache{Dir: t.TempDir()}, Backoff: 1}
			ctx := c.ctx()
			err := fetchWithin(t, 3*time.Second, func() error {
				_, err := f.Fetch(ctx, c.url, strings.Repeat("0", 64), dir)
				return err
			})
			if !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want context.Canceled", err)
			}
			if left := cacheFiles(t, f.Cache.Dir); len(left) != 0 {
				t.Errorf("cache holds %q after the cancelled fetch", left)
			}
		})
	}
}

func TestFetchRefusesFilesThatAreNotRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(dir, "folder"), 0o755)
	cases := []struct {
		name, path, want string
		allow            bool
	}{
		{"/dev/zero", "/dev/zero", "/dev/zero is a character device, not a regular file", true},
		{"fifo", fifo, fifo + " is a fifo, not a regular file", false},
		{"folder", filepath.Join(dir, "folder"), "is a directory, not a regular file", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &Fetcher{Cache: Cache{Dir: t.TempDir()}, AllowFileURLs: c.allow}
			for _, fetch := range []func() error{
				func() error {
					_, err := f.Fetch(context.Background(), "file://"+c.path, strings.Repeat("0", 64), dir)
					return err
				},
				func() error { _, err := f.FetchSmall(context.Background(), "file://"+c.path, dir, accept); return err },
			} {
				err := fetchWithin(t, 5*time.Second, fetch)
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Errorf("err = %v, want one saying %q", err, c.want)
				}
			}
			if left := cacheFiles(t, f.Cache.Dir); len(left) != 0 {
				t.Errorf("cache holds %q", left)
			}
		})
	}
}

func TestFetchSmallKeepsNoCopyOfLocalFiles(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "sums"), []byte(strings.Repeat("a", 64)+"  x\n"), 0o644)
	f := &Fetcher{Cache: Cache{Dir: t.TempDir()}}
	if _, err := f.FetchSmall(context.Background(), "file://"+dir+"/sums", dir, accept); err != nil {
		t.Fatal(err)
	}
	if left := cacheFiles(t, f.Cache.Dir); len(left) != 0 {
		t.Errorf("cache holds %q: a local file may be a secret, and it is at hand anyway", left)
	}
}

// accept takes any document.
func accept([]byte) error { return nil }

// TestFetchSmallCachesOnlyWhatParses: a checksum document that does not
// parse is not kept, so a fixed upstream is read again; one that parses is
// kept for offline rebuilds.
func TestFetchSmallCachesOnlyWhatParses(t *testing.T) {
	docs := map[string][]byte{"/sums": []byte("garbage")}
	srv := fixture.Serve(t, docs)
	f := &Fetcher{Cache: Cache{Dir: t.TempDir()}, Backoff: 1}
	refuse := errors.New("not a checksum file")
	check := func(b []byte) error {
		if string(b) == "garbage" {
			return refuse
		}
		return nil
	}
	if _, err := f.FetchSmall(context.Background(), srv.URL+"/sums", "", check); !errors.Is(err, refuse) {
		t.Fatalf("err = %v, want the check's", err)
	}
	docs["/sums"] = []byte("fixed")
	for range 2 {
		got, err := f.FetchSmall(context.Background(), srv.URL+"/sums", "", check)
		if err != nil || string(got) != "fixed" {
			t.Fatalf("FetchSmall = %q, %v", got, err)
		}
	}
	if n := srv.Requests.Load(); n != 2 {
		t.Errorf("%d requests, want 2: the bad document fetched once, the good one once and then cached", n)
	}
}
