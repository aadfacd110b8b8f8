package merge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sysext-bakery/bakery/internal/atomicfile"
	"github.com/sysext-bakery/bakery/sysext"
)

// StateDir is where bakery keeps what it verified, relative to the root.
const StateDir = "var/lib/bakery"

// stateSchema is the version of state.json this bakery writes. Schema 1
// (no "schema" key) recorded a "verified" time even for images installed
// without any signature check; its entries load without a verification,
// so a policy requiring signatures merges them again only after a sync
// has checked their signatures.
const stateSchema = 2

// maxStateSize bounds how much of state.json is read.
const maxStateSize = 16 << 20

// State is /var/lib/bakery/state.json: for each extension sync installed,
// what it installed and, apart from that, the signature check it passed;
// and for each signed catalog, the newest sequence seen.
type State struct {
	Schema     int                   `json:"schema"`
	Extensions map[string]*Installed `json:"extensions"`
	// Catalogs maps a registry namespace (sync.yaml's registry) to the
	// newest signed catalog sync accepted from it.
	Catalogs map[string]*CatalogSeen `json:"catalogs,omitempty"`
}

// Installed is one extension as sync installed it.
type Installed struct {
	// Class is the extension's image class, "sysext" or "confext";
	// entries without one (written before classes) are sysexts.
	Class string `json:"class,omitempty"`
	// Ref is the reference it was pulled from.
	Ref string `json:"ref"`
	// Version is the extension's version.
	Version string `json:"version,omitempty"`
	// Digest is the sha256 of the installed NAME.raw, "sha256:HEX".
	Digest string `json:"digest"`
	// Installed is when NAME.raw was put in place.
	Installed time.Time `json:"installed"`
	// Verification is the signature check the installed image passed,
	// nil when it was installed without one (a sync.yaml without keys).
	Verification *Verification `json:"verification,omitempty"`
	// Pending is an image being installed: set just before NAME.raw is
	// replaced and cleared after, so that state.json covers the installed
	// image whenever a sync is interrupted.
	Pending *Version `json:"pending,omitempty"`
	// Previous is the image kept for rollback.
	Previous *Version `json:"previous,omitempty"`
}

// Version is one image of an extension, with its verification.
type Version struct {
	Version      string        `json:"version,omitempty"`
	Digest       string        `json:"digest"`
	Ref          string        `json:"ref,omitempty"`
	Verification *Verification `json:"verification,omitempty"`
}

// Verification is a signature check an image passed.
type Verification struct {
	// At is when the signature was checked.
	At time.Time `json:"at"`
	// Signature is the digest of the signature artifact that verified.
	Signature string `json:"signature,omitempty"`
	// Key is the hint of the trusted key that signed it.
	Key string `json:"key,omitempty"`
}

// CatalogSeen is the newest signed catalog of a namespace sync accepted.
type CatalogSeen struct {
	Sequence int64     `json:"sequence"`
	At       time.Time `json:"at"`
}

// DamagedStateError means state.json exists but cannot be trusted: it
// does not parse, or says impossible things. It holds the downgrade
// protection (installed versions) and the verification records; see
// README's "Threat model" for what a damaged one costs.
type DamagedStateError struct {
	Path string
	Err  error
}

// Error names the file and what is wrong, never its content.
func (e *DamagedStateError) Error() string { return fmt.Sprintf("%s is damaged: %v", e.Path, e.Err) }

// Unwrap returns what is wrong.
func (e *DamagedStateError) Unwrap() error { return e.Err }

// statePath is state.json's path under root.
func statePath(root string) string { return filepath.Join(root, StateDir, "state.json") }

// emptyState is the state of a node sync never ran on.
func emptyState() *State {
	return &State{Schema: stateSchema, Extensions: map[string]*Installed{}, Catalogs: map[string]*CatalogSeen{}}
}

// LoadState reads state.json under root; a missing file is an empty
// state, a damaged one a *DamagedStateError.
func LoadState(root string) (*State, error) {
	p := statePath(root)
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return emptyState(), nil
	}
	if errors.Is(err, unix.ELOOP) {
		return nil, &DamagedStateError{Path: p, Err: errors.New("it is a symlink")}
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, &DamagedStateError{Path: p, Err: errors.New("it is not a regular file")}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxStateSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	if len(data) > maxStateSize {
		return nil, &DamagedStateError{Path: p, Err: fmt.Errorf("larger than %d bytes", maxStateSize)}
	}
	st, err := ParseState(data)
	if err != nil {
		return nil, &DamagedStateError{Path: p, Err: err}
	}
	return st, nil
}

