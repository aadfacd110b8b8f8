// Package sysext defines the extension image format of systemd's
// system and configuration extensions: the image classes (class.go), the
// extension-release metadata (envfile.go, extension.go, releasefile.go),
// architectures, matching against a host, names, versions and the image
// formats.
package sysext
