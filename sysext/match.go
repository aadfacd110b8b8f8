package sysext

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// IncompatibleError says why an extension does not fit a host: the
// extension-release field that decided it and the reason. Match returns it,
// for callers to tell with errors.As an incompatible image (reported and
// skipped) from a broken host.
type IncompatibleError struct {
	// Field is the extension-release field that failed, e.g. "SYSEXT_LEVEL";
	// empty when the extension-release file has no fields at all.
	Field string
	// Reason completes the sentence that starts with Field.
	Reason string
}

// Error reads as one sentence, e.g. `SYSEXT_LEVEL "1.0" does not match host
// SYSEXT_LEVEL "2.0"`.
func (e *IncompatibleError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + " " + e.Reason
}

func incompatible(field, format string, args ...any) error {
	return &IncompatibleError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Match decides whether the extension of class c whose extension-release
// is ext may be merged onto host (the host's os-release), as systemd 257's
// extension_release_validate() does, checking in its order and reporting the
// first rule that fails (the level and scope fields are c's: SYSEXT_LEVEL
// and SYSEXT_SCOPE, or CONFEXT_LEVEL and CONFEXT_SCOPE):
//
//  1. an extension-release without any field is refused;
//  2. SYSEXT_SCOPE (when missing, "system portable") must list scope, e.g.
//     "system" or "initrd"; an empty scope skips this check;
//  3. ARCHITECTURE, when set and not "_any", must be hostArch (a systemd
//     architecture name, e.g. HostArch().Name);
//  4. ID must be set; "_any" matches any host without a version check;
//     otherwise it must be the host's ID or one of the words of its ID_LIKE;
//  5. a host with neither VERSION_ID nor SYSEXT_LEVEL (a rolling release)
//     matches; when both sides have SYSEXT_LEVEL they must be equal; else, when
//     the host has VERSION_ID, the extension must have the same VERSION_ID.
//
// The extension's own ID and version (SYSEXT_ID, SYSEXT_VERSION_ID) take no
// part in matching. A refusal is an *IncompatibleError. A host without ID is
// an error of the host, not of the extension: systemd merges nothing then.
func (c Class) Match(ext, host Release, scope, hostArch string) error {
	if host["ID"] == "" {
		return errors.New("host os-release has no ID: set ID= in the host's /etc/os-release or /usr/lib/os-release")
	}
	if len(ext) == 0 {
		return incompatible("", "extension-release has no fields: it must set at least ID")
	}

	if scope != "" {
		scopes := []string{"system", "portable"}
		if s, set := ext[c.ScopeField]; set {
			scopes = words(s)
		}
		if !slices.Contains(scopes, scope) {
			return incompatible(c.ScopeField, "%q does not include this host's scope %q", strings.Join(scopes, " "), scope)
		}
	}

	if a := ext["ARCHITECTURE"]; a != "" && a != "_any" && a != hostArch {
		return incompatible("ARCHITECTURE", "%q does not match host architecture %q", a, hostArch)
	}

	id := ext["ID"]
	switch {
	case id == "":
		return incompatible("ID", "is missing: set ID=_any, or the host's ID %q", host["ID"])
	case id == "_any":
		return nil
	case id != host["ID"] && !slices.Contains(words(host["ID_LIKE"]), id):
		like := ""
		if host["ID_LIKE"] != "" {
			like = fmt.Sprintf(" or ID_LIKE %q", host["ID_LIKE"])
		}
		return incompatible("ID", "%q does not match host ID %q%s", id, host["ID"], like)
	}

	hostLevel, hostVersion := host[c.LevelField], host["VERSION_ID"]
	switch level := ext[c.LevelField]; {
	case hostLevel != "" && level != "":
		if level != hostLevel {
			return incompatible(c.LevelField, "%q does not match host %s %q", level, c.LevelField, hostLevel)
		}
	case hostVersion != "":
		switch v := ext["VERSION_ID"]; {
		case v == "":
			return incompatible("VERSION_ID", "is missing but the host has VERSION_ID %q: set VERSION_ID, %s (if the host has one) or ID=_any", hostVersion, c.LevelField)
		case v != hostVersion:
			return incompatible("VERSION_ID", "%q does not match host VERSION_ID %q", v, hostVersion)
		}
	}
	return nil
}
