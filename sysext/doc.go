// Package sysext defines the extension image format of systemd's
// system and configuration extensions: the image classes (class.go), the
// extension-release metadata (envfile.go, extension.go, releasefile.go),
// architectures, matching against a host, names, versions, what an image
// format is (format.go; the table of them is package sysext/formats) and
// what builds one (build.go).
package sysext
