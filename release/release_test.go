package release

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sysext-bakery/bakery/internal/sha256sums"
	"github.com/sysext-bakery/bakery/sign/pgp"
	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/formats"
)

// makeImage builds NAME-VERSION-ARCH.raw in dir with bakery's default
// writer: an extension-release and a file whose content is payload.
func makeImage(t *testing.T, dir, name, version, arch, payload string) string {
	t.Helper()
	src := t.TempDir()
	rel := filepath.Join(src, sysext.Sysext.ReleaseDir)
	os.MkdirAll(rel, 0o755)
	os.WriteFile(filepath.Join(rel, "extension-release."+name), []byte(fmt.Sprintf("ID=_any\nARCHITECTURE=%s\nSYSEXT_ID=%s\nSYSEXT_VERSION_ID=%s\n", arch, name, version)), 0o644)
	os.MkdirAll(filepath.Join(src, "usr/share", name), 0o755)
	os.WriteFile(filepath.Join(src, "usr/share", name, "payload"), []byte(payload), 0o644)
	os.MkdirAll(dir, 0o755)
	dst := filepath.Join(dir, sysext.ImageFile(name, version, arch))
	b := formats.Default().Builders()[0]
	if err := b.Build(context.Background(), src, dst, sysext.BuildOptions{Compression: b.Compressions()[0], AllRoot: true}); err != nil {
		t.Fatal(err)
	}
	return dst
}

// snapshot is every file of dir and its content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(data)
	}
	return out
}

