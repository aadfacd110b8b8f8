package merge

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/sysext-bakery/bakery/sysext"
)

// mounter is the kernel work of a merge, for one image class under one
// root: apply's phases (merge.go) run the same over the kernel (kernel,
// below) and over a fake in tests.
type mounter interface {
	// Opener opens images (loop devices, detached mounts).
	Opener
	// merged tells whether hierarchy h (relative to the root, e.g.
	// "usr") holds a merge of the class, by bakery or systemd, and which
	// extensions it holds, lowest first, as its marker lists them.
	merged(h string) (names []string, ok bool, err error)
	// build builds the merge of hierarchy h aside, not yet visible: a
	// marker listing all (every extension merged, lowest first), the
	// layers of those of exts with content in h, the last on top, and
	// the host's h at the bottom. It returns the names of the extensions
	// in it, highest first, or a nil merge when none has content in h.
	build(h string, exts []Extension, all []string) (io.Closer, []string, error)
	// swapIn puts a merge build returned on h, in place of the merge of
	// the class there, if any, atomically.
	swapIn(h string, merge io.Closer) error
	// unmerge takes every merge of the class off h; none is fine.
	unmerge(h string) error
}

// kernel is the mounter of a node: loop devices, detached mounts,
// overlayfs, moving mounts into place.
type kernel struct {
	root  string
	class sysext.Class
}

// detached is a mount not attached anywhere yet, held by its fd.
type detached int

// Close releases the mount; once it is swapped in, the mount stays.
func (d detached) Close() error { return unix.Close(int(d)) }

// dir is hierarchy h's path on the node.
func (k kernel) dir(h string) string { return filepath.Join(k.root, h) }

// Open implements Opener.
func (k kernel) Open(img Image, policy Policy) (Tree, string, error) {
	return openImage(k.root, k.class, img, policy)
}

func (k kernel) merged(h string) ([]string, bool, error) {
	dir := k.dir(h)
	merged, err := isMerged(dir, k.class)
	if err != nil || !merged {
		return nil, false, err
	}
	data, err := os.ReadFile(filepath.Join(dir, k.class.Marker, k.class.MarkerList))
	if err != nil {
		return nil, false, fmt.Errorf("read the merge marker of /%s: %w", h, err)
	}
	return splitLines(string(data)), true, nil
}

// layered is a tree the kernel opened (a mountTree, or a ddiTree around
// one), whose hierarchies can be overlay layers.
type layered interface {
	layer(h string) (fd int, ok bool, err error)
}

func (k kernel) build(h string, exts []Extension, all []string) (io.Closer, []string, error) {
	var layers []int
	var names []string
	defer func() {
		for _, fd := range layers {
			unix.Close(fd)
		}
	}()
	for i := len(exts) - 1; i >= 0; i-- {
		e := exts[i]
		t, ok := e.Tree.(layered)
		if !ok {
			return nil, nil, fmt.Errorf("extension %s: not opened by the kernel", e.Name)
		}
		fd, ok, err := t.layer(h)
		if err != nil {
			return nil, nil, fmt.Errorf("extension %s: %w", e.Name, err)
		}
		if ok {
			layers = append(layers, fd)
			names = append(names, e.Name)
		}
	}
	if len(layers) == 0 {
		return nil, nil, nil
	}
	host, ok, err := hostLayer(k.dir(h), k.class)
	if err != nil {
		return nil, nil, err
	}
	if ok {
		defer unix.Close(host)
	} else {
		host = -1
	}
	fd, err := buildOverlay(layers, host, all, k.class, k.dir(h))
	if err != nil {
		return nil, nil, fmt.Errorf("merge /%s: %w", h, err)
	}
	return detached(fd), names, nil
}

func (k kernel) swapIn(h string, merge io.Closer) error {
	fd, ok := merge.(detached)
	if !ok {
		return fmt.Errorf("merge /%s: not built by the kernel", h)
	}
	return swapIn(int(fd), k.dir(h), k.class)
}

func (k kernel) unmerge(h string) error { return unmergeDir(k.dir(h), k.class) }
