package bakery

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
)

func TestFetchSmallRefusesHugeDocumentWithoutRetrying(t *testing.T) {
	srv := serveFiles(t, map[string][]byte{"/sums": bytes.Repeat([]byte("0"), 2<<20)})
	f := &Fetcher{Cache: Cache{Dir: t.TempDir()}, Backoff: 1}
	_, err := f.FetchSmall(bakeCtx, srv.URL+"/sums")
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v, want a size refusal", err)
	}
	if n := srv.requests.Load(); n != 1 {
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
	_, err = f.FetchSmall(bakeCtx, "http://"+ln.Addr().String()+"/sums")
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "403 Forbidden") {
		t.Errorf("err = %v, want one saying 403 Forbidden and not quoting the server", err)
	}
}
