package sysext

import (
	"bytes"
	"cmp"
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
// treats both as unset, except for the scope (see Class.Match).
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
	"ID", "ID_LIKE", "VERSION_ID", "SYSEXT_LEVEL", "CONFEXT_LEVEL", "ARCHITECTURE", "SYSEXT_SCOPE", "CONFEXT_SCOPE",
	"EXTENSION_RELOAD_MANAGER", "SYSEXT_ID", "CONFEXT_ID", "SYSEXT_VERSION_ID", "CONFEXT_VERSION_ID",
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
