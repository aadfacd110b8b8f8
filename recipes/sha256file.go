package recipes

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
)

var (
	// gnuSumRE is a sha256sum line: hash, blank, optional '*' (binary mode)
	// and the name; a lone hash has no name.
	gnuSumRE = regexp.MustCompile(`^\\?([0-9a-fA-F]{64})(?:[ \t]+\*?(.*))?$`)
	// bsdSumRE is a BSD or openssl line: SHA256 (name) = hash.
	bsdSumRE = regexp.MustCompile(`^\\?SHA(?:2-)?256 ?\((.*)\) ?= ?([0-9a-fA-F]{64})$`)
)

// sumEntry is one line of a checksum file.
type sumEntry struct {
	hash, name string
	line       int
}

// ParseSHA256File returns the lowercase hex sha256 for fileName (the base
// name of the downloaded URL) from the body of a sha256-url. The body is
// either a single hash, optionally followed by a name, or a SHA256SUMS-style
// list of "<hex>  name" or "<hex> *name" lines (BSD "SHA256 (name) = <hex>"
// too) in which fileName is looked up by base name. Blank lines and '#'
// comments are skipped; any other line is an error.
//
// The body may be anything a URL yields (file:///etc/shadow too), so no
// error quotes it: errors give line numbers and what was expected.
func ParseSHA256File(data []byte, fileName string) (string, error) {
	var entries []sumEntry
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		e, ok := parseSumLine(line)
		if !ok {
			return "", fmt.Errorf("sha256 file line %d is not a checksum line: want \"<sha256>  NAME\" (sha256sum) or \"SHA256 (NAME) = <sha256>\" (BSD); check that sha256-url names a checksum file", i+1)
		}
		e.line = i + 1
		entries = append(entries, e)
	}
	if len(entries) == 0 {
		return "", errors.New("sha256 file holds no hash")
	}
	if len(entries) == 1 && (entries[0].name == "" || entries[0].name == "-") {
		return entries[0].hash, nil
	}
	var found *sumEntry
	for i, e := range entries {
		if e.name != fileName && path.Base(e.name) != fileName {
			continue
		}
		if found != nil && found.hash != e.hash {
			return "", fmt.Errorf("sha256 file gives %q two different hashes (lines %d and %d)", fileName, found.line, e.line)
		}
		found = &entries[i]
	}
	if found == nil {
		return "", fmt.Errorf("sha256 file has no hash for %q (compared whole and by base name with the names on its %d checksum lines); check the url and sha256-url", fileName, len(entries))
	}
	return found.hash, nil
}

// parseSumLine reads one non-blank line of a checksum file, reporting
// false when it is not one. A leading backslash (sha256sum's mark of an
// escaped name) unescapes "\\" and "\n".
func parseSumLine(line string) (sumEntry, bool) {
	var e sumEntry
	if m := bsdSumRE.FindStringSubmatch(line); m != nil {
		e = sumEntry{hash: m[2], name: m[1]}
	} else if m := gnuSumRE.FindStringSubmatch(line); m != nil {
		e = sumEntry{hash: m[1], name: m[2]}
	} else {
		return e, false
	}
	if strings.HasPrefix(line, `\`) {
		e.name = strings.NewReplacer(`\\`, `\`, `\n`, "\n").Replace(e.name)
	}
	e.hash = strings.ToLower(e.hash)
	return e, true
}
