package bakery

import (
	"debug/elf"
	"errors"
	"io/fs"
	"maps"
	"strings"
	"testing"
	"testing/fstest"
)

func TestValidate(t *testing.T) {
	file := func(data string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(data), Mode: 0o644} }
	base := fstest.MapFS{
		"usr/bin/tool":                        file("#!/bin/sh\n"),
		"usr/bin/x86":                         file(string(elfHeader(uint16(elf.EM_X86_64)))),
		"usr/lib/systemd/system/tool.service": file("# comment\n[Unit]\nDescription=t\n\n[Service]\nExecStart=/usr/bin/tool \\\n  --flag\n"),
		"opt/vendor/data":                     file("d"),
		"usr/lib/extension-release.d/extension-release.tool": file("ID=_any\n"),
		"usr/share/link": &fstest.MapFile{Data: []byte("/etc/hostname"), Mode: fs.ModeSymlink},
	}
	cases := []struct {
		name  string
		add   fstest.MapFS
		arch  string
		error string // empty: valid
	}{
		{name: "valid", arch: "x86-64"},
		{name: "etc at top", add: fstest.MapFS{"etc/foo": file("x")}, arch: "x86-64", error: "/etc: a system extension may only hold /usr and /opt"},
		{name: "file at top", add: fstest.MapFS{"README": file("x")}, arch: "x86-64", error: "/README"},
		{name: "os-release", add: fstest.MapFS{"usr/lib/os-release": file("ID=x\n")}, arch: "x86-64", error: "must not ship an os-release"},
		{name: "elf for arm64 in x86-64 image", add: fstest.MapFS{"usr/bin/arm": file(string(elfHeader(uint16(elf.EM_AARCH64))))}, arch: "x86-64", error: "/usr/bin/arm: ELF binary for EM_AARCH64"},
		{name: "x86-64 elf in arm64 image", arch: "arm64", error: "/usr/bin/x86: ELF binary for EM_X86_64"},
		{name: "truncated elf", add: fstest.MapFS{"usr/bin/bad": file("\x7fELF\x02")}, arch: "x86-64", error: "does not parse"},
		{name: "fifo", add: fstest.MapFS{"usr/fifo": &fstest.MapFile{Mode: fs.ModeNamedPipe}}, arch: "x86-64", error: "special file"},
		{name: "invalid utf-8 name", add: fstest.MapFS{"usr/\xff": file("x")}, arch: "x86-64", error: "not valid UTF-8"},
		{name: "unit without section", add: fstest.MapFS{"usr/lib/systemd/system/a.service": file("ExecStart=/bin/true\n")}, arch: "x86-64", error: "a.service:1: assignment outside of a section"},
		{name: "unit with bad line", add: fstest.MapFS{"usr/lib/systemd/system/b.timer": file("[Timer]\nOnBoot 5\n")}, arch: "x86-64", error: "b.timer:2"},
		{name: "unknown arch", arch: "mips", error: "mips"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tree := maps.Clone(base)
			maps.Copy(tree, c.add)
			err := Validate(tree, c.arch)
			switch {
			case c.error == "" && err != nil:
				t.Fatalf("valid tree refused: %v", err)
			case c.error != "" && err == nil:
				t.Fatalf("invalid tree accepted, want %q", c.error)
			case c.error != "" && !strings.Contains(err.Error(), c.error):
				t.Fatalf("error %q does not say %q", err, c.error)
			case c.error != "" && c.name != "unknown arch" && !errors.Is(err, ErrInvalidTree):
				t.Fatalf("error %v is not ErrInvalidTree", err)
			}
		})
	}
}
