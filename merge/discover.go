package merge

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/sysext-bakery/bakery/sysext"
)

// ImageType is how an image is stored, in systemd's words.
type ImageType string

// The image types bakery merges.
const (
	Directory ImageType = "directory"
	Raw       ImageType = "raw"
)

// Image is one installed extension image found by Discover.
type Image struct {
	// Name is the extension's name: the file name without ".raw".
	Name string `json:"name"`
	// Type is "raw" for an image file, "directory" for a tree.
	Type ImageType `json:"type"`
	// Path is where the image is, relative to the root.
	Path string `json:"path"`
	// ModTime is the image's modification time.
	ModTime time.Time `json:"-"`
}

// Refusal says why an image is not merged.
type Refusal struct {
	Name   string `json:"name"`
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// String is the refusal as one log line: name, path and reason.
func (r Refusal) String() string { return fmt.Sprintf("%s (%s): %s", r.Name, r.Path, r.Reason) }

// Discover lists the extension images of class c installed under fsys,
// which is the root file system, in systemd-sysext's way: each of
// c.SearchDirs in order (an image in an earlier directory hides one of the
// same name in a later one),
// entries sorted by name, hidden entries ignored, the first image of a name
// wins. Directories and regular files named NAME.raw are images. A symlink
// is refused rather than followed (systemd follows it, which lets a link
// planted in an extensions directory merge a file from anywhere), and so is
// a NAME.raw that is not a regular file; either still claims its name. An
// empty directory claims its name too (it masks lower-priority images) and
// is reported as a refusal. Images are returned sorted by name.
func Discover(fsys fs.FS, c sysext.Class) ([]Image, []Refusal, error) {
	seen := map[string]bool{}
	var images []Image
	var refused []Refusal
	for _, dir := range c.SearchDirs {
		entries, err := fs.ReadDir(fsys, dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("discover images in /%s: %w", dir, err)
		}
		for _, e := range entries {
			img, reason, ok := classify(fsys, dir, e)
			if !ok || seen[img.Name] {
				continue
			}
			seen[img.Name] = true
			if reason != "" {
				refused = append(refused, Refusal{Name: img.Name, Path: img.Path, Reason: reason})
				continue
			}
			images = append(images, img)
		}
	}
	slices.SortFunc(images, func(a, b Image) int { return sysext.CompareVersions(a.Name, b.Name) })
	return images, refused, nil
}

// classify tells whether a directory entry is an image (ok), and if it is
// one that must not be merged, why.
func classify(fsys fs.FS, dir string, e fs.DirEntry) (img Image, reason string, ok bool) {
	name := e.Name()
	if strings.HasPrefix(name, ".") {
		return Image{}, "", false
	}
	p := path.Join(dir, name)
	info, err := fs.Lstat(fsys, p)
	if err != nil {
		return Image{Name: strings.TrimSuffix(name, ".raw"), Path: p}, fmt.Sprintf("cannot stat: %v", err), true
	}
	img = Image{Name: name, Type: Directory, Path: p, ModTime: info.ModTime()}
	switch mode := info.Mode(); {
	case mode.IsDir():
	case strings.HasSuffix(name, ".raw"):
		img.Name, img.Type = strings.TrimSuffix(name, ".raw"), Raw
		switch {
		case mode&fs.ModeSymlink != 0:
			target, _ := fs.ReadLink(fsys, p)
			reason = fmt.Sprintf("is a symlink (to %q), which bakery does not follow; install the image as a regular file", target)
		case !mode.IsRegular():
			reason = fmt.Sprintf("is not a regular file (%s); install the image as a regular file", mode.Type())
		}
	case mode&fs.ModeSymlink != 0:
		target, _ := fs.ReadLink(fsys, p)
		reason = fmt.Sprintf("is a symlink (to %q), which bakery does not follow; install the image as a directory or NAME.raw file", target)
	default:
		return Image{}, "", false
	}
	if err := sysext.CheckImageName(img.Name); reason == "" && err != nil {
		reason = err.Error()
	}
	if reason == "" && img.Type == Directory {
		if entries, err := fs.ReadDir(fsys, p); err == nil && len(entries) == 0 {
			reason = "empty directory: masks images of this name in lower-priority directories"
		}
	}
	return img, reason, true
}
