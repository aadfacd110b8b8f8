package registry

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// faultProxy sits between client and registry and breaks the requests
// match selects, the given number of times (-1: always).
type faultProxy struct {
	upstream string
	mu       sync.Mutex
	fault    string
	match    func(*http.Request) bool
	left     int
	injected int
}

// isBlobGet matches downloads of image-sized blobs.
func isBlobGet(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:")
}

// isUpload matches blob upload requests carrying data.
func isUpload(r *http.Request) bool {
	return (r.Method == http.MethodPatch || r.Method == http.MethodPut) && strings.Contains(r.URL.Path, "/blobs/uploads/") && r.ContentLength != 0
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	inject := p.match != nil && p.left != 0 && p.match(r)
	if inject {
		p.left--
		p.injected++
	}
	fault := p.fault
	p.mu.Unlock()
	if !inject {
		p.forward(w, r, "")
		return
	}
	switch fault {
	case "500":
		io.Copy(io.Discard, r.Body)
		http.Error(w, "injected", http.StatusInternalServerError)
	case "429":
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Retry-After", "0")
		http.Error(w, "injected", http.StatusTooManyRequests)
	case "reset-request": // the connection dies while the client sends data
		io.CopyN(io.Discard, r.Body, r.ContentLength/2+1)
		hijackClose(w, true)
	default:
		p.forward(w, r, fault)
	}
}

// forward passes r to the registry; fault "reset" and "truncate" cut the
// response body in half (RST or FIN), "corrupt" flips its bytes.
func (p *faultProxy) forward(w http.ResponseWriter, r *http.Request, fault string) {
	out, err := http.NewRequestWithContext(r.Context(), r.Method, "http://"+p.upstream+r.URL.RequestURI(), r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out.Header = r.Header.Clone()
	out.ContentLength = r.ContentLength
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		if k == "Location" { // keep uploads going through the proxy
			for i := range v {
				if u, err := url.Parse(v[i]); err == nil && u.Host == p.upstream {
					u.Host = r.Host
					v[i] = u.String()
				}
			}
		}
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	switch fault {
	case "reset", "truncate":
		n, _ := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64)
		io.CopyN(w, resp.Body, n/2)
		hijackClose(w, fault == "reset")
	case "corrupt":
		buf, _ := io.ReadAll(resp.Body)
		for i := range buf {
			buf[i] ^= 0xff
		}
		w.Write(buf)
	default:
		io.Copy(w, resp.Body)
	}
}

// hijackClose ends the connection under w: with a TCP reset when rst.
func hijackClose(w http.ResponseWriter, rst bool) {
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok && rst {
		tc.SetLinger(0)
	}
	conn.Close()
}

// TestFaults pushes and pulls through a proxy that injects server errors,
// rate limits, connection resets and truncated or corrupted bodies: each
// transfer either succeeds with the exact bytes or fails with a clear
// error, and never leaves a partial file.
func TestFaults(t *testing.T) {
	up := startEmbedded(t, t.TempDir())
	proxy := &faultProxy{upstream: up}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	dir := bakeDir(t, "faulty", "1.0", 1<<20, "x86-64")
	src := filepath.Join(dir, "faulty-1.0-x86-64.raw")
	ctx := context.Background()

	tests := []struct {
		name    string
		push    bool // fault the push (else the pull)
		fault   string
		match   func(*http.Request) bool
		times   int
		wantErr string // "" = must succeed
	}{
		{"push 500", true, "500", isUpload, 2, ""},
		{"push 429", true, "429", isUpload, 2, ""},
		{"push reset mid-upload", true, "reset-request", isUpload, 1, ""},
		{"push 500 forever", true, "500", isUpload, -1, "500"},
		{"pull 500", false, "500", isBlobGet, 2, ""},
		{"pull 429", false, "429", isBlobGet, 2, ""},
		{"pull reset mid-blob", false, "reset", isBlobGet, 2, ""},
		{"pull truncated body", false, "truncate", isBlobGet, 2, ""},
		{"pull reset forever", false, "reset", isBlobGet, -1, "gave up"},
		{"pull corrupted body", false, "corrupt", isBlobGet, -1, "wrong content"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := host + "/faults/r" + strconv.Itoa(i) + "/faulty"
			arm := func() {
				proxy.mu.Lock()
				proxy.fault, proxy.match, proxy.left, proxy.injected = tt.fault, tt.match, tt.times, 0
				proxy.mu.Unlock()
			}
			disarm := func() int {
				proxy.mu.Lock()
				defer proxy.mu.Unlock()
				proxy.match = nil
				return proxy.injected
			}
			if tt.push {
				arm()
			}
			_, err := Push(ctx, repo, []string{dir}, fastRetry, WithoutCatalog())
			if tt.push {
				if injected := disarm(); injected == 0 {
					t.Fatal("no fault was injected: the test proves nothing")
				}
				checkOutcome(t, err, tt.wantErr)
				if err != nil {
					return
				}
			} else if err != nil {
				t.Fatalf("clean push: %v", err)
			}
			out := t.TempDir()
			if !tt.push {
				arm()
			}
			res, err := Pull(ctx, repo+":latest", WithArch("x86-64"), WithOutDir(out), fastRetry)
			if injected := disarm(); !tt.push && injected == 0 {
				t.Fatal("no fault was injected: the test proves nothing")
			}
			if tt.push {
				checkOutcome(t, err, "")
			} else {
				checkOutcome(t, err, tt.wantErr)
			}
			files := listDir(t, out)
			if err != nil {
				if len(files) != 0 {
					t.Errorf("failed pull left %v", files)
				}
				return
			}
			if len(files) != 1 || fileSHA(t, res.Path) != fileSHA(t, src) {
				t.Errorf("pull wrote %v; content matches: %v", files, len(files) == 1 && fileSHA(t, res.Path) == fileSHA(t, src))
			}
		})
	}
}

// checkOutcome wants success when wantErr is "", else an error naming it.
func checkOutcome(t *testing.T, err error, wantErr string) {
	t.Helper()
	switch {
	case wantErr == "" && err != nil:
		t.Fatalf("want success despite the faults, got %v", err)
	case wantErr != "" && err == nil:
		t.Fatalf("want an error mentioning %q, got success", wantErr)
	case wantErr != "" && !strings.Contains(err.Error(), wantErr):
		t.Fatalf("error %q does not mention %q", err, wantErr)
	}
}

// TestPullLeavesExistingFile checks a failed pull does not touch a file
// already at the destination.
func TestPullLeavesExistingFile(t *testing.T) {
	up := startEmbedded(t, t.TempDir())
	proxy := &faultProxy{upstream: up}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	dir := bakeDir(t, "keep", "1.0", 4096, "x86-64")
	if _, err := Push(context.Background(), host+"/ns/keep", []string{dir}, WithoutCatalog()); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "keep.raw")
	if err := os.WriteFile(dest, []byte("previous image"), 0o644); err != nil {
		t.Fatal(err)
	}
	proxy.mu.Lock()
	proxy.fault, proxy.match, proxy.left = "corrupt", isBlobGet, -1
	proxy.mu.Unlock()
	if _, err := Pull(context.Background(), host+"/ns/keep:1.0", WithArch("x86-64"), WithDest(dest), fastRetry); err == nil {
		t.Fatal("pull of corrupted content succeeded")
	}
	if data, _ := os.ReadFile(dest); string(data) != "previous image" {
		t.Errorf("destination changed to %d bytes", len(data))
	}
	if files := listDir(t, filepath.Dir(dest)); len(files) != 1 {
		t.Errorf("left %v", files)
	}
}