// ParseState parses a state.json and checks every entry: a valid
// extension name, and digests of the form sha256:HEX.
func ParseState(data []byte) (*State, error) {
	st := &State{}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(st); err != nil {
		return nil, fmt.Errorf("not valid state JSON (%s)", jsonErrorKind(err))
	}
	if dec.More() {
		return nil, errors.New("not valid state JSON (data after the document)")
	}
	if st.Schema > stateSchema {
		return nil, fmt.Errorf("schema %d is newer than this bakery's %d: upgrade bakery", st.Schema, stateSchema)
	}
	st.Schema = stateSchema
	if st.Extensions == nil {
		st.Extensions = map[string]*Installed{}
	}
	if st.Catalogs == nil {
		st.Catalogs = map[string]*CatalogSeen{}
	}
	for name, in := range st.Extensions {
		if err := checkEntry(name, in); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// checkEntry checks one extension's entry of state.json.
func checkEntry(name string, in *Installed) error {
	if err := sysext.CheckName(name); err != nil {
		return fmt.Errorf("extension key: %w", err)
	}
	if in == nil {
		return fmt.Errorf("extension %s: null entry", name)
	}
	if _, err := sysext.ClassByName(in.Class); err != nil {
		return fmt.Errorf("extension %s: class is not an image class (sysext or confext)", name)
	}
	if in.Digest == "" && in.Pending == nil {
		return fmt.Errorf("extension %s: no digest", name)
	}
	for what, d := range map[string]string{"digest": in.Digest, "pending digest": pendingDigest(in.Pending), "previous digest": pendingDigest(in.Previous)} {
		if d != "" && !isDigest(d) {
			return fmt.Errorf("extension %s: %s is not sha256:HEX", name, what)
		}
	}
	return nil
}

// pendingDigest is v's digest, or "" for no version.
func pendingDigest(v *Version) string {
	if v == nil {
		return ""
	}
	return v.Digest
}

// isDigest tells a digest of the form sha256:<64 lower-case hex digits>.
func isDigest(d string) bool {
	hexPart, ok := strings.CutPrefix(d, "sha256:")
	return ok && len(hexPart) == 64 && !strings.ContainsFunc(hexPart, func(c rune) bool {
		return !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f')
	})
}

// jsonErrorKind describes a JSON error without quoting the document.
func jsonErrorKind(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %s has the wrong type at byte %d", typ.Field, typ.Offset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated"
	}
	return "unreadable"
}

// Save writes state.json atomically.
func (st *State) Save(root string) error {
	st.Schema = stateSchema
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(statePath(root), append(data, '\n'), 0o644)
}

// class is the image class of in: its Class, sysext when unset (an entry
// of an older bakery). ParseState has checked the name.
func (in *Installed) class() sysext.Class {
	c, _ := sysext.ClassByName(in.Class)
	return c
}

// LoadPolicy builds the trust policy of a merge of class c under root:
// only entries of that class count as verified; signatures are
// required when require is set or the configuration's policy says so (cfg,
// or, when nil, ROOT/etc/bakery/sync.yaml), and the verified digests come
// from state.json (the installed one, or one being installed by an
// interrupted sync, when its signature was checked). A damaged state.json
// does not stop the merge: the policy then knows no verified digest and
// says why (Policy.StateDamaged), and the returned warning tells the
// caller. The certificates trusted to sign DDIs come from
// LoadCertificates; a certificate that cannot be read is a warning.
func LoadPolicy(root string, c sysext.Class, require bool, cfg *Config) (Policy, []string, error) {
	if cfg == nil {
		loaded, err := LoadConfig(filepath.Join(root, ConfigPath))
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return Policy{}, nil, err
		default:
			cfg = loaded
		}
	}
	if cfg != nil {
		require = require || cfg.Policy.RequireSignature
	}
	p := Policy{RequireSignature: require, Verified: map[string][]string{}}
	var warnings []string
	p.Certificates, warnings = LoadCertificates(root, cfg)
	st, err := LoadState(root)
	var damaged *DamagedStateError
	if errors.As(err, &damaged) {
		p.StateDamaged = damaged.Error()
		warning := damaged.Error() + ": merging as if no image were verified"
		if require {
			warning += "; with signatures required, no image is merged until `bakery sync` has verified them again (DDIs signed by a trusted certificate excepted)"
		}
		return p, append(warnings, warning), nil
	}
	if err != nil {
		return Policy{}, nil, err
	}
	for name, in := range st.Extensions {
		if in.class().Name != c.Name {
			continue
		}
		if in.Digest != "" && in.Verification != nil {
			p.Verified[name] = append(p.Verified[name], in.Digest)
		}
		if in.Pending != nil && in.Pending.Verification != nil {
			p.Verified[name] = append(p.Verified[name], in.Pending.Digest)
		}
	}
	return p, warnings, nil
}

// Lock takes the lock that serializes sync, merge and refresh under root,
// waiting for it; the returned function releases it.
func Lock(root string) (unlock func(), err error) {
	dir := filepath.Join(root, StateDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s for the lock file: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}
