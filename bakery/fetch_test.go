package bakery

import (
	"bytes"
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
