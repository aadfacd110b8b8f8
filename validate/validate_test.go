package validate

import (
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/sysext-bakery/bakery/internal/fixture"
	"github.com/sysext-bakery/bakery/recipes"
)

// elfHeader returns a minimal 64-bit little-endian ELF executable for
// machine.
func elfHeader(machine elf.Machine) []byte {
	return fixture.ELF(elf.ELFCLASS64, elf.ELFDATA2LSB, elf.ET_EXEC, machine)
}

func TestValidate(t *testing.T) {
	file := func(data string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(data), Mode: 0o644} }
	bin := func(data []byte) *fstest.MapFile { return &fstest.MapFile{Data: data, Mode: 0o755} }
	base := fstest.MapFS{
		"usr/bin/tool":                        file("#!/bin/sh\n"),
		"usr/lib/systemd/system/tool.service": file("# comment\n[Unit]\nDescription=t\n\n[Service]\nExecStart=/usr/bin/tool \\\n  --flag\n"),
		"opt/vendor/data":                     file("d"),
		"usr/lib/extension-release.d/extension-release.tool": file("ID=_any\n"),
		"usr/share/link": &fstest.MapFile{Data: []byte("/etc/hostname"), Mode: fs.ModeSymlink},
	}
	x86 := bin(elfHeader(elf.EM_X86_64))
	arm64Exec := bin(elfHeader(elf.EM_AARCH64))
	arm64Lib := bin(fixture.ELF(elf.ELFCLASS64, elf.ELFDATA2LSB, elf.ET_DYN, elf.EM_AARCH64))
	arm64Obj := file(string(fixture.ELF(elf.ELFCLASS64, elf.ELFDATA2LSB, elf.ET_REL, elf.EM_AARCH64)))
	ppc64BE := bin(fixture.ELF(elf.ELFCLASS64, elf.ELFDATA2MSB, elf.ET_EXEC, elf.EM_PPC64))
	ppc64LE := bin(fixture.ELF(elf.ELFCLASS64, elf.ELFDATA2LSB, elf.ET_DYN, elf.EM_PPC64))
	arm32 := bin(fixture.ELF(elf.ELFCLASS32, elf.ELFDATA2LSB, elf.ET_EXEC, elf.EM_ARM))
	firmware := recipes.ForeignELF{Path: "/usr/lib/firmware/*", Reason: "firmware for the NIC", Line: 12}
	cases := []struct {
		name    string
		add     fstest.MapFS
		arch    string
		rules   []recipes.ForeignELF
		error   string   // empty: valid
		allowed []string // the foreign files let through
	}{
		{name: "valid", add: fstest.MapFS{"usr/bin/x86": x86}, arch: "x86-64"},
		{name: "etc at top", add: fstest.MapFS{"etc/foo": file("x")}, arch: "x86-64", error: "/etc: a system extension may only hold /usr or /opt"},
		{name: "file at top", add: fstest.MapFS{"README": file("x")}, arch: "x86-64", error: "/README"},
		{name: "os-release", add: fstest.MapFS{"usr/lib/os-release": file("ID=x\n")}, arch: "x86-64", error: "must not ship an os-release"},
		{name: "elf for arm64 in x86-64 image", add: fstest.MapFS{"usr/bin/arm": arm64Exec}, arch: "x86-64", error: "/usr/bin/arm: ELF binary (ET_EXEC) for arm64, but this image is for x86-64"},
		{name: "x86-64 elf in arm64 image", add: fstest.MapFS{"usr/bin/x86": x86}, arch: "arm64", error: "/usr/bin/x86: ELF binary (ET_EXEC) for x86-64"},
		{name: "arm64 shared library in x86-64 image", add: fstest.MapFS{"usr/lib/libx.so": arm64Lib}, arch: "x86-64", error: "/usr/lib/libx.so: ELF binary (ET_DYN) for arm64"},
		{name: "big-endian ppc64 in ppc64-le image", add: fstest.MapFS{"usr/bin/ppc": ppc64BE}, arch: "ppc64-le", error: "/usr/bin/ppc: ELF binary (ET_EXEC) for EM_PPC64 ELFCLASS64 ELFDATA2MSB, but this image is for ppc64-le"},
		{name: "little-endian ppc64 in ppc64-le image", add: fstest.MapFS{"usr/bin/ppc": ppc64LE}, arch: "ppc64-le"},
		{name: "arm64 relocatable object (.syso) in x86-64 image", add: fstest.MapFS{"usr/lib/go/src/crypto/internal/boring/syso/goboringcrypto_linux_arm64.syso": arm64Obj}, arch: "x86-64"},
		{name: "short file with the ELF magic", add: fstest.MapFS{"usr/share/magic": file("\x7fELF\x02")}, arch: "x86-64"},
		{name: "truncated ELF executable", add: fstest.MapFS{"usr/bin/bad": bin(elfHeader(elf.EM_X86_64)[:24])}, arch: "x86-64", error: "starts like an ELF ET_EXEC but does not parse"},
		{name: "foreign executable allowed", add: fstest.MapFS{"usr/lib/firmware/nic.bin": arm32, "usr/lib/firmware/sub/dsp.bin": arm64Exec, "usr/bin/x86": x86},
			arch: "x86-64", rules: []recipes.ForeignELF{firmware}, allowed: []string{"/usr/lib/firmware/nic.bin", "/usr/lib/firmware/sub/dsp.bin"}},
		{name: "foreign executable outside the allowed paths", add: fstest.MapFS{"usr/lib/firmware/nic.bin": arm32, "usr/bin/arm": arm64Exec},
			arch: "x86-64", rules: []recipes.ForeignELF{firmware}, error: "/usr/bin/arm: ELF binary (ET_EXEC) for arm64"},
		{name: "allowed path holding only native binaries", add: fstest.MapFS{"usr/lib/firmware/x": x86}, arch: "x86-64", rules: []recipes.ForeignELF{firmware}},
		{name: "allowed path matching nothing", add: fstest.MapFS{"usr/bin/x86": x86}, arch: "x86-64", rules: []recipes.ForeignELF{firmware},
			error: `recipe.yaml:12: invalid extension tree: validate.foreign-elf path "/usr/lib/firmware/*" matches no ELF executable or shared library in the x86-64 image`},
		{name: "allowed path matching only an object file", add: fstest.MapFS{"usr/lib/firmware/x.o": arm64Obj}, arch: "x86-64", rules: []recipes.ForeignELF{firmware}, error: "recipe.yaml:12: "},
		{name: "fifo", add: fstest.MapFS{"usr/fifo": &fstest.MapFile{Mode: fs.ModeNamedPipe}}, arch: "x86-64", error: "special file"},
		{name: "invalid utf-8 name", add: fstest.MapFS{"usr/\xff": file("x")}, arch: "x86-64", error: "not valid UTF-8"},
		{name: "unit without section", add: fstest.MapFS{"usr/lib/systemd/system/a.service": file("ExecStart=/bin/true\n")}, arch: "x86-64", error: "a.service:1: assignment outside of a section"},
		{name: "unit with bad line", add: fstest.MapFS{"usr/lib/systemd/system/b.timer": file("[Timer]\nOnBoot 5\n")}, arch: "x86-64", error: "b.timer:2"},
		{name: "unknown arch", arch: "mips", error: "mips"},
		// Files are read on every core; the first failure in walk order
		// is still the one reported.
		{name: "first of two failures: a file's", add: fstest.MapFS{"usr/bin/arm": arm64Exec, "usr/fifo": &fstest.MapFile{Mode: fs.ModeNamedPipe}}, arch: "x86-64", error: "/usr/bin/arm: ELF binary"},
		{name: "first of two failures: the walk's", add: fstest.MapFS{"usr/a-fifo": &fstest.MapFile{Mode: fs.ModeNamedPipe}, "usr/bin/arm": arm64Exec}, arch: "x86-64", error: "/usr/a-fifo: special file"},
		{name: "first of many foreign files", add: manyFiles(checkBatch+100, arm64Exec), arch: "x86-64", error: "/usr/bin/f00000: ELF binary"},
		{name: "foreign file after a batch of native ones", add: with(manyFiles(checkBatch+1, x86), "usr/bin/z", arm64Exec), arch: "x86-64", error: "/usr/bin/z: ELF binary"},
	}
	for _, c := range cases {
		for _, v := range validators {
			t.Run(c.name+"/"+v.name, func(t *testing.T) {
				tree := maps.Clone(base)
				maps.Copy(tree, c.add)
				r := &recipes.Recipe{Path: "recipe.yaml", Validate: recipes.Validation{ForeignELF: c.rules}}
				allowed, err := v.validate(t, tree, c.arch, r)
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
				var paths []string
				for _, a := range allowed {
					paths = append(paths, a.Path)
					if a.Rule != firmware || a.For == "" || a.For == "x86-64" {
						t.Errorf("allowed %+v", a)
					}
				}
				if !slices.Equal(paths, c.allowed) {
					t.Errorf("allowed %q, want %q", paths, c.allowed)
				}
			})
		}
	}
}

