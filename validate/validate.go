// Package validate checks a staged tree before it becomes an image: the
// step after staging in bakery's flow (recipes → sources → stage →
// validate → format → image → registry → node).
package validate

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/sysext-bakery/bakery/recipes"
	"github.com/sysext-bakery/bakery/sysext"
)

// ErrInvalidTree is wrapped by every validation failure of a staged tree.
var ErrInvalidTree = errors.New("invalid extension tree")

// AllowedELF is an ELF file for another architecture than the image's
// that the recipe's validate.foreign-elf let in.
type AllowedELF struct {
	// Path is the file's absolute path in the image.
	Path string
	// For says what the file was built for, such as "arm64" or
	// "EM_PPC64 ELFCLASS64 ELFDATA2MSB".
	For string
	// Rule is the entry of validate.foreign-elf that allowed it.
	Rule recipes.ForeignELF
}

// osReleaseFiles are the os-release files no image may ship: systemd
// refuses usr/lib/os-release in any extension, and a confext's
// etc/os-release would replace the host's in the merged /etc.
var osReleaseFiles = []string{sysext.ForbiddenOSRelease, "usr/etc/os-release", "etc/os-release"}

// Tree checks a staged tree before it becomes an image of r's class:
// only the class's hierarchies at the top (usr/ and opt/, or etc/), no
// os-release (osReleaseFiles), valid UTF-8 names, no special
// files, systemd unit files that parse, and ELF executables and shared
// libraries built for arch (a systemd architecture name), except where
// r's validate.foreign-elf allows others: those are returned, for bake to
// show. Every validate.foreign-elf entry must match an ELF executable or
// shared library of the tree, whatever its architecture, or Tree
// fails naming r's file and the entry's line: a pattern that allows
// nothing is a typo or outlived its purpose, and would silently let a
// later wrong binary through.
func Tree(tree fs.FS, arch string, r *recipes.Recipe) ([]AllowedELF, error) {
	want, err := sysext.ArchByName(arch)
	if err != nil {
		return nil, err
	}
	return check(tree, want, r, nil)
}

// check is Tree, for the arch want, taking what ahead read (if not nil)
// instead of reading it again.
func check(tree fs.FS, want sysext.Arch, r *recipes.Recipe, ahead *Ahead) ([]AllowedELF, error) {
	top, err := fs.ReadDir(tree, ".")
	if err != nil {
		return nil, err
	}
	class := r.ImageClass()
	for _, e := range top {
		if !slices.Contains(class.Hierarchies, e.Name()) || !e.IsDir() {
			return nil, fmt.Errorf("%w: /%s: a %s may only hold %s; install it below %s", ErrInvalidTree, e.Name(), class.Noun, class.HierarchyList(), class.HierarchyList())
		}
	}
	// The walk checks names and types; the regular files it meets are
	// read in batches on every core (an open each: the bulk of the time),
	// and their results taken in walk order, so the first failure in walk
	// order is the one reported, as a single pass would.
	rules := r.Validate.ForeignELF
	used := make([]bool, len(rules))
	var allowed []AllowedELF
	var batch []walked
	flush := func() error {
		checks := checkFiles(tree, batch, want, ahead)
		files := batch
		batch = batch[:0]
		for i, c := range checks {
			p := files[i].path
			if c.err != nil {
				return c.err
			}
			if c.elf == nil {
				continue
			}
			rule := -1
			for k := range rules {
				if rules[k].Matches("/" + p) {
					used[k] = true
					if rule < 0 {
						rule = k
					}
				}
			}
			switch {
			case c.elf.native:
			case rule >= 0:
				allowed = append(allowed, AllowedELF{Path: "/" + p, For: c.elf.arch, Rule: rules[rule]})
			default:
				return fmt.Errorf("%w: /%s: ELF binary (%s) for %s, but this image is for %s; check the source URL uses {{.GoArch}} or {{.Arch}}, or, if the file belongs there, allow it under validate.foreign-elf with a reason",
					ErrInvalidTree, p, c.elf.typ, c.elf.arch, want.Name)
			}
		}
		return nil
	}
	err = fs.WalkDir(tree, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !utf8.ValidString(p) {
			return fmt.Errorf("%w: %q: file name is not valid UTF-8", ErrInvalidTree, p)
		}
		switch {
		case slices.Contains(osReleaseFiles, p):
			return fmt.Errorf("%w: /%s: an extension must not ship an os-release (it would replace the host's); remove it from the sources", ErrInvalidTree, p)
		case d.Type()&(fs.ModeDevice|fs.ModeNamedPipe|fs.ModeSocket|fs.ModeIrregular) != 0:
			return fmt.Errorf("%w: /%s: special file (%v) not allowed", ErrInvalidTree, p, d.Type())
		case d.Type().IsRegular():
			if batch = append(batch, walked{p, d}); len(batch) == checkBatch {
				return flush()
			}
		}
		return nil
	})
	// The files met before a failure of the walk come first.
	if ferr := flush(); ferr != nil {
		return nil, ferr
	}
	if err != nil {
		return nil, err
	}
	for i, rule := range rules {
		if !used[i] {
			return nil, &recipes.Error{Path: r.Path, Line: rule.Line, Err: fmt.Errorf("%w: validate.foreign-elf path %q matches no ELF executable or shared library in the %s image; correct the pattern or remove the entry", ErrInvalidTree, rule.Path, want.Name)}
		}
	}
	return allowed, nil
}

