// Package clip shows untrusted text (names and lines from images and
// release files) in error messages: quoted, so that no control character
// reaches a terminal, and cut, so that no message carries megabytes.
package clip

import "strconv"

// Quote quotes s as Go would, after cutting it to its first and last
// max/2 bytes around "..." when it is longer than max bytes.
func Quote(s string, max int) string {
	if len(s) > max {
		s = s[:max/2] + "..." + s[len(s)-max/2:]
	}
	return strconv.Quote(s)
}
