package sysext

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"
)

// ExtensionRelease is what bakery writes into an image's
// extension-release.NAME (Class.ReleasePath).
type ExtensionRelease struct {
	// Class says which fields hold the level, scope and name; the zero
	// Class is Sysext.
	Class Class
	// ID is the host OS ID the extension is for, or "_any" (the default
	// when empty) for any OS.
	ID string
	// VersionID ties the extension to the host's VERSION_ID; Level to its
	// SYSEXT_LEVEL (CONFEXT_LEVEL). VersionID needs an ID other than "_any".
	VersionID, Level string
	// Architecture is a systemd architecture name, or "_any" or empty for any.
	Architecture string
	// Scope lists where the extension applies: system, initrd, portable.
	// Empty means systemd's default, "system portable".
	Scope []string
	// ReloadManager asks systemd to reload its units after a merge.
	ReloadManager bool
	// ExtensionID and ExtensionVersion name the extension itself
	// (SYSEXT_ID and SYSEXT_VERSION_ID, or CONFEXT_…; informational).
	ExtensionID, ExtensionVersion string
}

// class is e's class, Sysext when unset.
func (e ExtensionRelease) class() Class {
	if e.Class.Name == "" {
		return Sysext
	}
	return e.Class
}

// Release returns the fields of e as they are written to the file: ID
// ("_any" when empty), VERSION_ID and the level when set, ARCHITECTURE,
// the scope when set, EXTENSION_RELOAD_MANAGER=1 when asked, and the
// extension's own ID and version when set.
func (e ExtensionRelease) Release() Release {
	c := e.class()
	r := Release{"ID": cmp.Or(e.ID, "_any")}
	set := func(k, v string) {
		if v != "" {
			r[k] = v
		}
	}
	set("VERSION_ID", e.VersionID)
	set(c.LevelField, e.Level)
	set("ARCHITECTURE", e.Architecture)
	set(c.ScopeField, strings.Join(e.Scope, " "))
	if e.ReloadManager {
		r["EXTENSION_RELOAD_MANAGER"] = "1"
	}
	set(c.IDField, e.ExtensionID)
	set(c.VersionField, e.ExtensionVersion)
	return r
}

// Extension reads the extension fields of class c out of r, the inverse of
// ExtensionRelease.Release for a file that c.ValidateRelease accepts.
func (r Release) Extension(c Class) ExtensionRelease {
	reload, _ := parseBool(r["EXTENSION_RELOAD_MANAGER"])
	return ExtensionRelease{
		Class:            c,
		ID:               r["ID"],
		VersionID:        r["VERSION_ID"],
		Level:            r[c.LevelField],
		Architecture:     r["ARCHITECTURE"],
		Scope:            words(r[c.ScopeField]),
		ReloadManager:    reload,
		ExtensionID:      r[c.IDField],
		ExtensionVersion: r[c.VersionField],
	}
}

// Validate checks e as its class's ValidateRelease checks the file it
// gives.
func (e ExtensionRelease) Validate() error { return e.class().ValidateRelease(e.Release()) }

// ValidateRelease checks an extension-release file of class c, reporting
// every problem: ID is present and a valid os-release ID or "_any";
// VERSION_ID and the level (SYSEXT_LEVEL, CONFEXT_LEVEL), when present, are
// valid versions (systemd's
// version_is_valid(): letters, digits and . , _ + -), and VERSION_ID comes
// with an ID other than "_any", since systemd ignores it otherwise
// (a level with ID=_any is allowed as information, as in DESIGN.md's
// example recipe); ARCHITECTURE is a
// systemd architecture name or "_any"; the scope lists only system,
// initrd and portable; EXTENSION_RELOAD_MANAGER is a boolean; every key is a
// valid name and every value UTF-8.
func (c Class) ValidateRelease(r Release) error {
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
	for _, k := range []string{"VERSION_ID", c.LevelField} {
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
	if s, ok := r[c.ScopeField]; ok {
		scopes := words(s)
		if len(scopes) == 0 {
			bad("%s is empty, so the extension applies nowhere: list system, initrd or portable, or drop it for \"system portable\"", c.ScopeField)
		}
		for _, w := range scopes {
			if !slices.Contains([]string{"system", "initrd", "portable"}, w) {
				bad("%s %s: %s is not a scope: use system, initrd or portable", c.ScopeField, quoted(s), quoted(w))
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
