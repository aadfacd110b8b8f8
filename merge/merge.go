// Package merge puts system extensions onto a node's /usr and /opt the way
// systemd-sysext does, refusing images it has not verified and refreshing
// without a moment in which /usr is gone.
//
// The decisions (Discover, Prepare: which images, in which order, and why
// others are refused) are pure functions over an fs.FS; the kernel work
// (loop devices, detached mounts, overlays, moving them into place) happens
// in this file's Merge, Refresh and Unmerge and in kernel.go.
package merge

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sysext-bakery/bakery/sysext"
)

// Hierarchies are the directories extensions are merged into, relative to
// the root.
var Hierarchies = []string{"usr", "opt"}

// Options say where and how to merge.
type Options struct {
	// Root is the root file system to merge into; "" means "/".
	Root string
	// RequireSignature merges only images whose signature sync verified
	// (see Policy). The sync configuration's policy can require it too.
	RequireSignature bool
	// Config is the sync configuration whose policy applies; nil reads
	// ROOT/etc/bakery/sync.yaml when it exists.
	Config *Config
}

func (o Options) root() string {
	if o.Root == "" {
		return "/"
	}
	return o.Root
}

// Result is what a merge did.
type Result struct {
	// Extensions are the merged extensions, lowest first.
	Extensions []string `json:"extensions"`
	// Hierarchies are the merged hierarchies, e.g. "/usr", with the
	// extensions that have content there, highest first.
	Hierarchies map[string][]string `json:"hierarchies"`
	// Refused are the images that were not merged, with the reasons.
	Refused []Refusal `json:"refused"`
	// Warnings are problems the merge worked around, e.g. a damaged
	// state.json.
	Warnings []string `json:"warnings,omitempty"`
}

// AllRefused tells whether images were found and every one was refused.
func (r *Result) AllRefused() bool { return len(r.Extensions) == 0 && len(r.Refused) > 0 }

// ErrAlreadyMerged is returned by Merge when a hierarchy is merged already;
// Refresh replaces a merge.
var ErrAlreadyMerged = errors.New("already merged; use refresh to replace the merge, or unmerge first")

// Merge merges the compatible (and, by policy, verified) extensions under
// the root. It fails when something is merged already.
func Merge(opts Options) (*Result, error) {
	unlock, err := Lock(opts.root())
	if err != nil {
		return nil, err
	}
	defer unlock()
	for _, h := range Hierarchies {
		dir := filepath.Join(opts.root(), h)
		if merged, err := isMerged(dir); err != nil || merged {
			return nil, errors.Join(err, fmt.Errorf("/%s: %w", h, ErrAlreadyMerged))
		}
	}
	return apply(opts)
}

// Refresh replaces the current merge with one of the extensions installed
// now, atomically per hierarchy: the new overlay is built aside and put in
// place of the old one, so /usr never disappears. If building fails, the
// previous merge stays. With no extension left, it unmerges.
func Refresh(opts Options) (*Result, error) {
	unlock, err := Lock(opts.root())
	if err != nil {
		return nil, err
	}
	defer unlock()
	return apply(opts)
}

// Unmerge unmounts the merges on the root's hierarchies, only those made by
// bakery or systemd-sysext, and returns the hierarchies it unmerged.
func Unmerge(root string) ([]string, error) {
	unlock, err := Lock(root)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return unmerge(root, Hierarchies)
}

