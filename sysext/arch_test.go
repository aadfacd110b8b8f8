package sysext

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestArchTable(t *testing.T) {
	want := []struct {
		name, goarch, uname string
		machine             elf.Machine
		class               elf.Class
		order               binary.ByteOrder
	}{
		{"x86-64", "amd64", "x86_64", elf.EM_X86_64, elf.ELFCLASS64, binary.LittleEndian},
		{"arm64", "arm64", "aarch64", elf.EM_AARCH64, elf.ELFCLASS64, binary.LittleEndian},
		{"x86", "386", "i686", elf.EM_386, elf.ELFCLASS32, binary.LittleEndian},
		{"arm", "arm", "armv7l", elf.EM_ARM, elf.ELFCLASS32, binary.LittleEndian},
		{"ppc64-le", "ppc64le", "ppc64le", elf.EM_PPC64, elf.ELFCLASS64, binary.LittleEndian},
		{"riscv64", "riscv64", "riscv64", elf.EM_RISCV, elf.ELFCLASS64, binary.LittleEndian},
		{"s390x", "s390x", "s390x", elf.EM_S390, elf.ELFCLASS64, binary.BigEndian},
		{"loongarch64", "loong64", "loongarch64", elf.EM_LOONGARCH, elf.ELFCLASS64, binary.LittleEndian},
	}
	got := Arches()
	if len(got) != len(want) {
		t.Fatalf("Arches() has %d entries, want %d", len(got), len(want))
	}
	for i, w := range want {
		a := got[i]
		if a.Name != w.name || a.GoArch != w.goarch || a.Uname != w.uname || a.Machine != w.machine || a.Class != w.class || a.ByteOrder != w.order {
			t.Errorf("Arches()[%d] = %+v, want %+v", i, a, w)
		}
		if !slices.Contains(systemdArchNames, a.Name) {
			t.Errorf("%s is not a systemd architecture name", a.Name)
		}
		if b, err := ArchByName(w.name); err != nil || b.GoArch != w.goarch {
			t.Errorf("ArchByName(%q) = %v, %v", w.name, b, err)
		}
		if b, err := ArchByGoArch(w.goarch); err != nil || b.Name != w.name {
			t.Errorf("ArchByGoArch(%q) = %v, %v", w.goarch, b, err)
		}
		if s := fmt.Sprint(a); s != w.name {
			t.Errorf("fmt.Sprint(%+v) = %q, want %q", a, s, w.name)
		}
	}
	got[0].Name = "changed"
	if Arches()[0].Name != "x86-64" {
		t.Error("Arches() returns the table itself, not a copy")
	}
}

func TestArchLookupErrors(t *testing.T) {
	for _, tc := range []struct {
		lookup func(string) (Arch, error)
		in     string
		want   string
	}{
		{ArchByName, "amd64", `unknown systemd architecture "amd64": use one of x86-64, arm64, x86, arm, ppc64-le, riscv64, s390x, loongarch64`},
		{ArchByName, "", `unknown systemd architecture ""`},
		{ArchByName, "X86-64", `unknown systemd architecture "X86-64"`},
		{ArchByGoArch, "x86-64", `unknown GOARCH "x86-64": use one of amd64, arm64, 386, arm, ppc64le, riscv64, s390x, loong64`},
		{ArchByGoArch, "mips", `unknown GOARCH "mips"`},
	} {
		if _, err := tc.lookup(tc.in); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("lookup(%q) = %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestHostArch(t *testing.T) {
	h := HostArch()
	if h.GoArch != runtime.GOARCH {
		t.Errorf("HostArch().GoArch = %q, want %q", h.GoArch, runtime.GOARCH)
	}
	if _, err := ArchByGoArch(runtime.GOARCH); err == nil && h.Name == "" {
		t.Errorf("HostArch() has no name on supported GOARCH %s", runtime.GOARCH)
	}
}

// elfHeader builds the smallest ELF file debug/elf reads: a header without
// sections or program headers.
func elfHeader(t *testing.T, machine elf.Machine, class elf.Class, order binary.ByteOrder) *elf.File {
	t.Helper()
	data := elf.ELFDATA2LSB
	if order == binary.BigEndian {
		data = elf.ELFDATA2MSB
	}
	ident := [elf.EI_NIDENT]byte{0x7f, 'E', 'L', 'F', byte(class), byte(data), byte(elf.EV_CURRENT)}
	var hdr any
	if class == elf.ELFCLASS64 {
		hdr = &elf.Header64{Ident: ident, Type: uint16(elf.ET_EXEC), Machine: uint16(machine), Version: uint32(elf.EV_CURRENT), Ehsize: 64}
	} else {
		hdr = &elf.Header32{Ident: ident, Type: uint16(elf.ET_EXEC), Machine: uint16(machine), Version: uint32(elf.EV_CURRENT), Ehsize: 52}
	}
	var b bytes.Buffer
	if err := binary.Write(&b, order, hdr); err != nil {
		t.Fatal(err)
	}
	f, err := elf.NewFile(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatalf("elf.NewFile: %v", err)
	}
	return f
}

func TestMatchesELF(t *testing.T) {
	for _, a := range Arches() {
		t.Run(a.Name, func(t *testing.T) {
			f := elfHeader(t, a.Machine, a.Class, a.ByteOrder)
			for _, b := range Arches() {
				if got := b.MatchesELF(f); got != (a == b) {
					t.Errorf("%s.MatchesELF(%s binary) = %v", b.Name, a.Name, got)
				}
			}
			if got, err := ArchByELF(f); err != nil || got != a {
				t.Errorf("ArchByELF = %v, %v; want %v", got, err, a)
			}
		})
	}
	for _, tc := range []struct {
		name    string
		machine elf.Machine
		class   elf.Class
		order   binary.ByteOrder
	}{
		{"32-bit x86-64 (x32)", elf.EM_X86_64, elf.ELFCLASS32, binary.LittleEndian},
		{"big-endian ppc64", elf.EM_PPC64, elf.ELFCLASS64, binary.BigEndian},
		{"big-endian arm64", elf.EM_AARCH64, elf.ELFCLASS64, binary.BigEndian},
		{"mips", elf.EM_MIPS, elf.ELFCLASS32, binary.BigEndian},
	} {
		f := elfHeader(t, tc.machine, tc.class, tc.order)
		if a, err := ArchByELF(f); err == nil {
			t.Errorf("%s: ArchByELF = %v, want an error", tc.name, a)
		}
	}
}

// TestMatchesELFSelf checks the table against a real binary: this test
// program, built for the host.
func TestMatchesELFSelf(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Skipf("cannot find the test binary: %v", err)
	}
	f, err := elf.Open(exe)
	if err != nil {
		t.Skipf("the test binary is not ELF (%v)", err)
	}
	defer f.Close()
	h := HostArch()
	if h.Name == "" {
		t.Skipf("GOARCH %s is not in the table", runtime.GOARCH)
	}
	if !h.MatchesELF(f) {
		t.Errorf("HostArch() %v does not match the test binary (%s, %s, %s)", h, f.Machine, f.Class, f.Data)
	}
	if a, err := ArchByELF(f); err != nil || a != h {
		t.Errorf("ArchByELF(test binary) = %v, %v; want %v", a, err, h)
	}
}
