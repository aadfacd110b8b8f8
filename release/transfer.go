// Package release writes release directories that a stock node's
// systemd-sysupdate installs extensions from: NAME-VERSION-ARCH.raw
// images, SHA256SUMS and its OpenPGP signature SHA256SUMS.gpg, and per
// extension a transfer definition, NAME.transfer (the name systemd 257
// reads) and NAME.conf (the name older systemd and Flatcar's sysext-bakery
// use), with the same content. The layout is Flatcar's, so a node switches
// between the two by changing a URL.
package release

import (
	"bytes"
	"fmt"
	"net"
	"net/url"
	"path"
	"regexp"
	"strings"

	"github.com/sysext-bakery/bakery/sysext"
)

// The files of a release directory besides its images.
const (
	// SumsFile lists the sha256 of every file released.
	SumsFile = "SHA256SUMS"
	// SignatureFile is SumsFile's binary OpenPGP detached signature, where
	// systemd-pull looks for it.
	SignatureFile = "SHA256SUMS.gpg"
)

// InstancesMax is how many versions of an extension a node keeps: the one
// in use and older ones to go back to.
const InstancesMax = 3

// Noop is the name of the transfer definition that matches nothing: the
// stock systemd-sysupdate.service runs `systemd-sysupdate update` over
// /etc/sysupdate.d, which fails when that holds no definition, while each
// extension is updated as its own component (-C NAME). Flatcar's nodes
// fetch it as noop.conf; no extension may be called so.
const Noop = "noop"

// DefinitionFiles are the file names of an extension's transfer
// definition: NAME.transfer, read by systemd 257 and later, and NAME.conf,
// read by earlier versions (and by 257 when no .transfer is there).
func DefinitionFiles(name string) []string {
	return []string{name + ".transfer", name + ".conf"}
}

// ComponentDir is where a node keeps an extension's transfer definition,
// so that `systemd-sysupdate -C NAME` updates it alone.
func ComponentDir(name string) string { return "/etc/sysupdate." + name + ".d" }

// Transfer is an extension's transfer definition: where systemd-sysupdate
// finds its images and how it installs them.
type Transfer struct {
	// Name is the extension's name.
	Name string
	// Class is the extension's image class; it says where the current
	// image is linked for systemd-sysext (or systemd-confext) to merge.
	Class sysext.Class
	// BaseURL is the release directory's URL (CheckURL).
	BaseURL string
	// Verify makes systemd-sysupdate check SHA256SUMS.gpg against the
	// node's keyring before it trusts SHA256SUMS.
	Verify bool
}

// Pattern matches the extension's images, NAME-@v-%a.raw: any version,
// the node's architecture.
func (t Transfer) Pattern() string { return t.Name + "-@v-%a.raw" }

// linkDir is where the current image is linked on the node: the class's
// first search directory that survives a reboot (/etc/extensions for
// system extensions, as on Flatcar; /var/lib/confexts for configuration
// extensions, which are not searched for in /etc).
func linkDir(c sysext.Class) string {
	for _, d := range c.SearchDirs {
		if !strings.HasPrefix(d, "run/") {
			return "/" + d
		}
	}
	return "/" + c.InstallDir
}

// CurrentSymlink is the link to the image in use, which systemd-sysext
// (or systemd-confext) merges: /etc/extensions/NAME.raw.
func (t Transfer) CurrentSymlink() string {
	return path.Join(linkDir(t.Class), t.Name+".raw")
}

// TargetDir is where the node keeps the installed versions:
// /opt/extensions/NAME (Flatcar's choice; /opt is writable there).
func (t Transfer) TargetDir() string {
	return path.Join("/opt", path.Base(linkDir(t.Class)), t.Name)
}

// Render writes the transfer definition.
func (t Transfer) Render() []byte {
	verify := "no"
	if t.Verify {
		verify = "yes"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# %s: systemd-sysupdate transfer definition written by bakery release.\n", t.Name)
	fmt.Fprintf(&b, "# Install as %s/%s.transfer (systemd 257) or %s.conf;\n", ComponentDir(t.Name), t.Name, t.Name)
	fmt.Fprintf(&b, "# update with: systemd-sysupdate -C %s update\n", t.Name)
	fmt.Fprintf(&b, "[Transfer]\nVerify=%s\n\n", verify)
	fmt.Fprintf(&b, "[Source]\nType=url-file\nPath=%s\nMatchPattern=%s\n\n", t.BaseURL, t.Pattern())
	fmt.Fprintf(&b, "[Target]\nType=regular-file\nPath=%s\nMatchPattern=%s\nCurrentSymlink=%s\nInstancesMax=%d\n",
		t.TargetDir(), t.Pattern(), t.CurrentSymlink(), InstancesMax)
	return b.Bytes()
}

// NoopTransfer is the definition that matches nothing (see Noop).
func NoopTransfer() []byte {
	return []byte(`# noop: matches nothing, so that systemd-sysupdate.service, which updates
# /etc/sysupdate.d, succeeds while each extension is its own component.
# Written by bakery release.
[Source]
Type=regular-file
Path=/
MatchPattern=invalid@v.raw

[Target]
Type=regular-file
Path=/
`)
}

// versionRE is what systemd-sysupdate accepts as the @v of a pattern
// (version_is_valid(): letters, digits and ".,_-+").
var versionRE = regexp.MustCompile(`^[A-Za-z0-9.,_+-]+$`)

// CheckVersion reports whether systemd-sysupdate can match version in an
// image file name of arch.
func CheckVersion(version, arch string) error {
	switch {
	case !versionRE.MatchString(version):
		return fmt.Errorf("version %q: systemd-sysupdate matches only letters, digits and \".,_+-\" in a version", version)
	case strings.Contains(version, "-"+arch+".raw"):
		return fmt.Errorf("version %q holds the file name's own ending -%s.raw", version, arch)
	}
	return nil
}

// CheckURL checks the URL of a release directory or of a file a node
// fetches: https, or http to a loopback address (tests, a local mirror on
// the node). It returns the URL.
func CheckURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("URL %q: %w", raw, err)
	}
	switch {
	case u.Host == "":
		return nil, fmt.Errorf("URL %q has no host: give an https URL such as https://example.com/sysexts/", raw)
	case u.User != nil:
		return nil, fmt.Errorf("URL %q holds credentials: nodes would store them in plain text", raw)
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("URL %q has a query or fragment: give the plain URL", raw)
	case u.Scheme == "https":
		return u, nil
	case u.Scheme == "http" && IsLoopback(u.Hostname()):
		return u, nil
	case u.Scheme == "http":
		return nil, fmt.Errorf("URL %q is plain http: use https (plain http only to a loopback address)", raw)
	}
	return nil, fmt.Errorf("URL %q: use https", raw)
}

// IsLoopback tells whether host (a name or address, without port) is this
// machine: localhost or a loopback address.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// DirURL is a release directory's URL as transfer definitions give it:
// ending in "/", so that file names resolve inside it.
func DirURL(u *url.URL) string {
	s := u.String()
	if !strings.HasSuffix(s, "/") {
		s += "/"
	}
	return s
}