func TestWriteRefusals(t *testing.T) {
	key, err := pgp.Generate("release test", time.Unix(1_700_000_000, 0))
	if err != nil {
		t.Fatal(err)
	}
	signed := Options{BaseURL: "https://example.com/sysexts", Key: key}
	cases := []struct {
		name string
		// prepare makes the release directory's earlier state and returns
		// the inputs of the release under test.
		prepare func(t *testing.T, dir string) []string
		opts    Options
		want    string
	}{
		{"another image under a released name", func(t *testing.T, dir string) []string {
			in := makeImage(t, t.TempDir(), "a", "1.0", "x86-64", "v1")
			if _, err := Write(dir, []string{in}, signed); err != nil {
				t.Fatal(err)
			}
			return []string{makeImage(t, t.TempDir(), "a", "1.0", "x86-64", "evil")}
		}, signed, "a released version is never replaced"},
		{"a released image changed on disk", func(t *testing.T, dir string) []string {
			in := makeImage(t, t.TempDir(), "a", "1.0", "x86-64", "v1")
			if _, err := Write(dir, []string{in}, signed); err != nil {
				t.Fatal(err)
			}
			makeImage(t, dir, "a", "1.0", "x86-64", "swapped")
			return []string{makeImage(t, t.TempDir(), "a", "2.0", "x86-64", "v2")}
		}, signed, "changed after it was released"},
		{"a name that prefixes another", func(t *testing.T, dir string) []string {
			return []string{makeImage(t, t.TempDir(), "a", "1.0", "x86-64", ""), makeImage(t, t.TempDir(), "a-b", "1.0", "x86-64", "")}
		}, signed, "cannot share a release directory"},
		{"a file name its extension-release contradicts", func(t *testing.T, dir string) []string {
			p := makeImage(t, t.TempDir(), "a", "1.0", "x86-64", "")
			q := filepath.Join(filepath.Dir(p), "a-9.9-x86-64.raw")
			os.Rename(p, q)
			return []string{q}
		}, signed, "its extension-release says a-1.0-x86-64.raw"},
		{"a version sysupdate cannot match", func(t *testing.T, dir string) []string {
			return []string{makeImage(t, t.TempDir(), "a", "1.0~rc1", "x86-64", "")}
		}, signed, "systemd-sysupdate matches only"},
		{"the noop name", func(t *testing.T, dir string) []string {
			return []string{makeImage(t, t.TempDir(), "noop", "1", "x86-64", "")}
		}, signed, "may not be called"},
		{"unsigned into a signed directory", func(t *testing.T, dir string) []string {
			if _, err := Write(dir, []string{makeImage(t, t.TempDir(), "a", "1.0", "x86-64", "")}, signed); err != nil {
				t.Fatal(err)
			}
			return []string{makeImage(t, t.TempDir(), "a", "2.0", "x86-64", "")}
		}, Options{BaseURL: "https://example.com/"}, "release into it with --gpg-key"},
		{"a damaged image in a bake directory", func(t *testing.T, dir string) []string {
			in := t.TempDir()
			p := makeImage(t, in, "a", "1.0", "x86-64", "")
			sha256sums.Update(filepath.Join(in, SumsFile), map[string]string{filepath.Base(p): strings.Repeat("0", 64)})
			return []string{in}
		}, signed, "the image is damaged"},
		{"a bake directory's SHA256SUMS that is a fifo", func(t *testing.T, dir string) []string {
			in := t.TempDir()
			makeImage(t, in, "a", "1.0", "x86-64", "")
			if err := unix.Mkfifo(filepath.Join(in, SumsFile), 0o644); err != nil {
				t.Fatal(err)
			}
			return []string{in}
		}, signed, "not a regular file"},
		{"a bake directory's SHA256SUMS naming a file outside it", func(t *testing.T, dir string) []string {
			in := t.TempDir()
			makeImage(t, in, "a", "1.0", "x86-64", "")
			os.WriteFile(filepath.Join(in, SumsFile), []byte(strings.Repeat("0", 64)+"  ../x\n"), 0o644)
			return []string{in}
		}, signed, `entry "../x" is not a file of the directory`},
		{"a bake directory's SHA256SUMS larger than a node downloads", func(t *testing.T, dir string) []string {
			in := t.TempDir()
			makeImage(t, in, "a", "1.0", "x86-64", "")
			os.WriteFile(filepath.Join(in, SumsFile), bytes.Repeat([]byte("#\n"), maxIndexSize), 0o644)
			return []string{in}
		}, signed, "larger than"},
		{"plain http to another host", func(t *testing.T, dir string) []string { return nil },
			Options{BaseURL: "http://example.com/"}, "plain http"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			inputs := c.prepare(t, dir)
			before := snapshot(t, dir)
			_, err := Write(dir, inputs, c.opts)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
			after := snapshot(t, dir)
			if fmt.Sprint(before) != fmt.Sprint(after) {
				t.Errorf("a refused release changed the directory:\nbefore %v\nafter  %v", keys(before), keys(after))
			}
		})
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestWriteAddsVersions: releasing into a directory keeps what is there,
// lists everything, changes no byte when nothing is new, and drops the
// line of an image the operator removed.
func TestWriteAddsVersions(t *testing.T) {
	key, err := pgp.Generate("release test", time.Unix(1_700_000_000, 0))
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{BaseURL: "https://example.com/sysexts", Key: key}
	dir := filepath.Join(t.TempDir(), "public")
	v1 := makeImage(t, t.TempDir(), "a", "1.0", "x86-64", "v1")
	if _, err := Write(dir, []string{v1}, opts); err != nil {
		t.Fatal(err)
	}
	first := snapshot(t, dir)
	// The same release again: not a byte changes, the signature is kept.
	res, err := Write(dir, []string{v1}, opts)
	if err != nil || res.Resigned || res.Images[0].Added {
		t.Fatalf("release again: %+v %v", res, err)
	}
	if fmt.Sprint(snapshot(t, dir)) != fmt.Sprint(first) {
		t.Error("releasing the same image again changed the directory")
	}
	// A new version and a new arch, one baked into the directory.
	v2 := makeImage(t, t.TempDir(), "a", "2.0", "x86-64", "v2")
	makeImage(t, dir, "a", "2.0", "arm64", "v2 arm")
	if res, err = Write(dir, []string{v2}, opts); err != nil || !res.Resigned {
		t.Fatalf("release 2.0: %+v %v", res, err)
	}
	sums, err := sha256sums.Parse([]byte(snapshot(t, dir)[SumsFile]))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"a-1.0-x86-64.raw", "a-2.0-x86-64.raw", "a-2.0-arm64.raw", "a.transfer", "a.conf", "noop.transfer", "noop.conf"} {
		if sums[f] == "" {
			t.Errorf("%s is not in %s", f, SumsFile)
		}
	}
	if _, err := key.Public().Verify([]byte(snapshot(t, dir)[SumsFile]), []byte(snapshot(t, dir)[SignatureFile])); err != nil {
		t.Errorf("%s does not sign %s: %v", SignatureFile, SumsFile, err)
	}
	// The operator removes the oldest image: its line goes, with a warning.
	os.Remove(filepath.Join(dir, "a-1.0-x86-64.raw"))
	if res, err = Write(dir, nil, opts); err != nil || len(res.Warnings) != 1 || strings.Contains(snapshot(t, dir)[SumsFile], "a-1.0") {
		t.Errorf("after removing an image: %+v %v", res, err)
	}
}

