package validate

import (
	"io/fs"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/sysext-bakery/bakery/sysext"
)

func TestCheckExecStart(t *testing.T) {
	unit := func(body string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(body), Mode: 0o644} }
	image := func(units map[string]string) fstest.MapFS {
		fsys := fstest.MapFS{
			"usr/bin/tool":         {Data: []byte("#!/bin/sh\n"), Mode: 0o755},
			"usr/bin/data":         {Data: []byte("not a program"), Mode: 0o644},
			"usr/bin/tool-link":    {Data: []byte("tool"), Mode: fs.ModeSymlink},
			"opt/vendor/bin/agent": {Data: []byte("#!/bin/sh\n"), Mode: 0o755},
		}
		for p, body := range units {
			fsys[p] = unit(body)
		}
		return fsys
	}
	const svc = "usr/lib/systemd/system/tool.service"
	tests := []struct {
		name  string
		class sysext.Class
		units map[string]string
		want  []string // the errors, in order
	}{
		{"programs in the image", sysext.Sysext, map[string]string{
			svc:                                 "[Service]\nExecStart=/usr/bin/tool --serve\nExecStart=/opt/vendor/bin/agent\n",
			"usr/lib/systemd/user/tool.service": "[Service]\nExecStart=/usr/bin/tool-link\n",
		}, nil},
		{"systemd's prefixes and quotes", sysext.Sysext, map[string]string{
			svc: "[Service]\nExecStart=-/usr/bin/tool\nExecStart=@/usr/bin/tool tool\nExecStart=!!/usr/bin/tool\nExecStart=+\"/usr/bin/tool\" x\n",
		}, nil},
		{"the host's programs are not the image's to hold", sysext.Sysext, map[string]string{
			svc: "[Service]\nExecStart=/bin/sh -c true\nExecStart=sleep 1\nExecStart=${TOOL}\nExecStartPre=/usr/bin/missing\n",
		}, nil},
		{"a missing program", sysext.Sysext, map[string]string{
			svc: "[Unit]\nDescription=x\n\n[Service]\nExecStart=/usr/bin/missing \\\n  --flag\nExecStart=/usr/bin/tool\n",
		}, []string{"/" + svc + ":5: ExecStart= runs /usr/bin/missing, which the image lacks"}},
		{"a file that is no program", sysext.Sysext, map[string]string{
			svc: "[Service]\nExecStart=/usr/bin/data\nExecStart=/usr/bin\n",
		}, []string{"/" + svc + ":2: ExecStart= runs /usr/bin/data, which is not executable (mode 0644)", "/" + svc + ":3: ExecStart= runs /usr/bin, which is a directory"}},
		{"a drop-in resets and replaces", sysext.Sysext, map[string]string{
			svc: "[Service]\nExecStart=/usr/bin/tool\n",
			"usr/lib/systemd/system/tool.service.d/10-override.conf": "[Service]\nExecStart=\nExecStart=/opt/vendor/bin/gone\n",
		}, []string{"/usr/lib/systemd/system/tool.service.d/10-override.conf:3: ExecStart= runs /opt/vendor/bin/gone, which the image lacks"}},
		{"a sysext's units are in /usr only", sysext.Sysext, map[string]string{
			"etc/systemd/system/x.service": "[Service]\nExecStart=/usr/bin/missing\n",
		}, nil},
		{"a confext's units run the host's programs", sysext.Confext, map[string]string{
			"etc/systemd/system/x.service": "[Service]\nExecStart=/usr/bin/missing\n",
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := CheckExecStart(image(tt.units), tt.class)
			var got []string
			for _, err := range errs {
				got = append(got, err.Error())
			}
			if len(got) != len(tt.want) {
				t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("error %d: %s\nwant it to start with %s", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestUnitFiles(t *testing.T) {
	fsys := fstest.MapFS{
		"usr/lib/systemd/system/a.service":          {Mode: 0o644},
		"usr/lib/systemd/system/a.service.d/x.conf": {Mode: 0o644},
		"usr/lib/systemd/system/README":             {Mode: 0o644},
		"usr/lib/systemd/user/b.timer":              {Mode: 0o644},
		"usr/share/c.service":                       {Mode: 0o644},
		"etc/systemd/system/d.socket":               {Mode: 0o644},
	}
	for _, tt := range []struct {
		class sysext.Class
		want  []string
	}{
		{sysext.Sysext, []string{"usr/lib/systemd/system/a.service", "usr/lib/systemd/system/a.service.d/x.conf", "usr/lib/systemd/user/b.timer"}},
		{sysext.Confext, []string{"etc/systemd/system/d.socket"}},
	} {
		got, err := UnitFiles(fsys, tt.class)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("%s: UnitFiles = %q, %v; want %q", tt.class, got, err, tt.want)
		}
	}
	if got, err := UnitFiles(fstest.MapFS{"usr/bin/x": {}}, sysext.Sysext); err != nil || len(got) != 0 {
		t.Errorf("a tree without unit directories: %q, %v", got, err)
	}
}
