package merge

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sysext-bakery/bakery/internal/smallfile"
	"github.com/sysext-bakery/bakery/sign"
)

// VerityCertDirs are where systemd looks for the certificates that may
// sign a DDI's dm-verity root hash (conf_files of "verity.d": a name in
// an earlier directory hides the same name in a later one).
var VerityCertDirs = []string{"etc/verity.d", "run/verity.d", "usr/local/lib/verity.d", "usr/lib/verity.d"}

// maxCertSize bounds a certificate file.
const maxCertSize = 1 << 20

// LoadCertificates reads the certificates trusted to sign DDIs under
// root: the *.crt files of VerityCertDirs, as systemd reads them (regular
// files, sorted by name, first name wins, an empty file masks the name),
// then the sync configuration's certificates. A file that cannot be read
// is skipped with a warning, as systemd skips it.
func LoadCertificates(root string, cfg *Config) ([]*x509.Certificate, []string) {
	var (
		certs    []*x509.Certificate
		warnings []string
		seen     = map[string]bool{}
		paths    []string
	)
	for _, dir := range VerityCertDirs {
		entries, err := os.ReadDir(filepath.Join(root, dir))
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				warnings = append(warnings, fmt.Sprintf("/%s: %v", dir, err))
			}
			continue
		}
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), ".crt") || seen[e.Name()] {
				continue
			}
			seen[e.Name()] = true
			paths = append(paths, "/"+dir+"/"+e.Name())
		}
	}
	slices.SortFunc(paths, func(a, b string) int { return strings.Compare(filepath.Base(a), filepath.Base(b)) })
	if cfg != nil {
		paths = append(paths, cfg.Certificates...)
	}
	for _, p := range paths {
		cert, masked, err := readCertificate(filepath.Join(root, p))
		switch {
		case masked:
		case err != nil:
			warnings = append(warnings, fmt.Sprintf("trusted certificate %s skipped: %v", p, err))
		default:
			certs = append(certs, cert)
		}
	}
	return certs, warnings
}

// readCertificate reads a PEM certificate file: a regular file (a
// symlink is followed, as systemd does) of at most maxCertSize bytes, read
// by smallfile.Read (which a fifo or a file swapped in after the Stat
// cannot block or outgrow); an empty file or a link to /dev/null masks.
func readCertificate(p string) (*x509.Certificate, bool, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, false, err
	}
	if fi.Mode()&fs.ModeCharDevice != 0 || fi.Mode().IsRegular() && fi.Size() == 0 {
		return nil, true, nil
	}
	data, err := smallfile.Read(p, maxCertSize)
	if err != nil {
		return nil, false, err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, true, nil
	}
	cert, err := sign.ParseCertificate(data)
	return cert, false, err
}