func TestTransferRender(t *testing.T) {
	cases := []struct {
		t    Transfer
		want []string
	}{
		{Transfer{Name: "kubernetes", Class: sysext.Sysext, BaseURL: "https://example.com/s/", Verify: true}, []string{
			"Verify=yes", "Type=url-file\nPath=https://example.com/s/\nMatchPattern=kubernetes-@v-%a.raw",
			"Path=/opt/extensions/kubernetes\nMatchPattern=kubernetes-@v-%a.raw\nCurrentSymlink=/etc/extensions/kubernetes.raw\nInstancesMax=3",
		}},
		{Transfer{Name: "motd", Class: sysext.Confext, BaseURL: "https://example.com/"}, []string{
			"Verify=no", "Path=/opt/confexts/motd", "CurrentSymlink=/var/lib/confexts/motd.raw",
		}},
	}
	for _, c := range cases {
		got := string(c.t.Render())
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: transfer lacks %q:\n%s", c.t.Name, w, got)
			}
		}
	}
}

func TestCheckURL(t *testing.T) {
	cases := []struct {
		url  string
		want string // "" for accepted
	}{
		{"https://example.com/sysexts/", ""},
		{"http://127.0.0.1:8080/", ""},
		{"http://[::1]:8080/x", ""},
		{"http://localhost/x", ""},
		{"http://example.com/", "plain http"},
		{"ftp://example.com/", "use https"},
		{"https://user:pw@example.com/", "credentials"},
		{"https://example.com/?x=1", "query"},
		{"/local/dir", "no host"},
	}
	for _, c := range cases {
		_, err := CheckURL(c.url)
		if (err == nil) != (c.want == "") || err != nil && !strings.Contains(err.Error(), c.want) {
			t.Errorf("CheckURL(%q) = %v, want %q", c.url, err, c.want)
		}
	}
}

