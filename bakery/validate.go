package bakery

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/sysext-bakery/bakery/sysext"
)

// ErrInvalidTree is wrapped by every validation failure of a staged tree.
var ErrInvalidTree = errors.New("invalid extension tree")

// Validate checks a staged tree before it becomes an image: only usr/ and
// opt/ at the top, no usr/lib/os-release, valid UTF-8 names, no special
// files, ELF binaries built for arch (a systemd architecture name), and
// systemd unit files that parse.
func Validate(tree fs.FS, arch string) error {
	want, err := sysext.ArchByName(arch)
	if err != nil {
		return err
	}
	top, err := fs.ReadDir(tree, ".")
	if err != nil {
		return err
	}
	for _, e := range top {
		if (e.Name() != "usr" && e.Name() != "opt") || !e.IsDir() {
			return fmt.Errorf("%w: /%s: a system extension may only hold /usr and /opt; install it below /usr or /opt", ErrInvalidTree, e.Name())
		}
	}
	return fs.WalkDir(tree, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !utf8.ValidString(p) {
			return fmt.Errorf("%w: %q: file name is not valid UTF-8", ErrInvalidTree, p)
		}
		switch {
		case p == "usr/lib/os-release" || p == "usr/etc/os-release":
			return fmt.Errorf("%w: /%s: an extension must not ship an os-release (systemd refuses it); remove it from the sources", ErrInvalidTree, p)
		case d.Type()&(fs.ModeDevice|fs.ModeNamedPipe|fs.ModeSocket|fs.ModeIrregular) != 0:
			return fmt.Errorf("%w: /%s: special file (%v) not allowed", ErrInvalidTree, p, d.Type())
		case !d.Type().IsRegular():
			return nil
		}
		if isUnitFile(p) {
			if err := checkUnit(tree, p); err != nil {
				return err
			}
		}
		return checkELF(tree, p, want)
	})
}

// checkELF refuses an ELF file built for another architecture.
func checkELF(tree fs.FS, p string, want sysext.Arch) error {
	f, err := tree.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	var magic [4]byte
	if _, err := io.ReadFull(f, magic[:]); err != nil || string(magic[:]) != elf.ELFMAG {
		return nil
	}
	ra, ok := f.(io.ReaderAt)
	if !ok {
		data, err := fs.ReadFile(tree, p)
		if err != nil {
			return err
		}
		ra = bytes.NewReader(data)
	}
	ef, err := elf.NewFile(ra)
	if err != nil {
		return fmt.Errorf("%w: /%s: starts like an ELF file but does not parse: %v", ErrInvalidTree, p, err)
	}
	if ef.Machine != want.Machine || ef.Class != want.Class {
		return fmt.Errorf("%w: /%s: ELF binary for %s (%s), but this image is for %s; check the source URL uses {{.GoArch}} or {{.Arch}}",
			ErrInvalidTree, p, ef.Machine, ef.Class, want.Name)
	}
	return nil
}

// unitSuffixes are the systemd unit types whose files are checked.
var unitSuffixes = []string{".service", ".socket", ".timer", ".path", ".mount", ".automount", ".target", ".slice", ".scope", ".swap", ".device"}

// isUnitFile tells whether p is a unit file in a systemd unit directory.
func isUnitFile(p string) bool {
	dir := path.Dir(p)
	if !strings.HasPrefix(dir, "usr/lib/systemd/system") && !strings.HasPrefix(dir, "usr/lib/systemd/user") {
		return false
	}
	for _, s := range unitSuffixes {
		if strings.HasSuffix(p, s) {
			return true
		}
	}
	return false
}

// checkUnit checks the ini syntax systemd reads unit files with: a section
// header before any assignment, and KEY=VALUE lines (with trailing
// backslash continuations) inside sections. The file comes from a source,
// so errors give its line numbers but never quote it.
func checkUnit(tree fs.FS, p string) error {
	data, err := fs.ReadFile(tree, p)
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	inSection, continued := false, false
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		wasContinued := continued
		continued = strings.HasSuffix(line, "\\")
		switch {
		case wasContinued, line == "", line[0] == '#', line[0] == ';':
		case line[0] == '[':
			if !strings.HasSuffix(line, "]") || len(line) < 3 {
				return fmt.Errorf("%w: /%s:%d: malformed section header: want [Section] alone on the line", ErrInvalidTree, p, n)
			}
			inSection = true
		case !inSection:
			return fmt.Errorf("%w: /%s:%d: assignment outside of a section; start the file with [Unit]", ErrInvalidTree, p, n)
		case !strings.Contains(line, "=") || strings.HasPrefix(line, "="):
			return fmt.Errorf("%w: /%s:%d: not KEY=VALUE, a [Section] header, a comment or blank", ErrInvalidTree, p, n)
		}
	}
	return sc.Err()
}
