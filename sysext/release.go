// Package sysext defines the systemd system extension image format:
// extension-release metadata, architectures, host matching, image detection.
package sysext

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/sysext-bakery/bakery/internal/clip"
)

// Release holds the fields of an os-release or extension-release file, keyed
// by variable name. A missing key and an empty value are different: systemd
// treats both as unset, except for SYSEXT_SCOPE (see Match).
type Release map[string]string

// MaxReleaseSize is the largest release file ParseRelease reads.
const MaxReleaseSize = 1 << 20

// The characters systemd's env-file parser treats specially
// (src/basic/string-util.h, src/basic/escape.h).
const (
	whitespace      = " \t\n\r"
	newlines        = "\n\r"
	comments        = "#;"
	shellNeedEscape = "\"\\`$"
)

// parser states, named as in systemd's parse_env_file_internal().
const (
	preKey = iota
	inKey
	preValue
	inValue
	valueEscape
	singleQuote
	doubleQuote
	doubleQuoteEscape
	inComment
)

// maxQuoted is how much of a text from a release file an error message
// shows: a file may hold a megabyte on one line, or terminal escapes.
const maxQuoted = 64

// quoted quotes text from a release file for an error message.
func quoted(s string) string { return clip.Quote(s, maxQuoted) }

// keyName shows a key for an error message: as it is when it is a valid
// name of at most maxQuoted bytes, else quoted.
func keyName(k string) string {
	if isEnvName(k) && len(k) <= maxQuoted {
		return k
	}
	return quoted(k)
}

// ParseRelease reads an os-release or extension-release file the way
// systemd's env-file parser does (src/basic/env-file.c): comments start with
// # or ; where a key could start; KEY=value with the value unquoted,
// 'single-quoted' (literal) or "double-quoted" (a backslash escapes only
// " \ ` $, and is kept before any other character); quoted and unquoted parts
// of one value are joined; outside quotes a backslash takes the next
// character literally; a backslash before a newline joins the lines; spaces
// around keys and around unquoted values are dropped. The last assignment to
// a key wins.
//
// ParseRelease is stricter than systemd, which skips such lines silently: a
// line without "=", a key that is not a valid environment variable name, an
// unterminated quote, a NUL byte or a value that is not UTF-8 is an error
// naming the line.
func ParseRelease(r io.Reader) (Release, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxReleaseSize+1))
	if err != nil {
		return nil, fmt.Errorf("read release file: %w", err)
	}
	if len(data) > MaxReleaseSize {
		return nil, fmt.Errorf("release file is larger than %d bytes: it must hold only KEY=value lines", MaxReleaseSize)
	}
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return nil, fmt.Errorf("line %d: NUL byte: a release file is text, remove it", 1+bytes.Count(data[:i], []byte{'\n'}))
	}

	rel := Release{}
	var (
		state             = preKey
		key, value        []byte
		keyEnd, valueEnd  = -1, -1 // where trailing whitespace starts, or -1
		line              = 1
		keyLine, openLine int // where the key and the open quote are
	)
	push := func() error {
		if keyEnd >= 0 {
			key = key[:keyEnd]
		}
		if valueEnd >= 0 {
			value = value[:valueEnd]
		}
		k, v := string(key), string(value)
		if !isEnvName(k) {
			return fmt.Errorf("line %d: key %s is not a valid name: use letters, digits and _, not starting with a digit", keyLine, quoted(k))
		}
		if !utf8.ValidString(v) {
			return fmt.Errorf("line %d: %s: value is not valid UTF-8: re-encode the file as UTF-8", keyLine, keyName(k))
		}
		rel[k] = v
		key, value, keyEnd, valueEnd = key[:0], nil, -1, -1
		return nil
	}
	for _, c := range data {
		is := func(set string) bool { return strings.IndexByte(set, c) >= 0 }
		switch state {
		case preKey:
			if is(comments) {
				state = inComment
			} else if !is(whitespace) {
				state, keyLine, keyEnd = inKey, line, -1
				key = append(key, c)
			}
		case inKey:
			switch {
			case is(newlines):
				return nil, fmt.Errorf("line %d: %s has no \"=\": write KEY=value, or start a comment with #", keyLine, quoted(string(key)))
			case c == '=':
				state, valueEnd = preValue, -1
			default:
				if !is(whitespace) {
					keyEnd = -1
				} else if keyEnd < 0 {
					keyEnd = len(key)
				}
				key = append(key, c)
			}
		case preValue:
			switch {
			case is(newlines):
				state = preKey
				if err := push(); err != nil {
					return nil, err
				}
			case c == '\'':
				state, openLine = singleQuote, line
			case c == '"':
				state, openLine = doubleQuote, line
			case c == '\\':
				state = valueEscape
			case !is(whitespace):
				state = inValue
				value = append(value, c)
			}
		case inValue:
			switch {
			case is(newlines):
				state = preKey
				if err := push(); err != nil {
					return nil, err
				}
			case c == '\\':
				state, valueEnd = valueEscape, -1
			default:
				if !is(whitespace) {
					valueEnd = -1
				} else if valueEnd < 0 {
					valueEnd = len(value)
				}
				value = append(value, c)
			}
		case valueEscape:
			state = inValue
			if !is(newlines) { // an escaped newline joins the lines
				value = append(value, c)
			}
		case singleQuote:
			if c == '\'' {
				state = preValue
			} else {
				value = append(value, c)
			}
		case doubleQuote:
			switch c {
			case '"':
				state = preValue
			case '\\':
				state = doubleQuoteEscape
			default:
				value = append(value, c)
			}
		case doubleQuoteEscape:
			state = doubleQuote
			switch {
			case is(shellNeedEscape):
				value = append(value, c)
			case c != '\n': // an escaped newline joins the lines
				value = append(value, '\\', c)
			}
		case inComment: // systemd ≥ 254: a comment ends at the newline, backslash or not
			if is(newlines) {
				state = preKey
			}
		}
		if c == '\n' {
			line++
		}
	}
	switch state {
	case inKey:
		return nil, fmt.Errorf("line %d: %s has no \"=\": write KEY=value, or start a comment with #", keyLine, quoted(string(key)))
	case singleQuote, doubleQuote, doubleQuoteEscape:
		q := `"`
		if state == singleQuote {
			q = "'"
		}
		return nil, fmt.Errorf("line %d: %s: unterminated %s quote: close the value with %s", openLine, keyName(string(key)), q, q)
	case preValue, inValue, valueEscape:
		if err := push(); err != nil {
			return nil, err
		}
	}
	return rel, nil
}

