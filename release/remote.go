package release

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/sysext-bakery/bakery/internal/download"
	"github.com/sysext-bakery/bakery/internal/sha256sums"
	"github.com/sysext-bakery/bakery/sign/pgp"
	"github.com/sysext-bakery/bakery/sysext"
)

// maxIndexSize bounds SHA256SUMS and its signature as systemd-pull bounds
// them (1 MiB).
const maxIndexSize = 1 << 20

// MaxImageSize bounds an image fetched from a release directory (or any
// URL), so that a hostile server cannot fill the disk before the checksum
// fails.
const MaxImageSize int64 = 16 << 30

// Index is a served release directory's SHA256SUMS, verified against
// trusted keys the way systemd-sysupdate verifies it with Verify=yes.
type Index struct {
	// BaseURL is the directory's URL, ending in "/".
	BaseURL string
	// Sums maps each file listed to its sha256.
	Sums map[string]string
	// Fingerprint is the key whose signature verified.
	Fingerprint string
	client      *http.Client
}

// Open fetches the SHA256SUMS and SHA256SUMS.gpg of the release directory
// at baseURL (CheckURL) and checks the signature against keys.
func Open(ctx context.Context, client *http.Client, baseURL string, keys pgp.Keyring) (*Index, error) {
	u, err := CheckURL(baseURL)
	if err != nil {
		return nil, err
	}
	ix := &Index{BaseURL: DirURL(u), client: client}
	sums, err := ix.get(ctx, SumsFile)
	if err != nil {
		return nil, err
	}
	sig, err := ix.get(ctx, SignatureFile)
	if err != nil {
		return nil, fmt.Errorf("%w (is the release signed? bakery release --gpg-key)", err)
	}
	if ix.Fingerprint, err = keys.Verify(sums, sig); err != nil {
		return nil, fmt.Errorf("%s%s: %w", ix.BaseURL, SumsFile, err)
	}
	if ix.Sums, err = sha256sums.Parse(sums); err != nil {
		return nil, fmt.Errorf("%s%s: %w", ix.BaseURL, SumsFile, err)
	}
	return ix, nil
}

// get fetches a small file of the directory.
func (ix *Index) get(ctx context.Context, file string) ([]byte, error) {
	var b bytes.Buffer
	t := download.Target{Writers: []io.Writer{&b}, Reset: func() error { b.Reset(); return nil }}
	if _, err := download.Get(ctx, ix.client, ix.URL(file), t, download.Options{Size: -1, MaxSize: maxIndexSize}); err != nil {
		return nil, fmt.Errorf("fetch %s: %w", ix.URL(file), err)
	}
	return b.Bytes(), nil
}

// URL is the URL of a file of the directory.
func (ix *Index) URL(file string) string {
	return ix.BaseURL + url.PathEscape(file)
}

// Newest finds the newest version of extension name for arch: the image
// systemd-sysupdate would install (versions compared as it compares them;
// of versions that compare equal, such as 1.0 and 1.00, the file name
// first in byte order, so that the answer does not depend on map order).
func (ix *Index) Newest(name, arch string) (file, version string, err error) {
	prefix, suffix := name+"-", "-"+arch+".raw"
	for _, f := range slices.Sorted(maps.Keys(ix.Sums)) {
		if !strings.HasPrefix(f, prefix) || !strings.HasSuffix(f, suffix) || len(f) <= len(prefix)+len(suffix) {
			continue
		}
		v := f[len(prefix) : len(f)-len(suffix)]
		if CheckVersion(v, arch) != nil {
			continue
		}
		if version == "" || sysext.CompareVersions(v, version) > 0 {
			file, version = f, v
		}
	}
	if file == "" {
		return "", "", fmt.Errorf("%s%s lists no image of %s for %s (%s)", ix.BaseURL, SumsFile, name, arch, Transfer{Name: name}.Pattern())
	}
	return file, version, nil
}

// Download fetches a file listed in SHA256SUMS into the empty file f,
// feeding also (more hashes) as it arrives, and checks its sha256.
func (ix *Index) Download(ctx context.Context, file string, f *os.File, also ...io.Writer) error {
	want, ok := ix.Sums[file]
	if !ok {
		return fmt.Errorf("%s is not listed in %s%s", file, ix.BaseURL, SumsFile)
	}
	h := sha256.New()
	t := download.File(f, h)
	t.Writers = append(t.Writers, also...)
	reset := t.Reset
	t.Reset = func() error {
		for _, w := range also {
			if r, ok := w.(interface{ Reset() }); ok {
				r.Reset()
			}
		}
		return reset()
	}
	if _, err := download.Get(ctx, ix.client, ix.URL(file), t, download.Options{Size: -1, MaxSize: MaxImageSize}); err != nil {
		return fmt.Errorf("fetch %s: %w", ix.URL(file), err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("%s: sha256 %s, but the signed %s says %s: the file was tampered with", ix.URL(file), got, SumsFile, want)
	}
	return nil
}
