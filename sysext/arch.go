package sysext

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"runtime"
	"slices"
	"strings"
)

// Arch is one CPU architecture bakery builds for, under each of its names:
// systemd's ARCHITECTURE spelling, Go's GOARCH (which is also the OCI
// platform architecture) and the ELF header fields its binaries carry.
type Arch struct {
	// Name is the systemd spelling, as in ARCHITECTURE= and
	// ConditionArchitecture=, e.g. "x86-64".
	Name string
	// GoArch is Go's GOARCH and the OCI platform architecture, e.g. "amd64".
	GoArch string
	// Uname is the kernel's name (uname -m), as many upstreams spell it
	// in release file names, e.g. "x86_64".
	Uname string
	// Machine, Class and ByteOrder are what an ELF binary for this
	// architecture has in its header.
	Machine   elf.Machine
	Class     elf.Class
	ByteOrder binary.ByteOrder
}

// arches is the one table of supported architectures; the first two are the
// default build set.
var arches = []Arch{
	{"x86-64", "amd64", "x86_64", elf.EM_X86_64, elf.ELFCLASS64, binary.LittleEndian},
	{"arm64", "arm64", "aarch64", elf.EM_AARCH64, elf.ELFCLASS64, binary.LittleEndian},
	{"x86", "386", "i686", elf.EM_386, elf.ELFCLASS32, binary.LittleEndian},
	{"arm", "arm", "armv7l", elf.EM_ARM, elf.ELFCLASS32, binary.LittleEndian},
	{"ppc64-le", "ppc64le", "ppc64le", elf.EM_PPC64, elf.ELFCLASS64, binary.LittleEndian},
	{"riscv64", "riscv64", "riscv64", elf.EM_RISCV, elf.ELFCLASS64, binary.LittleEndian},
	{"s390x", "s390x", "s390x", elf.EM_S390, elf.ELFCLASS64, binary.BigEndian},
	{"loongarch64", "loong64", "loongarch64", elf.EM_LOONGARCH, elf.ELFCLASS64, binary.LittleEndian},
}

// systemdArchNames is every ARCHITECTURE= value systemd knows
// (src/basic/architecture.c), including those bakery does not build for.
var systemdArchNames = []string{
	"alpha", "arc", "arc-be", "arm", "arm-be", "arm64", "arm64-be", "cris",
	"ia64", "loongarch64", "m68k", "mips", "mips-le", "mips64", "mips64-le",
	"nios2", "parisc", "parisc64", "ppc", "ppc-le", "ppc64", "ppc64-le",
	"riscv32", "riscv64", "s390", "s390x", "sh", "sh64", "sparc", "sparc64",
	"tilegx", "x86", "x86-64",
}

// Arches returns the supported architectures, defaults (x86-64, arm64) first.
func Arches() []Arch { return slices.Clone(arches) }

// ArchByName finds an architecture by its systemd name, e.g. "x86-64".
func ArchByName(name string) (Arch, error) {
	return archBy(name, "systemd architecture", func(a Arch) string { return a.Name })
}

// ArchByGoArch finds an architecture by its GOARCH (or OCI platform
// architecture), e.g. "amd64".
func ArchByGoArch(goarch string) (Arch, error) {
	return archBy(goarch, "GOARCH", func(a Arch) string { return a.GoArch })
}

func archBy(v, what string, field func(Arch) string) (Arch, error) {
	i := slices.IndexFunc(arches, func(a Arch) bool { return field(a) == v })
	if i < 0 {
		known := make([]string, len(arches))
		for j, a := range arches {
			known[j] = field(a)
		}
		return Arch{}, fmt.Errorf("unknown %s %q: use one of %s", what, v, strings.Join(known, ", "))
	}
	return arches[i], nil
}

// HostArch is the architecture this program was built for. On a GOARCH
// outside the table it has only GoArch set, and an empty Name, which matches
// no extension built for a specific architecture.
func HostArch() Arch {
	a, err := ArchByGoArch(runtime.GOARCH)
	if err != nil {
		return Arch{GoArch: runtime.GOARCH}
	}
	return a
}

// ArchByELF finds the architecture an ELF file was built for.
func ArchByELF(f *elf.File) (Arch, error) {
	for _, a := range arches {
		if a.MatchesELF(f) {
			return a, nil
		}
	}
	return Arch{}, fmt.Errorf("ELF file for %s, %s, %s matches no supported architecture", f.Machine, f.Class, f.Data)
}

// MatchesELF reports whether the ELF file f runs on a: same machine, word
// size and byte order.
func (a Arch) MatchesELF(f *elf.File) bool {
	return f.Machine == a.Machine && f.Class == a.Class && f.ByteOrder == a.ByteOrder
}

// String returns the systemd name.
func (a Arch) String() string { return a.Name }