// TestOpenServedRelease reads a written directory over loopback HTTP as a
// node (or bakery butane) does: the signature against the trusted keys,
// the newest version by systemd's ordering, each download by its sha256.
func TestOpenServedRelease(t *testing.T) {
	key, _ := pgp.Generate("release test", time.Unix(1_700_000_000, 0))
	other, _ := pgp.Generate("someone else", time.Unix(1_700_000_000, 0))
	dir := t.TempDir()
	var in []string
	for _, v := range []string{"1.9", "1.10", "1.2"} {
		in = append(in, makeImage(t, t.TempDir(), "a", v, "x86-64", v))
	}
	in = append(in, makeImage(t, t.TempDir(), "a", "9.0", "arm64", "arm"))
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	if _, err := Write(dir, in, Options{BaseURL: srv.URL, Key: key}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ix, err := Open(ctx, srv.Client(), srv.URL, key.Public())
	if err != nil {
		t.Fatal(err)
	}
	file, version, err := ix.Newest("a", "x86-64")
	if err != nil || file != "a-1.10-x86-64.raw" || version != "1.10" {
		t.Fatalf("Newest = %s %s %v, want a-1.10-x86-64.raw", file, version, err)
	}
	if _, _, err := ix.Newest("b", "x86-64"); err == nil {
		t.Error("Newest found an extension that is not released")
	}
	cases := []struct {
		name   string
		tamper func()
		keys   pgp.Keyring
		want   string // "" when everything verifies
	}{
		{"as released", func() {}, key.Public(), ""},
		{"another key", func() {}, other.Public(), "no valid OpenPGP signature"},
		{"tampered image", func() {
			os.WriteFile(filepath.Join(dir, file), []byte("evil"), 0o644)
		}, key.Public(), "tampered with"},
		{"tampered SHA256SUMS", func() {
			f, _ := os.OpenFile(filepath.Join(dir, SumsFile), os.O_APPEND|os.O_WRONLY, 0)
			f.WriteString(strings.Repeat("0", 64) + "  a-99-x86-64.raw\n")
			f.Close()
		}, key.Public(), "no valid OpenPGP signature"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.tamper()
			ix, err := Open(ctx, srv.Client(), srv.URL, c.keys)
			if err == nil {
				f, _ := os.Create(filepath.Join(t.TempDir(), "dl"))
				err = ix.Download(ctx, file, f)
				f.Close()
			}
			if (err == nil) != (c.want == "") || err != nil && !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want %q", err, c.want)
			}
		})
	}
}

// TestWriteDropsSelfEntries: an operator's SHA256SUMS made with sha256sum
// of the whole folder lists SHA256SUMS.gpg (and the file itself); the next
// release drops those lines with a warning, signs, and the one after that
// is not refused.
func TestWriteDropsSelfEntries(t *testing.T) {
	key, err := pgp.Generate("release test", time.Unix(1_700_000_000, 0))
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{BaseURL: "https://example.com/sysexts", Key: key}
	dir := t.TempDir()
	if _, err := Write(dir, []string{makeImage(t, t.TempDir(), "a", "1.0", "x86-64", "v1")}, opts); err != nil {
		t.Fatal(err)
	}
	sums := map[string]string{}
	for f, content := range snapshot(t, dir) {
		h := sha256.Sum256([]byte(content))
		sums[f] = hex.EncodeToString(h[:])
	}
	if err := os.WriteFile(filepath.Join(dir, SumsFile), sha256sums.Render(sums), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Write(dir, []string{makeImage(t, t.TempDir(), "a", "2.0", "x86-64", "v2")}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(res.Warnings, "\n"), SignatureFile) {
		t.Errorf("warnings %q, want the dropped %s line named", res.Warnings, SignatureFile)
	}
	listed, err := sha256sums.Parse([]byte(snapshot(t, dir)[SumsFile]))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{SumsFile, SignatureFile} {
		if _, ok := listed[f]; ok {
			t.Errorf("%s lists %s", SumsFile, f)
		}
	}
	if _, err := Write(dir, []string{makeImage(t, t.TempDir(), "a", "3.0", "x86-64", "v3")}, opts); err != nil {
		t.Errorf("the release after: %v", err)
	}
}

// TestNewestTie: of versions that compare equal, Newest picks the same
// file every time (the first by name), not whichever map order gives.
func TestNewestTie(t *testing.T) {
	if sysext.CompareVersions("1.0", "1.00") != 0 {
		t.Skip("1.0 and 1.00 do not compare equal")
	}
	ix := &Index{Sums: map[string]string{"a-1.0-x86-64.raw": "x", "a-1.00-x86-64.raw": "y", "a-0.9-x86-64.raw": "z"}}
	for range 50 {
		if file, _, err := ix.Newest("a", "x86-64"); err != nil || file != "a-1.0-x86-64.raw" {
			t.Fatalf("Newest = %s, %v; want a-1.0-x86-64.raw every time", file, err)
		}
	}
}
