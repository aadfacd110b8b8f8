package registry

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/sysext-bakery/bakery/internal/sha256sums"
	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/formats"
	"github.com/sysext-bakery/bakery/sysext/inspect"
)

// localImage is one NAME-VERSION-ARCH.raw file about to be pushed.
type localImage struct {
	path    string
	title   string // base name, NAME-VERSION-ARCH.raw
	name    string
	version string
	arch    sysext.Arch
	release sysext.Release
	fstype  string
	class   sysext.Class
	layerMT types.MediaType
	digest  v1.Hash
	size    int64
	// checkOnRead: digest came from SHA256SUMS and is checked as the file
	// is uploaded.
	checkOnRead bool
	// inputs is the inputs digest the image was baked from (bake's INPUTS,
	// or WithInputsDigests), "" when unknown.
	inputs string
}

// expandImages turns the DIR|IMAGE.raw arguments of push into image files:
// a directory stands for every *.raw in it. Directories holding SHA256SUMS
// also give the expected digest of each image (sums), and those holding
// bake's INPUTS the inputs digest each was baked from (inputs), both keyed
// by path.
func expandImages(args []string) (paths []string, sums, inputs map[string]string, err error) {
	sums, inputs = map[string]string{}, map[string]string{}
	for _, a := range args {
		fi, err := os.Stat(a)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("image %s: %w", a, err)
		}
		if !fi.IsDir() {
			paths = append(paths, a)
			continue
		}
		found, err := filepath.Glob(filepath.Join(a, "*.raw"))
		if err != nil {
			return nil, nil, nil, err
		}
		if len(found) == 0 {
			return nil, nil, nil, fmt.Errorf("directory %s holds no *.raw images: bake into it first (bakery bake RECIPE --out %s)", a, a)
		}
		sort.Strings(found)
		paths = append(paths, found...)
		for file, into := range map[string]map[string]string{"SHA256SUMS": sums, "INPUTS": inputs} {
			if err := readSums(a, file, into); err != nil {
				return nil, nil, nil, err
			}
		}
	}
	for p, h := range inputs {
		inputs[p] = "sha256:" + h
	}
	return paths, sums, inputs, nil
}

// readSums adds the entries of the SHA256SUMS-style file dir/file, if it
// exists, to into, keyed by path.
func readSums(dir, file string, into map[string]string) error {
	data, err := os.ReadFile(filepath.Join(dir, file))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	parsed, err := sha256sums.Parse(data)
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, file), err)
	}
	for n, h := range parsed {
		into[filepath.Join(dir, n)] = h
	}
	return nil
}

// inspectImage reads what push needs to know about one image file.
//
// When SHA256SUMS gave the file's digest (sum, hex), the file is not hashed
// here: the digest is checked while the layer is uploaded (and again by
// the registry), so a file changed after baking fails the push.
func inspectImage(path, sum string, read releaseReader) (*localImage, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", path, err)
	}
	defer f.Close()
	img := &localImage{path: path, title: filepath.Base(path)}
	img.fstype, err = detectFSType(f)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", path, err)
	}
	if sum != "" {
		fi, err := f.Stat()
		if err != nil {
			return nil, err
		}
		img.size, img.digest, img.checkOnRead = fi.Size(), v1.Hash{Algorithm: "sha256", Hex: sum}, true
	} else {
		if img.digest, img.size, err = v1.SHA256(f); err != nil {
			return nil, fmt.Errorf("image %s: %w", path, err)
		}
	}
	img.class, img.name, img.release, err = read(path)
	if err != nil {
		return nil, fmt.Errorf("image %s: read extension-release: %w", path, err)
	}
	img.layerMT = layerMediaType(img.class, img.fstype)
	archName := img.release["ARCHITECTURE"]
	if archName == "" {
		return nil, fmt.Errorf("image %s: extension-release.%s has no ARCHITECTURE= (bake with --arch, an index entry needs a platform)", path, img.name)
	}
	if img.arch, err = sysext.ArchByName(archName); err != nil {
		return nil, fmt.Errorf("image %s: extension-release.%s: %w", path, img.name, err)
	}
	img.version = img.release[img.class.VersionField]
	if img.version == "" {
		img.version = versionFromTitle(img.title, img.name, archName)
	}
	if img.version == "" {
		return nil, fmt.Errorf("image %s: no version: set %s= in extension-release.%s or name the file %s-VERSION-%s.raw", path, img.class.VersionField, img.name, img.name, archName)
	}
	return img, nil
}

