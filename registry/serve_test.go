package registry

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/crypto/bcrypt"

	"github.com/sysext-bakery/bakery/sign"
)

// staticKeychain answers every registry with one username and password.
type staticKeychain struct{ user, pass string }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return &authn.Basic{Username: k.user, Password: k.pass}, nil
}

// TestServeTLSAuth runs the embedded registry with TLS and htpasswd:
// anonymous and wrong-password pushes are refused, the right user pushes
// and pulls.
func TestServeTLSAuth(t *testing.T) {
	dir := t.TempDir()
	key := newKey(t, sign.ECDSAP256)
	cert, err := sign.SelfSignedCert(key, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := sign.MarshalPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"tls.crt": cert, "tls.key": keyPEM, "htpasswd": []byte("alice:" + string(hash) + "\n")}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrc, done := make(chan string, 1), make(chan error, 1)
	go func() {
		done <- Serve(ctx, "127.0.0.1:0", filepath.Join(dir, "root"), WithTLS(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")),
			WithHtpasswd(filepath.Join(dir, "htpasswd")), WithReady(func(a string) { addrc <- a }))
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatal(err)
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	img := bakeDir(t, "hello", "1.0", 4096, "x86-64")
	ref := addr + "/ns/hello"
	tests := []struct {
		name   string
		chain  authn.Keychain
		status int // 0: success
	}{
		{"anonymous", authn.NewMultiKeychain(), http.StatusUnauthorized},
		{"wrong password", staticKeychain{"alice", "nope"}, http.StatusUnauthorized},
		{"alice", staticKeychain{"alice", "s3cret"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// WithInsecure: the self-signed certificate is not trusted.
			_, err := Push(context.Background(), ref, []string{img}, WithInsecure(), WithKeychain(tt.chain), fastRetry, WithoutCatalog())
			if tt.status == 0 {
				if err != nil {
					t.Fatalf("push: %v", err)
				}
				if _, err := Pull(context.Background(), ref+":1.0", WithInsecure(), WithKeychain(tt.chain), WithArch("x86-64"), WithOutDir(t.TempDir())); err != nil {
					t.Fatalf("pull: %v", err)
				}
				return
			}
			var te *transport.Error
			if !errors.As(err, &te) || te.StatusCode != tt.status {
				t.Fatalf("push: %v, want HTTP %d", err, tt.status)
			}
		})
	}
}

// TestHandlerBesidePage mounts the registry API at /v2/ beside another
// handler at /, as the catalog page will be: both answer, and a push
// through the mux works.
func TestHandlerBesidePage(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	api, err := NewHandler(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v2/", api)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "the page") })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	if _, err := Push(ctx, host+"/ns/app", []string{bakeDir(t, "app", "1.0", 4096, "x86-64")}); err != nil {
		t.Fatalf("push through the mux: %v", err)
	}
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "the page" {
		t.Errorf("GET / = %q", body)
	}
	if _, err := Catalog(ctx, host+"/ns"); err != nil {
		t.Errorf("catalog through the mux: %v", err)
	}
}