// TestValidateGoToolchainObjects validates the Go toolchain's own foreign
// objects, the .syso files of its source tree, for the other arch.
func TestValidateGoToolchainObjects(t *testing.T) {
	dir := filepath.Join(runtime.GOROOT(), "src", "crypto", "internal", "boring", "syso")
	sysos, _ := filepath.Glob(filepath.Join(dir, "*.syso"))
	if len(sysos) == 0 {
		t.Skipf("no .syso files in %s", dir)
	}
	tree := fstest.MapFS{}
	for _, p := range sysos {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		tree["usr/lib/go/src/crypto/internal/boring/syso/"+filepath.Base(p)] = &fstest.MapFile{Data: data, Mode: 0o644}
	}
	for _, arch := range []string{"x86-64", "arm64"} {
		if _, err := Tree(tree, arch, &recipes.Recipe{}); err != nil {
			t.Errorf("%s: %v", arch, err)
		}
	}
}

// manyFiles is n copies of f, usr/bin/f00000 and on.
func manyFiles(n int, f *fstest.MapFile) fstest.MapFS {
	m := fstest.MapFS{}
	for i := range n {
		m[fmt.Sprintf("usr/bin/f%05d", i)] = f
	}
	return m
}

// with is m with the file f at p.
func with(m fstest.MapFS, p string, f *fstest.MapFile) fstest.MapFS {
	m[p] = f
	return m
}
