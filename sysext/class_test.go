package sysext

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
)

// TestConfextMatch checks that a confext is matched on CONFEXT_LEVEL and
// CONFEXT_SCOPE, and that the sysext fields mean nothing to it.
func TestConfextMatch(t *testing.T) {
	host := Release{"ID": "flatcar", "VERSION_ID": "4081", "SYSEXT_LEVEL": "1.0", "CONFEXT_LEVEL": "2"}
	tests := []struct {
		name  string
		ext   Release
		field string // the refusing field, "" when it matches
	}{
		{"level matches", Release{"ID": "flatcar", "CONFEXT_LEVEL": "2"}, ""},
		{"level differs", Release{"ID": "flatcar", "CONFEXT_LEVEL": "1.0"}, "CONFEXT_LEVEL"},
		{"a sysext level is no confext level", Release{"ID": "flatcar", "SYSEXT_LEVEL": "1.0"}, "VERSION_ID"},
		{"initrd only", Release{"ID": "_any", "CONFEXT_SCOPE": "initrd"}, "CONFEXT_SCOPE"},
		{"sysext scope ignored", Release{"ID": "_any", "SYSEXT_SCOPE": "initrd"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Confext.Match(tt.ext, host, "system", "x86-64")
			var ie *IncompatibleError
			switch {
			case tt.field == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.field != "" && (!errors.As(err, &ie) || ie.Field != tt.field):
				t.Errorf("Match = %v, want a refusal by %s", err, tt.field)
			}
		})
	}
}

func TestClassTable(t *testing.T) {
	for _, c := range Classes() {
		got, err := ClassByName(c.Name)
		if err != nil || got.Name != c.Name {
			t.Errorf("ClassByName(%q) = %v, %v", c.Name, got, err)
		}
		if !c.InHierarchy(c.ReleaseDir) {
			t.Errorf("%s: release directory %s is not in a hierarchy", c, c.ReleaseDir)
		}
		if !strings.Contains(strings.Join(c.SearchDirs, " "), c.InstallDir) {
			t.Errorf("%s: install directory %s is not searched", c, c.InstallDir)
		}
	}
	if c, _ := ClassByName(""); c.Name != "sysext" {
		t.Errorf("the default class is %s", c)
	}
	if _, err := ClassByName("portable"); err == nil {
		t.Error("ClassByName accepted portable")
	}
	if got := Sysext.HierarchyList(); got != "/usr or /opt" {
		t.Errorf("HierarchyList = %q", got)
	}
}

// xattrMap is an fstest.MapFS with extended attributes.
type xattrMap struct {
	fstest.MapFS
	xattrs map[string]string // path + "\x00" + attr
}

func (x xattrMap) Xattr(name, attr string) ([]byte, error) {
	if v, ok := x.xattrs[name+"\x00"+attr]; ok {
		return []byte(v), nil
	}
	return nil, fs.ErrNotExist
}

func TestLocateRelease(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s), Mode: 0o644} }
	tests := []struct {
		name     string
		fsys     fs.FS
		class    Class
		image    string
		wantPath string // "" = an error saying wantErr
		wantErr  string
	}{
		{"exact", fstest.MapFS{"usr/lib/extension-release.d/extension-release.app": file("ID=_any\n")}, Sysext, "app", "usr/lib/extension-release.d/extension-release.app", ""},
		{"confext", fstest.MapFS{"etc/extension-release.d/extension-release.app": file("ID=_any\n")}, Confext, "app", "etc/extension-release.d/extension-release.app", ""},
		{"other class's file", fstest.MapFS{"usr/lib/extension-release.d/extension-release.app": file("ID=_any\n")}, Confext, "app", "", "no /etc/extension-release.d/extension-release.app"},
		{"renamed image", fstest.MapFS{"usr/lib/extension-release.d/extension-release.app": file("ID=_any\n")}, Sysext, "app-v2", "", "must match its extension-release file"},
		{"renamed image, relaxed", xattrMap{fstest.MapFS{"usr/lib/extension-release.d/extension-release.app": file("ID=_any\n")},
			map[string]string{"usr/lib/extension-release.d/extension-release.app\x00" + StrictXattr: "0"}}, Sysext, "app-v2", "usr/lib/extension-release.d/extension-release.app", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, p, err := tt.class.ReadExtensionRelease(tt.fsys, tt.image)
			if tt.wantPath != "" {
				if err != nil || p != tt.wantPath {
					t.Errorf("got %q, %v; want %q", p, err, tt.wantPath)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want one saying %q", err, tt.wantErr)
			}
		})
	}

	detect := []struct {
		name      string
		fsys      fstest.MapFS
		wantClass string // "" = an error
		wantName  string
	}{
		{"a sysext", fstest.MapFS{"usr/lib/extension-release.d/extension-release.app": file("ID=_any\n")}, "sysext", "app"},
		{"a confext", fstest.MapFS{"etc/extension-release.d/extension-release.conf": file("ID=_any\n")}, "confext", "conf"},
		{"both", fstest.MapFS{"usr/lib/extension-release.d/extension-release.a": file("ID=_any\n"), "etc/extension-release.d/extension-release.b": file("ID=_any\n")}, "", ""},
		{"none", fstest.MapFS{"usr/bin/x": file("x")}, "", ""},
	}
	for _, tt := range detect {
		t.Run("detect "+tt.name, func(t *testing.T) {
			c, n, _, err := DetectRelease(tt.fsys)
			if tt.wantClass == "" {
				if err == nil {
					t.Errorf("DetectRelease found %s %s", c, n)
				}
				return
			}
			if err != nil || c.Name != tt.wantClass || n != tt.wantName {
				t.Errorf("DetectRelease = %s %q, %v", c, n, err)
			}
		})
	}
}
