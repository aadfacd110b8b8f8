package sysext

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Class is an image class: system extensions (sysext, onto /usr and /opt)
// or configuration extensions (confext, onto /etc). Like systemd's
// image_class_info (src/sysext/sysext.c), it holds everything the two
// differ in; no other code names these directories, files or fields.
type Class struct {
	// Name is "sysext" or "confext", as --class, recipes' class: and
	// signatures spell it.
	Name string
	// Noun names the class's images in messages.
	Noun string
	// Hierarchies are the directories merged, relative to the root; an
	// image may hold nothing else (but its extension-release).
	Hierarchies []string
	// SearchDirs are where installed images are found, relative to the
	// root, highest priority first (systemd 257's image_search_path).
	SearchDirs []string
	// InstallDir is where sync installs images: one of SearchDirs.
	InstallDir string
	// ReleaseDir holds an image's extension-release.NAME.
	ReleaseDir string
	// LevelField and ScopeField are compared with the host's os-release
	// (SYSEXT_LEVEL or CONFEXT_LEVEL, SYSEXT_SCOPE or CONFEXT_SCOPE).
	LevelField, ScopeField string
	// IDField and VersionField name the extension itself in its
	// extension-release: informational, systemd does not compare them.
	IDField, VersionField string
	// Marker is the metadata directory at the top of a merged hierarchy,
	// MarkerList the file in it that lists the merged extensions.
	Marker, MarkerList string
	// NoExec merges the images nosuid and noexec (systemd-confext does).
	NoExec bool
	// ArtifactType marks the OCI indexes and manifests of the class's
	// images; its layers are ArtifactType's ".layer.v1.FORMAT" siblings.
	ArtifactType string
}

// The image classes.
var (
	// Sysext is systemd-sysext's class: /usr and /opt.
	Sysext = Class{
		Name: "sysext", Noun: "system extension",
		Hierarchies:  []string{"usr", "opt"},
		SearchDirs:   []string{"etc/extensions", "run/extensions", "var/lib/extensions"},
		InstallDir:   "var/lib/extensions",
		ReleaseDir:   "usr/lib/extension-release.d",
		LevelField:   "SYSEXT_LEVEL",
		ScopeField:   "SYSEXT_SCOPE",
		IDField:      "SYSEXT_ID",
		VersionField: "SYSEXT_VERSION_ID",
		Marker:       ".systemd-sysext",
		MarkerList:   "extensions",
		ArtifactType: "application/vnd.bakery.sysext.v1",
	}
	// Confext is systemd-confext's class: /etc.
	Confext = Class{
		Name: "confext", Noun: "configuration extension",
		Hierarchies:  []string{"etc"},
		SearchDirs:   []string{"run/confexts", "var/lib/confexts", "usr/local/lib/confexts", "usr/lib/confexts"},
		InstallDir:   "var/lib/confexts",
		ReleaseDir:   "etc/extension-release.d",
		LevelField:   "CONFEXT_LEVEL",
		ScopeField:   "CONFEXT_SCOPE",
		IDField:      "CONFEXT_ID",
		VersionField: "CONFEXT_VERSION_ID",
		Marker:       ".systemd-confext",
		MarkerList:   "confexts",
		NoExec:       true,
		ArtifactType: "application/vnd.bakery.confext.v1",
	}
)

// classes is the table, sysext first (the default).
var classes = []Class{Sysext, Confext}

// Classes returns the image classes, the default (sysext) first.
func Classes() []Class { return slices.Clone(classes) }

// ClassByName finds a class by name; "" is sysext.
func ClassByName(name string) (Class, error) {
	if name == "" {
		return Sysext, nil
	}
	for _, c := range classes {
		if c.Name == name {
			return c, nil
		}
	}
	return Class{}, fmt.Errorf("unknown image class %q: use sysext or confext", name)
}

// ForbiddenOSRelease is the file no extension of any class may hold: it
// would replace the host's OS identity (systemd's
// extension_has_forbidden_content()).
const ForbiddenOSRelease = "usr/lib/os-release"

// ReleasePrefix starts the file name of every extension-release file.
const ReleasePrefix = "extension-release."

// ReleasePath is where an image of class c called name keeps its
// extension-release file, relative to the image root.
func (c Class) ReleasePath(name string) string {
	return path.Join(c.ReleaseDir, ReleasePrefix+name)
}

// InHierarchy tells whether p (slash-separated, relative to the image
// root, clean) is one of c's hierarchies or below one.
func (c Class) InHierarchy(p string) bool {
	for _, h := range c.Hierarchies {
		if p == h || strings.HasPrefix(p, h+"/") {
			return true
		}
	}
	return false
}

// HierarchyList spells c's hierarchies for messages: "/usr or /opt".
func (c Class) HierarchyList() string {
	abs := make([]string, len(c.Hierarchies))
	for i, h := range c.Hierarchies {
		abs[i] = "/" + h
	}
	if len(abs) == 1 {
		return abs[0]
	}
	return strings.Join(abs[:len(abs)-1], ", ") + " or " + abs[len(abs)-1]
}

// String is the class's name.
func (c Class) String() string { return c.Name }
