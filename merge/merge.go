// Package merge puts extensions onto a node's hierarchies the way
// systemd-sysext and systemd-confext do, refusing images it has not
// verified and refreshing without a moment in which a hierarchy is gone.
//
// Each image class (sysext.Sysext: /usr and /opt; sysext.Confext: /etc) is
// merged on its own; nothing here names a class's directories, files or
// fields but through sysext.Class. The decisions (Discover, Prepare: which
// images, in which order, and why others are refused) are pure functions
// over an fs.FS; the kernel work (loop devices, detached mounts, overlays,
// moving them into place) sits behind the small mounter interface
// (kernel.go), which apply's phases drive. A DDI among the images is
// verified in userspace (its hash tree, its signature against the
// certificates of /etc/verity.d and sync.yaml) before its root partition
// is mounted by offset (image_mount.go).
package merge

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/sysext-bakery/bakery/sysext"
)

// Options say what to merge, where and how.
type Options struct {
	// Root is the root file system to merge into; "" means "/".
	Root string
	// Class is the image class to merge; the zero Class is sysext.Sysext.
	Class sysext.Class
	// RequireSignature merges only images whose signature sync verified
	// (see Policy). The sync configuration's policy can require it too.
	RequireSignature bool
	// Config is the sync configuration whose policy applies; nil reads
	// ROOT/etc/bakery/sync.yaml when it exists.
	Config *Config
	// Reloader, when set, is asked to reload the service manager after a
	// merge or refresh whose extensions include one with
	// EXTENSION_RELOAD_MANAGER=1, and after an unmerge or refresh that
	// takes such an extension away (nil: never, as --no-reload). It is
	// not asked when Root is not "/": an offline root has no service
	// manager of its own to reload (systemd-sysext --root does the same).
	Reloader Reloader
}

func (o Options) root() string {
	if o.Root == "" {
		return "/"
	}
	return o.Root
}

func (o Options) class() sysext.Class {
	if o.Class.Name == "" {
		return sysext.Sysext
	}
	return o.Class
}

// kernel is the node's mounter for o, and o with the reloader dropped
// for an offline root.
func (o Options) kernel() (Options, mounter) {
	if !isRoot(o.root()) {
		o.Reloader = nil
	}
	return o, kernel{root: o.root(), class: o.class()}
}

// Result is what a merge did.
type Result struct {
	// Class is the image class merged, "sysext" or "confext".
	Class string `json:"class"`
	// Extensions are the merged extensions, lowest first.
	Extensions []string `json:"extensions"`
	// Hierarchies are the merged hierarchies, e.g. "/usr", with the
	// extensions that have content there, highest first.
	Hierarchies map[string][]string `json:"hierarchies"`
	// Refused are the images that were not merged, with the reasons.
	Refused []Refusal `json:"refused"`
	// Reloaded tells whether the service manager was reloaded.
	Reloaded bool `json:"reloaded"`
	// Warnings are problems the merge worked around, e.g. a damaged
	// state.json.
	Warnings []string `json:"warnings,omitempty"`
}

// AllRefused tells whether images were found and every one was refused.
func (r *Result) AllRefused() bool { return len(r.Extensions) == 0 && len(r.Refused) > 0 }

// ErrAlreadyMerged is returned by Merge when a hierarchy is merged already;
// Refresh replaces a merge.
var ErrAlreadyMerged = errors.New("already merged; use refresh to replace the merge, or unmerge first")

// Merge merges the compatible (and, by policy, verified) extensions of the
// class under the root. It fails when something is merged already.
func Merge(opts Options) (*Result, error) {
	opts, m := opts.kernel()
	unlock, err := Lock(opts.root())
	if err != nil {
		return nil, err
	}
	defer unlock()
	return mergeWith(opts, m)
}

// mergeWith is Merge's work with the lock held: it refuses to merge over
// a merge, then applies.
func mergeWith(opts Options, m mounter) (*Result, error) {
	for _, h := range opts.class().Hierarchies {
		if _, merged, err := m.merged(h); err != nil || merged {
			return nil, errors.Join(err, fmt.Errorf("/%s: %w", h, ErrAlreadyMerged))
		}
	}
	return apply(opts, m)
}

