// Package pathmatch matches path.Match patterns against a path and the
// directories leading to it, the one rule for recipe patterns that select
// a subtree (extract.include, validate.foreign-elf).
package pathmatch

import "path"

// Subtree reports whether pattern (path.Match syntax) matches name or one
// of its leading directories, so that a pattern matching a directory
// matches everything beneath it: "bin" and "b*" match "bin/tool", "/usr/lib"
// matches "/usr/lib/x/y". A malformed pattern matches nothing.
func Subtree(pattern, name string) bool {
	for i := 1; i <= len(name); i++ {
		if i < len(name) && name[i] != '/' {
			continue
		}
		if ok, _ := path.Match(pattern, name[:i]); ok {
			return true
		}
	}
	return false
}