// versionFromTitle takes VERSION out of NAME-VERSION-ARCH.raw.
func versionFromTitle(title, name, arch string) string {
	v, ok := strings.CutPrefix(title, name+"-")
	if !ok {
		return ""
	}
	v, ok = strings.CutSuffix(v, "-"+arch+".raw")
	if !ok {
		return ""
	}
	return v
}

// detectFSType tells the image's format by its name ("squashfs",
// "erofs", "ddi").
func detectFSType(f io.ReaderAt) (string, error) {
	format, err := formats.Detect(f)
	if err != nil {
		return "", fmt.Errorf("not an extension image: %w", err)
	}
	return format.Name(), nil
}

// releaseReader reads an image's extension-release: its class, the NAME
// of its extension-release.NAME file and the fields.
type releaseReader func(imagePath string) (sysext.Class, string, sysext.Release, error)

// fromReleaseReader adapts a ReleaseReader, which only gives the fields:
// the class is confext when a CONFEXT_ field is set, and the name is the
// class's ID field (SYSEXT_ID), else taken from the file name.
func fromReleaseReader(r ReleaseReader) releaseReader {
	return func(path string) (sysext.Class, string, sysext.Release, error) {
		rel, err := r(path)
		if err != nil {
			return sysext.Class{}, "", nil, err
		}
		c := sysext.Sysext
		for _, f := range []string{sysext.Confext.IDField, sysext.Confext.VersionField, sysext.Confext.LevelField, sysext.Confext.ScopeField} {
			if rel[f] != "" {
				c = sysext.Confext
			}
		}
		if n := rel[c.IDField]; n != "" {
			return c, n, rel, nil
		}
		title := strings.TrimSuffix(filepath.Base(path), ".raw")
		suffix := "-" + rel[c.VersionField] + "-" + rel["ARCHITECTURE"]
		if n, ok := strings.CutSuffix(title, suffix); ok && rel[c.VersionField] != "" && n != "" {
			return c, n, rel, nil
		}
		return sysext.Class{}, "", nil, fmt.Errorf("cannot tell the extension name: set %s= and %s= in its extension-release", c.IDField, c.VersionField)
	}
}

// readReleaseNative is the default releaseReader: it opens the image with
// bakery's own reader of its format (a DDI's root partition with the
// reader of the file system inside) and reads only its extension-release.
func readReleaseNative(path string) (sysext.Class, string, sysext.Release, error) {
	f, err := os.Open(path)
	if err != nil {
		return sysext.Class{}, "", nil, err
	}
	defer f.Close()
	fsys, _, err := inspect.Open(f)
	if err != nil {
		return sysext.Class{}, "", nil, err
	}
	return sysext.DetectRelease(fsys)
}

// tagSafe turns a version into an OCI tag: '+' becomes '_', other
// characters outside [A-Za-z0-9_.-] become '_', at most 128 characters,
// not starting with '.' or '-'.
func tagSafe(version string) string {
	b := []byte(version)
	for i, c := range b {
		ok := c == '_' || c == '.' || c == '-' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !ok {
			b[i] = '_'
		}
	}
	if len(b) > 0 && (b[0] == '.' || b[0] == '-') {
		b = append([]byte{'_'}, b...)
	}
	if len(b) > 128 {
		b = b[:128]
	}
	return string(b)
}
