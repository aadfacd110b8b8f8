package sysext

import "cmp"

// CompareVersions orders two strings the way systemd's
// strverscmp_improved() does, which is how systemd-sysext stacks extensions:
// runs of digits compare as numbers ("b9" < "b10"), '~' sorts before
// everything (pre-releases), '-', '^' and '.' separate segments, and any
// other character that is not a letter or digit is ignored. It returns -1,
// 0 or +1.
func CompareVersions(a, b string) int {
	if a == "" || b == "" {
		return cmp.Compare(len(a), len(b))
	}
	for {
		a, b = skipInvalid(a), skipInvalid(b)

		// '~' marks a pre-release: the string carrying it is older.
		if first(a) == '~' || first(b) == '~' {
			if r := cmpBool(first(a) != '~', first(b) != '~'); r != 0 {
				return r
			}
			a, b = a[1:], b[1:]
		}
		// The string that ends first is older (a '~' suffix was handled
		// above).
		if a == "" || b == "" {
			return cmp.Compare(a, b)
		}
		for _, sep := range []byte{'-', '^', '.'} {
			if first(a) == sep || first(b) == sep {
				if r := cmpBool(first(a) != sep, first(b) != sep); r != 0 {
					return r
				}
				a, b = a[1:], b[1:]
			}
		}

		var sa, sb string
		if isDigit(first(a)) || isDigit(first(b)) {
			sa, sb = span(a, isDigit), span(b, isDigit)
			// A numeric segment is newer than an alphabetic one.
			if r := cmpBool(sa != "", sb != ""); r != 0 {
				return r
			}
			na, nb := trimZeros(sa), trimZeros(sb)
			if r := cmp.Compare(len(na), len(nb)); r != 0 {
				return r
			}
			if r := cmp.Compare(na, nb); r != 0 {
				return r
			}
		} else {
			sa, sb = span(a, isAlpha), span(b, isAlpha)
			n := min(len(sa), len(sb))
			if r := cmp.Compare(sa[:n], sb[:n]); r != 0 {
				return r
			}
			if r := cmp.Compare(len(sa), len(sb)); r != 0 {
				return r
			}
		}
		a, b = a[len(sa):], b[len(sb):]
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

// isVersionChar is what strverscmp_improved() looks at; everything else is
// skipped.
func isVersionChar(c byte) bool {
	return isDigit(c) || isAlpha(c) || c == '~' || c == '-' || c == '^' || c == '.'
}

func skipInvalid(s string) string {
	for s != "" && !isVersionChar(s[0]) {
		s = s[1:]
	}
	return s
}

// first is s's first byte, or 0 when s is empty.
func first(s string) byte {
	if s == "" {
		return 0
	}
	return s[0]
}

func span(s string, class func(byte) bool) string {
	i := 0
	for i < len(s) && class(s[i]) {
		i++
	}
	return s[:i]
}

func trimZeros(s string) string {
	for s != "" && s[0] == '0' {
		s = s[1:]
	}
	return s
}

func cmpBool(a, b bool) int {
	return cmp.Compare(btoi(a), btoi(b))
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