// Refresh replaces the current merge of the class with one of the
// extensions installed now, atomically per hierarchy: the new overlay is
// built aside and put in place of the old one, so the hierarchy never
// disappears. If building fails, the previous merge stays. With no
// extension left, it unmerges.
func Refresh(opts Options) (*Result, error) {
	opts, m := opts.kernel()
	unlock, err := Lock(opts.root())
	if err != nil {
		return nil, err
	}
	defer unlock()
	return apply(opts, m)
}

// UnmergeResult is what an unmerge did.
type UnmergeResult struct {
	// Unmerged are the hierarchies unmerged, e.g. "/usr".
	Unmerged []string `json:"unmerged"`
	// Reloaded tells whether the service manager was reloaded.
	Reloaded bool `json:"reloaded"`
}

// Unmerge unmounts the merges of the class on the root's hierarchies,
// only those made by bakery or systemd, then reloads the service manager
// when an extension merged asked for it.
func Unmerge(opts Options) (*UnmergeResult, error) {
	opts, m := opts.kernel()
	unlock, err := Lock(opts.root())
	if err != nil {
		return nil, err
	}
	defer unlock()
	return unmergeWith(opts, m)
}

// unmergeWith is Unmerge's work with the lock held.
func unmergeWith(opts Options, m mounter) (*UnmergeResult, error) {
	class := opts.class()
	wanted, err := mergedWantsReload(opts.Reloader, opts.root(), class, m)
	if err != nil {
		return nil, err
	}
	res := &UnmergeResult{Unmerged: []string{}}
	for _, h := range class.Hierarchies {
		_, merged, err := m.merged(h)
		if err == nil && merged {
			err = m.unmerge(h)
			res.Unmerged = append(res.Unmerged, "/"+h)
		}
		if err != nil {
			return res, err
		}
	}
	res.Reloaded, err = reload(opts.Reloader, wanted && len(res.Unmerged) > 0)
	return res, err
}

// apply runs the phases of a merge, in systemd's order: read the host,
// discover the images, check and open them (Prepare), build the merged
// hierarchies aside, read what the merge being replaced asked for, swap
// the new merges in (unmerging the hierarchies no extension has content
// in), then reload the service manager if an extension of the old or the
// new merge asks for it. A failure before the swap leaves the previous
// merge in place.
func apply(opts Options, m mounter) (*Result, error) {
	root, class := opts.root(), opts.class()
	host, err := readHost(root)
	if err != nil {
		return nil, err
	}
	policy, warnings, err := LoadPolicy(root, class, opts.RequireSignature, opts.Config)
	if err != nil {
		return nil, err
	}
	plan, err := Prepare(os.DirFS(root), class, host, m, policy)
	if err != nil {
		return nil, err
	}
	defer plan.Close()
	res := &Result{Class: class.Name, Extensions: plan.Names(), Hierarchies: map[string][]string{}, Refused: plan.Refused, Warnings: warnings}

	built := map[string]io.Closer{}
	defer func() {
		for _, b := range built {
			b.Close()
		}
	}()
	for _, h := range class.Hierarchies {
		b, names, err := m.build(h, plan.Extensions, plan.Names())
		if err != nil {
			return nil, err
		}
		if b != nil {
			built[h] = b
			res.Hierarchies["/"+h] = names
		}
	}
	wasWanted, err := mergedWantsReload(opts.Reloader, root, class, m)
	if err != nil {
		return nil, err
	}
	for _, h := range class.Hierarchies {
		b, ok := built[h]
		if !ok {
			err = m.unmerge(h)
		} else {
			err = m.swapIn(h, b)
		}
		if err != nil {
			return nil, err
		}
	}
	res.Reloaded, err = reload(opts.Reloader, wasWanted || wantsReload(plan.Extensions, class))
	return res, err
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

// Status reports, for each hierarchy of class that exists under root,
// which extensions are merged into it and since when.
func Status(root string, class sysext.Class) ([]HierarchyStatus, error) {
	m := kernel{root: root, class: class}
	var out []HierarchyStatus
	for _, h := range class.Hierarchies {
		dir := m.dir(h)
		if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
			continue
		}
		st := HierarchyStatus{Hierarchy: "/" + h, Extensions: "none"}
		names, merged, err := m.merged(h)
		if err != nil {
			return nil, err
		}
		if merged {
			st.Extensions = names
			us := mergeTime(dir, class).UnixMicro()
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

// List lists the installed extension images of class under root that a
// merge would consider, with absolute paths.
func List(root string, class sysext.Class) ([]ListEntry, error) {
	images, _, err := Discover(os.DirFS(root), class)
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
