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

// Serve runs an OCI registry (distribution/distribution v3, in process) on
// addr, storing everything under root on the file system: what it
// acknowledged survives restarts and kill -9. It returns when ctx is done,
// after in-flight requests finish (at most 10 s).
func Serve(ctx context.Context, addr, root string, opts ...ServeOption) error {
	o := serveOptions{logLevel: logrus.FatalLevel}
	for _, opt := range opts {
		opt(&o)
	}
	if root == "" {
		return errors.New("registry root directory is empty: pass --root DIR")
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("registry root: %w", err)
	}
	if o.htpasswd != "" {
		if _, err := os.Stat(o.htpasswd); err != nil {
			return fmt.Errorf("htpasswd file: %w", err)
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
	config.HTTP.Addr = addr
	// One process serves; the secret only signs upload state between
	// requests, so a fresh one per run is enough.
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	config.HTTP.Secret = hex.EncodeToString(secret)
	config.Log.AccessLog.Disabled = true
	if o.htpasswd != "" {
		config.Auth = configuration.Auth{"htpasswd": configuration.Parameters{"realm": "bakery", "path": o.htpasswd}}
	}
	app := handlers.NewApp(ctx, config)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("registry listen: %w", err)
	}
	srv := &http.Server{Handler: app, ReadHeaderTimeout: 30 * time.Second}
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
