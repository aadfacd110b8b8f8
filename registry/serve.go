package registry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/sirupsen/logrus"

	// The storage driver and access controller Serve configures.
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
)

// NewHandler returns an OCI registry (distribution/distribution v3's app,
// in process) storing everything under root on the file system, as an
// http.Handler to mount at /v2/: what it acknowledged survives restarts
// and kill -9. The handler lives until ctx is done.
func NewHandler(ctx context.Context, root string, opts ...ServeOption) (http.Handler, error) {
	o := makeServeOptions(opts)
	if root == "" {
		return nil, errors.New("registry root directory is empty: pass --root DIR")
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("registry root: %w", err)
	}
	if o.htpasswd != "" {
		if _, err := os.Stat(o.htpasswd); err != nil {
			return nil, fmt.Errorf("htpasswd file: %w", err)
		}
	}
	// distribution logs through logrus' standard logger: this level is
	// process-wide.
	logrus.SetLevel(o.logLevel)
	config := &configuration.Configuration{
		Storage: configuration.Storage{
			"filesystem": configuration.Parameters{"rootdirectory": root},
			"delete":     configuration.Parameters{"enabled": true},
		},
	}
	// Parsing a configuration file fills in these defaults; a struct built
	// in code must set them, or /v2/_catalog refuses every n and lists
	// nothing.
	config.Catalog.MaxEntries = 1000
	config.Tags.MaxTags = 1000
	// One process serves; the secret only signs upload state between
	// requests, so a fresh one per run is enough.
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	config.HTTP.Secret = hex.EncodeToString(secret)
	config.Log.AccessLog.Disabled = true
	if o.htpasswd != "" {
		config.Auth = configuration.Auth{"htpasswd": configuration.Parameters{"realm": "bakery", "path": o.htpasswd}}
	}
	return handlers.NewApp(ctx, config), nil
}

// Serve runs the registry of NewHandler on addr, its API at /v2/ (and
// WithPage's handler at /), until ctx is done; it then returns after
// in-flight requests finish (at most 10 s).
func Serve(ctx context.Context, addr, root string, opts ...ServeOption) error {
	o := makeServeOptions(opts)
	app, err := NewHandler(ctx, root, opts...)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/v2/", app)
	if o.page != nil {
		mux.Handle("/", o.page(app))
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("registry listen: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second}
	errc := make(chan error, 1)
	go func() {
		if o.certFile != "" {
			errc <- srv.ServeTLS(ln, o.certFile, o.keyFile)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	if o.ready != nil {
		o.ready(ln.Addr().String())
	}
	select {
	case err := <-errc:
		return fmt.Errorf("registry: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("registry shutdown: %w", err)
	}
	return nil
}
