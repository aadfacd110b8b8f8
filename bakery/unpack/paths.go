package unpack

import (
	"strings"
	"unicode/utf8"
)

// targetDir cleans an extraction directory to a path relative to the root.
func targetDir(to string) (string, error) {
	if err := checkName(to); err != nil {
		return "", err
	}
	rel, ok := resolve(splitPath(to))
	if !ok {
		return "", refused(ErrEscape, "\"..\" leaves the root")
	}
	return rel, nil
}

// checkName refuses names that are not valid UTF-8 or hold NUL.
func checkName(name string) error {
	if !utf8.ValidString(name) {
		return refused(ErrBadName, "not valid UTF-8")
	}
	if strings.ContainsRune(name, 0) {
		return refused(ErrBadName, "holds a NUL byte")
	}
	return nil
}

// splitPath splits a slash-separated path into its components, dropping
// empty ones (from "//" and leading or trailing slashes).
func splitPath(p string) []string {
	return strings.FieldsFunc(p, func(r rune) bool { return r == '/' })
}

// resolve applies "." and ".." to components and joins them, reporting
// false when ".." would climb above the start.
func resolve(comps []string) (string, bool) {
	var out []string
	for _, c := range comps {
		switch c {
		case ".":
		case "..":
			if len(out) == 0 {
				return "", false
			}
			out = out[:len(out)-1]
		default:
			out = append(out, c)
		}
	}
	return strings.Join(out, "/"), true
}

// memberPath turns a member name into a clean path relative to the
// extraction directory: absolute names and ".." leaving the directory are
// refused, before and after stripping strip leading components the way GNU
// tar counts them. skip reports a member stripped to nothing.
func memberPath(name string, strip int) (rel string, skip bool, err error) {
	if strings.HasPrefix(name, "/") {
		return "", false, refused(ErrEscape, "absolute path")
	}
	comps := splitPath(name)
	if _, ok := resolve(comps); !ok {
		return "", false, refused(ErrEscape, "\"..\" leaves the extraction directory")
	}
	if len(comps) <= strip && strip > 0 {
		return "", true, nil
	}
	rel, ok := resolve(comps[strip:])
	if !ok {
		return "", false, refused(ErrEscape, "\"..\" leaves the extraction directory after strip-components %d", strip)
	}
	return rel, false, nil
}
