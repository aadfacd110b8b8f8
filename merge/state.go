package merge

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sysext-bakery/bakery/internal/atomicfile"
)

// StateDir is where bakery keeps what it verified, relative to the root.
const StateDir = "var/lib/bakery"

// State is /var/lib/bakery/state.json: for each extension sync installed,
// the digests it verified against a trusted key.
type State struct {
	Extensions map[string]*Installed `json:"extensions"`
}

// Installed is one extension as sync installed it.
type Installed struct {
	// Ref is the reference it was pulled from.
	Ref string `json:"ref"`
	// Version is the extension's version.
	Version string `json:"version,omitempty"`
	// Digest is the sha256 of the installed NAME.raw, "sha256:HEX".
	Digest string `json:"digest"`
	// Pending is a verified digest being installed: set just before
	// NAME.raw is replaced and cleared after, so that state.json covers the
	// installed image whenever a sync is interrupted.
	Pending *Version `json:"pending,omitempty"`
	// Previous is the image kept for rollback.
	Previous *Version `json:"previous,omitempty"`
	// Verified is when the signature was last checked.
	Verified time.Time `json:"verified"`
}

// Version is one verified image of an extension.
type Version struct {
	Version string `json:"version,omitempty"`
	Digest  string `json:"digest"`
	Ref     string `json:"ref,omitempty"`
}

// statePath is state.json's path under root.
func statePath(root string) string { return filepath.Join(root, StateDir, "state.json") }

// LoadState reads state.json under root; a missing file is an empty state.
func LoadState(root string) (*State, error) {
	data, err := os.ReadFile(statePath(root))
	if errors.Is(err, fs.ErrNotExist) {
		return &State{Extensions: map[string]*Installed{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	st, err := ParseState(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (remove it and run `bakery sync` to verify the images again)", statePath(root), err)
	}
	return st, nil
}

// ParseState parses a state.json; every entry must name a digest it
// verified.
func ParseState(data []byte) (*State, error) {
	st := &State{}
	if err := json.Unmarshal(data, st); err != nil {
		return nil, err
	}
	if st.Extensions == nil {
		st.Extensions = map[string]*Installed{}
	}
	for name, in := range st.Extensions {
		switch {
		case in == nil:
			return nil, fmt.Errorf("extension %q: null entry", name)
		case checkName(name) != "":
			return nil, fmt.Errorf("extension %q: %s", name, checkName(name))
		case in.Digest == "" && in.Pending == nil:
			return nil, fmt.Errorf("extension %s: no digest", name)
		}
	}
	return st, nil
}

// Save writes state.json atomically.
func (st *State) Save(root string) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(root, StateDir), 0o755); err != nil {
		return fmt.Errorf("create state directory: %w", err)
	}
	return atomicfile.WriteFile(statePath(root), append(data, '\n'), 0o644)
}

// LoadPolicy builds the trust policy of a merge under root: signatures are
// required when require is set or sync.yaml's policy says so, and the
// verified digests come from state.json (the installed one, or one being
// installed by an interrupted sync).
func LoadPolicy(root string, require bool) (Policy, error) {
	cfg, err := LoadConfig(filepath.Join(root, ConfigPath))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return Policy{}, err
	default:
		require = require || cfg.Policy.RequireSignature
	}
	st, err := LoadState(root)
	if err != nil {
		return Policy{}, err
	}
	p := Policy{RequireSignature: require, Verified: map[string][]string{}}
	for name, in := range st.Extensions {
		if in.Digest != "" {
			p.Verified[name] = append(p.Verified[name], in.Digest)
		}
		if in.Pending != nil {
			p.Verified[name] = append(p.Verified[name], in.Pending.Digest)
		}
	}
	return p, nil
}

// Lock takes the lock that serializes sync, merge and refresh under root,
// waiting for it; the returned function releases it.
func Lock(root string) (unlock func(), err error) {
	dir := filepath.Join(root, StateDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s for the lock file: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}