// isEnvName reports whether s is a valid environment variable name, as
// systemd's env_name_is_valid() decides.
func isEnvName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, c := range []byte(s) {
		if !(c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// renderOrder is the order Render writes the fields it knows; other fields
// follow, sorted by name.
var renderOrder = []string{
	"ID", "ID_LIKE", "VERSION_ID", "SYSEXT_LEVEL", "ARCHITECTURE", "SYSEXT_SCOPE",
	"EXTENSION_RELOAD_MANAGER", "SYSEXT_ID", "SYSEXT_VERSION_ID",
}

// Render writes r as a release file, one KEY=value line per field, in a fixed
// order, quoting values when needed, so that ParseRelease (and systemd, and a
// POSIX shell) read the same fields back. Keys are written as they are: a
// Release from ParseRelease or ExtensionRelease.Release always has valid keys,
// and ValidateRelease reports any that are not.
func (r Release) Render() []byte {
	rank := func(k string) int {
		if i := slices.Index(renderOrder, k); i >= 0 {
			return i
		}
		return len(renderOrder)
	}
	keys := slices.SortedFunc(maps.Keys(r), func(a, b string) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), strings.Compare(a, b))
	})
	var b bytes.Buffer
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(quote(r[k]))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// quote returns v as is when every character is plain for both a shell and
// systemd, or else double-quoted with " \ ` $ escaped.
func quote(v string) string {
	plain := func(c rune) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._+,:/@%-", c)
	}
	if !strings.ContainsFunc(v, func(c rune) bool { return !plain(c) }) {
		return v
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range v {
		if strings.ContainsRune(shellNeedEscape, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	b.WriteByte('"')
	return b.String()
}

// ExtensionRelease is what bakery writes into an image's
// usr/lib/extension-release.d/extension-release.NAME.
type ExtensionRelease struct {
	// ID is the host OS ID the extension is for, or "_any" (the default
	// when empty) for any OS.
	ID string
	// VersionID ties the extension to the host's VERSION_ID; SysextLevel to
	// its SYSEXT_LEVEL. Either needs an ID other than "_any".
	VersionID, SysextLevel string
	// Architecture is a systemd architecture name, or "_any" or empty for any.
	Architecture string
	// Scope lists where the extension applies: system, initrd, portable.
	// Empty means systemd's default, "system portable".
	Scope []string
	// ReloadManager asks systemd to reload its units after a merge.
	ReloadManager bool
	// SysextID and SysextVersionID name the extension itself (informational).
	SysextID, SysextVersionID string
}

// Release returns the fields of e as they are written to the file: ID
// ("_any" when empty), VERSION_ID and SYSEXT_LEVEL when set, ARCHITECTURE,
// SYSEXT_SCOPE when set, EXTENSION_RELOAD_MANAGER=1 when asked, SYSEXT_ID and
// SYSEXT_VERSION_ID when set.
func (e ExtensionRelease) Release() Release {
	r := Release{"ID": cmp.Or(e.ID, "_any")}
	set := func(k, v string) {
		if v != "" {
			r[k] = v
		}
	}
	set("VERSION_ID", e.VersionID)
	set("SYSEXT_LEVEL", e.SysextLevel)
	set("ARCHITECTURE", e.Architecture)
	set("SYSEXT_SCOPE", strings.Join(e.Scope, " "))
	if e.ReloadManager {
		r["EXTENSION_RELOAD_MANAGER"] = "1"
	}
	set("SYSEXT_ID", e.SysextID)
	set("SYSEXT_VERSION_ID", e.SysextVersionID)
	return r
}

// Extension reads the extension fields out of r, the inverse of
// ExtensionRelease.Release for a file that ValidateRelease accepts.
func (r Release) Extension() ExtensionRelease {
	reload, _ := parseBool(r["EXTENSION_RELOAD_MANAGER"])
	return ExtensionRelease{
		ID:              r["ID"],
		VersionID:       r["VERSION_ID"],
		SysextLevel:     r["SYSEXT_LEVEL"],
		Architecture:    r["ARCHITECTURE"],
		Scope:           words(r["SYSEXT_SCOPE"]),
		ReloadManager:   reload,
		SysextID:        r["SYSEXT_ID"],
		SysextVersionID: r["SYSEXT_VERSION_ID"],
	}
}

// Validate checks e as ValidateRelease checks the file it gives.
func (e ExtensionRelease) Validate() error { return ValidateRelease(e.Release()) }

// ValidateRelease checks an extension-release file's fields, reporting every
// problem: ID is present and a valid os-release ID or "_any"; VERSION_ID and
// SYSEXT_LEVEL, when present, are valid versions (systemd's
// version_is_valid(): letters, digits and . , _ + -), and VERSION_ID comes
// with an ID other than "_any", since systemd ignores it otherwise
// (SYSEXT_LEVEL with ID=_any is allowed as information, as in DESIGN.md's
// example recipe); ARCHITECTURE is a
// systemd architecture name or "_any"; SYSEXT_SCOPE lists only system,
// initrd and portable; EXTENSION_RELOAD_MANAGER is a boolean; every key is a
// valid name and every value UTF-8.
func ValidateRelease(r Release) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, k := range slices.Sorted(maps.Keys(r)) {
		if !isEnvName(k) {
			bad("key %s is not a valid name: use letters, digits and _, not starting with a digit", quoted(k))
		}
		if !utf8.ValidString(r[k]) || strings.ContainsRune(r[k], 0) {
			bad("%s: value is not UTF-8 text: remove the invalid bytes", keyName(k))
		}
	}
	id, ok := r["ID"]
	switch {
	case !ok || id == "":
		bad("ID is missing: set ID=_any, or ID= the host's os-release ID to tie the extension to that OS")
	case !isOSReleaseID(id):
		bad("ID %s is not a valid os-release ID: use lower-case letters, digits, ., _ and -, or _any", quoted(id))
	}
	for _, k := range []string{"VERSION_ID", "SYSEXT_LEVEL"} {
		v, ok := r[k]
		switch {
		case !ok:
		case !isVersion(v):
			bad("%s %s is not a valid version: use letters, digits, ., ,, _, + and -", k, quoted(v))
		case id == "_any" && k == "VERSION_ID":
			bad("VERSION_ID %s is ignored with ID=_any: set ID to the host's os-release ID, or drop VERSION_ID", quoted(v))
		}
	}
	if a, ok := r["ARCHITECTURE"]; ok && a != "_any" && !slices.Contains(systemdArchNames, a) {
		bad("ARCHITECTURE %s is not a systemd architecture: use one of %s, or _any", quoted(a), strings.Join(systemdArchNames, ", "))
	}
	if s, ok := r["SYSEXT_SCOPE"]; ok {
		scopes := words(s)
		if len(scopes) == 0 {
			bad("SYSEXT_SCOPE is empty, so the extension applies nowhere: list system, initrd or portable, or drop it for \"system portable\"")
		}
		for _, w := range scopes {
			if !slices.Contains([]string{"system", "initrd", "portable"}, w) {
				bad("SYSEXT_SCOPE %s: %s is not a scope: use system, initrd or portable", quoted(s), quoted(w))
			}
		}
	}
	if v, ok := r["EXTENSION_RELOAD_MANAGER"]; ok {
		if _, err := parseBool(v); err != nil {
			bad("EXTENSION_RELOAD_MANAGER %s is not a boolean: use 1 or 0", quoted(v))
		}
	}
	return errors.Join(errs...)
}

// isOSReleaseID reports whether s is a valid os-release ID: lower-case
// letters, digits, ".", "_" and "-" (os-release(5)).
func isOSReleaseID(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-')
	})
}

// isVersion is systemd's version_is_valid(): a non-empty file name part of
// letters, digits and ".,_+-".
func isVersion(s string) bool {
	return s != "" && len(s) <= 255 && !strings.ContainsFunc(s, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(".,_+-", c))
	})
}

// words splits s at systemd's whitespace, as strv_split(s, WHITESPACE) does.
func words(s string) []string {
	return strings.FieldsFunc(s, func(c rune) bool { return strings.ContainsRune(whitespace, c) })
}

// parseBool is systemd's parse_boolean().
func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "1", "yes", "y", "true", "t", "on":
		return true, nil
	case "0", "no", "n", "false", "f", "off":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean", s)
}