// checkBatch is how many files Tree reads at a time: memory stays flat
// in the file count.
const checkBatch = 4096

// fileCheck is what reading one regular file of the tree found.
type fileCheck struct {
	// err is a unit file that does not parse or an ELF file that does
	// not, with the path and the fix.
	err error
	// elf describes a loadable ELF file (nil for any other file).
	elf *elfCheck
}

// elfCheck is a loadable ELF file: its type, what it was built for, and
// whether that is the image's architecture; or, with bad set, a file that
// starts like one and does not parse (bad is the parser's error).
type elfCheck struct {
	typ    elf.Type
	arch   string
	native bool
	bad    error
}

// walked is a regular file the walk met.
type walked struct {
	path string
	d    fs.DirEntry
}

// checkFiles reads the regular files of batch, on every core: units must
// parse, and loadable ELF files are described against want. What ahead
// read is not read again. The results are in the order of batch.
func checkFiles(tree fs.FS, batch []walked, want sysext.Arch, ahead *Ahead) []fileCheck {
	checks := make([]fileCheck, len(batch))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(batch)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(batch); i = int(next.Add(1) - 1) {
				checks[i] = checkFile(tree, batch[i], want, ahead)
			}
		}()
	}
	wg.Wait()
	return checks
}

// checkFile checks the regular file w of the tree: a unit file by its
// name, then its content, as ahead read it or read now.
func checkFile(tree fs.FS, w walked, want sysext.Arch, ahead *Ahead) fileCheck {
	p := w.path
	if isUnitFile(p) {
		if err := checkUnit(tree, p); err != nil {
			return fileCheck{err: err}
		}
	}
	c, known := ahead.elf(w.d)
	if !known {
		var err error
		if c, err = readELF(tree, p, want); err != nil {
			return fileCheck{err: err}
		}
	}
	if c != nil && c.bad != nil {
		return fileCheck{err: fmt.Errorf("%w: /%s: starts like an ELF %s but does not parse: %v", ErrInvalidTree, p, c.typ, c.bad)}
	}
	return fileCheck{elf: c}
}

// readELF opens the file p of the tree and reads it with elfOf.
func readELF(tree fs.FS, p string, want sysext.Arch) (*elfCheck, error) {
	f, err := tree.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return elfOf(f, want)
}

// elfOf reads the file f and describes it against want when it is an ELF
// file a node would execute or load: an executable or a shared library
// (ET_EXEC, ET_DYN). Other files, ELF relocatable objects (.o, .syso,
// kernel modules) and core dumps among them, give nil without being
// parsed.
func elfOf(f io.Reader, want sysext.Arch) (*elfCheck, error) {
	// e_ident (16 bytes), then e_type and e_machine, in the file's byte
	// order: the same place in 32- and 64-bit files.
	var head [18]byte
	if _, err := io.ReadFull(f, head[:]); err != nil || string(head[:4]) != elf.ELFMAG {
		return nil, nil
	}
	var typ elf.Type
	switch elf.Data(head[elf.EI_DATA]) {
	case elf.ELFDATA2LSB:
		typ = elf.Type(binary.LittleEndian.Uint16(head[16:]))
	case elf.ELFDATA2MSB:
		typ = elf.Type(binary.BigEndian.Uint16(head[16:]))
	}
	if typ != elf.ET_EXEC && typ != elf.ET_DYN {
		return nil, nil
	}
	ra, ok := f.(io.ReaderAt)
	if !ok {
		rest, err := io.ReadAll(f)
		if err != nil {
			return nil, err
		}
		ra = bytes.NewReader(append(head[:], rest...))
	}
	ef, err := elf.NewFile(ra)
	if err != nil {
		return &elfCheck{typ: typ, bad: err}, nil
	}
	return &elfCheck{typ: typ, arch: elfArch(ef), native: want.MatchesELF(ef)}, nil
}

// elfArch names the architecture an ELF file was built for: its systemd
// name when bakery knows it, else its header's machine, class and byte
// order.
func elfArch(ef *elf.File) string {
	if a, err := sysext.ArchByELF(ef); err == nil {
		return a.Name
	}
	return fmt.Sprintf("%s %s %s", ef.Machine, ef.Class, ef.Data)
}

// unitSuffixes are the systemd unit types whose files are checked.
var unitSuffixes = []string{".service", ".socket", ".timer", ".path", ".mount", ".automount", ".target", ".slice", ".scope", ".swap", ".device"}

// unitDirs are the systemd unit directories an image can fill: the
// vendor's in /usr, the administrator's in /etc (a confext).
var unitDirs = []string{"usr/lib/systemd/system", "usr/lib/systemd/user", "usr/local/lib/systemd/system", "usr/local/lib/systemd/user", "etc/systemd/system", "etc/systemd/user"}

// ReachesUnits tells whether files put at p (a path in the image, without
// leading slash, maybe a path.Match pattern) can be units of class c: p is
// a unit directory of c, inside one, or holds one.
func ReachesUnits(p string, c sysext.Class) bool {
	return slices.ContainsFunc(unitDirs, func(u string) bool {
		return c.InHierarchy(u) && (p == u || strings.HasPrefix(p, u+"/") || strings.HasPrefix(u, p+"/"))
	})
}

// isUnitFile tells whether p is a unit file in a systemd unit directory.
func isUnitFile(p string) bool {
	dir := path.Dir(p)
	if !slices.ContainsFunc(unitDirs, func(u string) bool { return dir == u || strings.HasPrefix(dir, u+"/") }) {
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
