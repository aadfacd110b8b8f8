// Package selfimage stages bakery itself as a system extension, so that
// Ignition can install it on a node that is to run bakery: a statically
// linked bakery for one architecture in usr/bin, its sync units, and an
// extension-release that asks for a service manager reload.
package selfimage

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/units"
)

// Name is the extension's name.
const Name = "bakery"

// Module is bakery's module path, which a source directory must hold.
const Module = "github.com/sysext-bakery/bakery"

// Binary is a bakery executable for an architecture.
type Binary struct {
	Path string
	Arch sysext.Arch
	// Version is the module version Go stamped into it, "devel" when it has
	// none; Time is its commit time (zero when unknown).
	Version string
	Time    time.Time
}

// Check opens the executable at p and checks that it is bakery for arch,
// statically linked: a binary that needs the build machine's C library
// may not run on the node.
func Check(p string, arch sysext.Arch) (*Binary, error) {
	f, err := elf.Open(p)
	if err != nil {
		return nil, fmt.Errorf("%s: not an ELF executable: %w", p, err)
	}
	defer f.Close()
	if !arch.MatchesELF(f) {
		got, _ := sysext.ArchByELF(f)
		return nil, fmt.Errorf("%s is built for %s, not %s", p, got.Name, arch.Name)
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return nil, fmt.Errorf("%s is dynamically linked (built with cgo): a node may lack its C library; build it with CGO_ENABLED=0", p)
		}
	}
	info, err := buildinfo.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("%s: no Go build information: %w", p, err)
	}
	if info.Main.Path != Module {
		return nil, fmt.Errorf("%s is %s, not bakery (%s)", p, info.Main.Path, Module)
	}
	b := &Binary{Path: p, Arch: arch, Version: info.Main.Version}
	if b.Version == "" || b.Version == "(devel)" {
		b.Version = "devel"
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.time" {
			b.Time, _ = time.Parse(time.RFC3339, s.Value)
		}
	}
	return b, nil
}

// FindSource finds bakery's source directory at or above dir: the one
// whose go.mod declares Module.
func FindSource(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if data, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && modulePath(data) == Module {
			return d, nil
		}
		if d == filepath.Dir(d) {
			return "", fmt.Errorf("no checkout of bakery (go.mod of %s) at or above %s", Module, dir)
		}
	}
}

// Build compiles bakery from the source directory for arch into dst with
// cgo off (a static binary) and -trimpath (the same source and toolchain
// give the same bytes), using the go command in PATH.
func Build(ctx context.Context, source string, arch sysext.Arch, dst string) (*Binary, error) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return nil, errors.New("building bakery for another architecture needs the go command in PATH (or give a static binary)")
	}
	cmd := exec.CommandContext(ctx, goCmd, "build", "-trimpath", "-ldflags=-s -w", "-o", dst, "./cmd/bakery")
	cmd.Dir = source
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch.GoArch)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go build bakery for %s in %s: %w\n%s", arch.Name, source, err, out.String())
	}
	return Check(dst, arch)
}

// Release is the extension-release of the image: for any OS, the binary's
// architecture, and a service manager reload so that its units are seen.
func (b *Binary) Release() sysext.ExtensionRelease {
	return sysext.ExtensionRelease{
		Class:            sysext.Sysext,
		ID:               "_any",
		Architecture:     b.Arch.Name,
		ReloadManager:    true,
		ExtensionID:      Name,
		ExtensionVersion: b.Version,
	}
}

// Stage writes the extension's tree into the empty directory dir:
// usr/bin/bakery, the units of units.InExtension under
// usr/lib/systemd/system, and the extension-release.
func (b *Binary) Stage(dir string) error {
	rel := b.Release()
	if err := rel.Validate(); err != nil {
		return fmt.Errorf("version %q: %w", b.Version, err)
	}
	bin, err := os.ReadFile(b.Path)
	if err != nil {
		return err
	}
	files := []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{"usr/bin/bakery", bin, 0o755},
		{sysext.Sysext.ReleasePath(Name), rel.Release().Render(), 0o644},
	}
	for _, u := range units.InExtension {
		data, err := units.FS.ReadFile(u)
		if err != nil {
			return err
		}
		files = append(files, struct {
			path string
			data []byte
			mode os.FileMode
		}{"usr/lib/systemd/system/" + u, data, 0o644})
	}
	for _, f := range files {
		p := filepath.Join(dir, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			return err
		}
	}
	// The umask must not change the image.
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		mode := os.FileMode(0o644)
		if d.IsDir() || p == filepath.Join(dir, "usr/bin/bakery") {
			mode = 0o755
		}
		return os.Chmod(p, mode)
	})
}

// modulePath is the path a go.mod's module line declares.
func modulePath(gomod []byte) string {
	for _, line := range strings.Split(string(gomod), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module"); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}

// FileName is the image's file name, bakery-VERSION-ARCH.raw, which a
// release directory and bakery butane take as it is.
func (b *Binary) FileName() string {
	return sysext.ImageFile(Name, b.Version, b.Arch.Name)
}