func unmerge(root string, hierarchies []string) ([]string, error) {
	var done []string
	for _, h := range hierarchies {
		dir := filepath.Join(root, h)
		merged, err := isMerged(dir)
		if err == nil && merged {
			err = unmergeDir(dir)
			done = append(done, "/"+h)
		}
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// apply runs the phases: read host, discover and check (Prepare), open
// layers, build the overlays aside, then swap them in.
func apply(opts Options) (*Result, error) {
	root := opts.root()
	host, err := readHost(root)
	if err != nil {
		return nil, err
	}
	policy, warnings, err := LoadPolicy(root, opts.RequireSignature, opts.Config)
	if err != nil {
		return nil, err
	}
	plan, err := Prepare(os.DirFS(root), host, kernelOpener{root}, policy)
	if err != nil {
		return nil, err
	}
	defer plan.Close()
	res := &Result{Extensions: plan.Names(), Hierarchies: map[string][]string{}, Refused: plan.Refused, Warnings: warnings}
	if len(plan.Extensions) == 0 {
		_, err := unmerge(root, Hierarchies)
		return res, err
	}

	overlays := map[string]int{}
	defer func() {
		for _, fd := range overlays {
			unix.Close(fd)
		}
	}()
	for _, h := range Hierarchies {
		fd, names, err := overlayFor(root, h, plan)
		if err != nil {
			return nil, err
		}
		if fd >= 0 {
			overlays[h] = fd
			res.Hierarchies["/"+h] = names
		}
	}
	for _, h := range Hierarchies {
		dir := filepath.Join(root, h)
		fd, ok := overlays[h]
		if !ok {
			if _, err := unmerge(root, []string{h}); err != nil {
				return nil, err
			}
			continue
		}
		if err := swapIn(fd, dir); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// overlayFor builds the detached overlay of hierarchy h, or returns -1 when
// no extension has content there. names are the extensions in it, highest
// first.
func overlayFor(root, h string, plan *Plan) (int, []string, error) {
	var layers []int
	var names []string
	defer func() {
		for _, fd := range layers {
			unix.Close(fd)
		}
	}()
	for i := len(plan.Extensions) - 1; i >= 0; i-- {
		e := plan.Extensions[i]
		t, ok := e.Tree.(*mountTree)
		if !ok {
			return -1, nil, fmt.Errorf("extension %s: not opened by the kernel opener", e.Name)
		}
		fd, ok, err := t.layer(h)
		if err != nil {
			return -1, nil, fmt.Errorf("extension %s: %w", e.Name, err)
		}
		if ok {
			layers = append(layers, fd)
			names = append(names, e.Name)
		}
	}
	if len(layers) == 0 {
		return -1, nil, nil
	}
	host, ok, err := hostLayer(filepath.Join(root, h))
	if err != nil {
		return -1, nil, err
	}
	if ok {
		defer unix.Close(host)
	} else {
		host = -1
	}
	fd, err := buildOverlay(layers, host, plan.Names())
	if err != nil {
		return -1, nil, fmt.Errorf("merge /%s: %w", h, err)
	}
	return fd, names, nil
}

// readHost reads what extensions are checked against: the root's
// os-release, the running system's scope and the CPU architecture.
func readHost(root string) (Host, error) {
	rel, err := ReadHostRelease(os.DirFS(root))
	if err != nil {
		return Host{}, err
	}
	scope := "system"
	if _, err := os.Stat("/etc/initrd-release"); err == nil {
		scope = "initrd"
	}
	return Host{Release: rel, Scope: scope, Arch: sysext.HostArch().Name}, nil
}

// HierarchyStatus is one line of `status`, in systemd-sysext's JSON shape:
// Extensions is the list of merged extensions, or the string "none".
type HierarchyStatus struct {
	Hierarchy  string `json:"hierarchy"`
	Extensions any    `json:"extensions"`
	// Since is the merge time in microseconds since 1970, or null.
	Since *int64 `json:"since"`
}

// Status reports, for each hierarchy that exists under root, which
// extensions are merged into it and since when.
func Status(root string) ([]HierarchyStatus, error) {
	var out []HierarchyStatus
	for _, h := range Hierarchies {
		dir := filepath.Join(root, h)
		if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
			continue
		}
		st := HierarchyStatus{Hierarchy: "/" + h, Extensions: "none"}
		merged, err := isMerged(dir)
		if err != nil {
			return nil, err
		}
		if merged {
			data, err := os.ReadFile(filepath.Join(dir, markerDir, "extensions"))
			if err != nil {
				return nil, fmt.Errorf("read the merge marker of /%s: %w", h, err)
			}
			st.Extensions = splitLines(string(data))
			us := mergeTime(dir).UnixMicro()
			st.Since = &us
		}
		out = append(out, st)
	}
	return out, nil
}

// ListEntry is one line of `list`, in systemd-sysext's JSON shape.
type ListEntry struct {
	Name string    `json:"name"`
	Type ImageType `json:"type"`
	Path string    `json:"path"`
	// Time is the image's modification time in microseconds since 1970.
	Time int64 `json:"time"`
}

// List lists the installed extension images under root that a merge would
// consider, with absolute paths.
func List(root string) ([]ListEntry, error) {
	images, _, err := Discover(os.DirFS(root))
	if err != nil {
		return nil, err
	}
	out := []ListEntry{}
	for _, img := range images {
		out = append(out, ListEntry{Name: img.Name, Type: img.Type, Path: filepath.Join(root, img.Path), Time: img.ModTime.UnixMicro()})
	}
	return out, nil
}

func splitLines(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == '\n' })
}
