package validate

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/sysext-bakery/bakery/sysext"
)

// UnitFiles lists the systemd unit files and drop-ins (UNIT.d/*.conf)
// that a tree of class c holds in the unit directories inside c's
// hierarchies, sorted.
func UnitFiles(tree fs.FS, c sysext.Class) ([]string, error) {
	var units []string
	for _, dir := range unitDirs {
		if !c.InHierarchy(dir) {
			continue
		}
		err := fs.WalkDir(tree, dir, func(p string, d fs.DirEntry, err error) error {
			switch {
			case err != nil && p == dir && errors.Is(err, fs.ErrNotExist):
				return fs.SkipDir
			case err != nil:
				return err
			case d.Type().IsRegular() && (isUnitFile(p) || isDropIn(p)):
				units = append(units, p)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	slices.Sort(units)
	return units, nil
}

// isDropIn tells a drop-in of a unit: UNIT.d/NAME.conf.
func isDropIn(p string) bool {
	return strings.HasSuffix(p, ".conf") && strings.HasSuffix(path.Dir(p), ".d")
}

// CheckExecStart checks that every absolute program an ExecStart= of the
// image's units and drop-ins runs (see UnitFiles) is an executable in the
// image, when it lies in the class's hierarchies (for a sysext: under
// /usr or /opt; a program elsewhere, or found by $PATH, is the host's).
// image must resolve symbolic links inside itself, as bakery's image
// readers (sysext/inspect) do. Each problem is one error naming the unit,
// its line and the program.
func CheckExecStart(image fs.FS, c sysext.Class) []error {
	units, err := UnitFiles(image, c)
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, u := range units {
		data, err := fs.ReadFile(image, u)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, x := range execStarts(data) {
			if err := checkProgram(image, c, x.program); err != nil {
				errs = append(errs, fmt.Errorf("/%s:%d: ExecStart= runs %s, which %v", u, x.line, x.program, err))
			}
		}
	}
	return errs
}

// execStart is the program of one ExecStart= and its line.
type execStart struct {
	program string
	line    int
}

// execStarts returns the program of every ExecStart= of a unit file (an
// empty one, which resets the list, has none), without systemd's prefixes
// (-, @, :, +, !, !!). Continued lines are joined.
func execStarts(unit []byte) []execStart {
	var out []execStart
	sc := bufio.NewScanner(bytes.NewReader(unit))
	for n := 1; sc.Scan(); n++ {
		line, start := strings.TrimSpace(sc.Text()), n
		for strings.HasSuffix(line, "\\") && sc.Scan() {
			n++
			line = strings.TrimSuffix(line, "\\") + " " + strings.TrimSpace(sc.Text())
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(key) != "ExecStart" {
			continue
		}
		fields := strings.Fields(strings.TrimLeft(strings.TrimSpace(value), "-@:+!"))
		if len(fields) > 0 {
			out = append(out, execStart{program: strings.Trim(fields[0], `"'`), line: start})
		}
	}
	return out
}

// checkProgram reports why program, an ExecStart= path, is not runnable
// from image, or nil.
func checkProgram(image fs.FS, c sysext.Class, program string) error {
	rel := strings.TrimPrefix(path.Clean(program), "/")
	if !path.IsAbs(program) || !c.InHierarchy(rel) {
		return nil
	}
	info, err := fs.Stat(image, rel)
	switch {
	case err != nil:
		return errors.New("the image lacks: install it from a source, or fix the unit")
	case info.IsDir():
		return errors.New("is a directory, not a program")
	case !info.Mode().IsRegular():
		return errors.New("is not a regular file, so no program")
	case info.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("is not executable (mode %04o): give its source mode \"0755\"", info.Mode().Perm())
	}
	return nil
}
