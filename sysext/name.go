package sysext

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Extension names. bakery names things (recipes, published repositories,
// sync.yaml entries, state.json keys, installed NAME.raw files) by one
// rule, CheckName; merging follows systemd, which accepts any image whose
// file name is valid (CheckImageName), so that bakery merges what
// systemd-sysext would.

// MaxNameLen keeps NAME-VERSION-ARCH.raw and extension-release.NAME well
// inside a file name's 255 bytes.
const MaxNameLen = 64

// nameRE is an extension name bakery gives: a systemd image name (no '/',
// not hidden) that is also an OCI repository path component (lower case,
// single separators between alphanumerics).
var nameRE = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`)

// CheckName reports whether name can be the name of an extension bakery
// bakes, publishes or installs.
func CheckName(name string) error {
	switch {
	case len(name) > MaxNameLen:
		return fmt.Errorf("%q is longer than %d characters", name, MaxNameLen)
	case !nameRE.MatchString(name):
		return fmt.Errorf("%q is not an extension name: use lower-case letters and digits, separated by single '.', '_' or '-' (it names the image file and the OCI repository)", name)
	case name == "catalog":
		return fmt.Errorf("%q is taken by the published catalog (NAMESPACE/catalog); choose another", name)
	}
	return nil
}

// CheckImageName reports whether name is a valid image name for systemd
// (image_name_is_valid() in src/shared/discover-image.c): a valid file
// name (not empty, ".", ".." or longer than 255 bytes, no '/'), UTF-8,
// without control characters, not a ".#" temporary file. Hidden names are
// refused too: discovery skips them.
func CheckImageName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("%q is not a file name", name)
	case strings.HasPrefix(name, "."):
		return fmt.Errorf("image name %q starts with '.'", name)
	case len(name) > 255:
		return fmt.Errorf("image name longer than 255 bytes")
	case !utf8.ValidString(name):
		return fmt.Errorf("image name is not valid UTF-8")
	case strings.ContainsRune(name, '/'):
		return fmt.Errorf("image name %q contains '/'", name)
	case strings.ContainsFunc(name, unicode.IsControl):
		return fmt.Errorf("image name %q contains control characters", name)
	}
	return nil
}

// ImageFile is the Flatcar-style file name of an image,
// NAME-VERSION-ARCH.raw, which bake writes, a release directory carries
// and systemd-sysupdate matches.
func ImageFile(name, version, arch string) string {
	return name + "-" + version + "-" + arch + ".raw"
}
