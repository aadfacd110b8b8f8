package main

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sysext-bakery/bakery/sysext"
)

// debian13 returns ../shared/tools/in-debian13 beside the repository when
// it can run systemd-sysupdate 257 with gpg (scripts/setup makes the
// Debian 13 root and installs gpg into it), and skips the test otherwise.
func debian13(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("in-debian13 needs root")
	}
	tool, err := filepath.Abs("../../../shared/tools/in-debian13")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tool); err != nil {
		t.Skipf("../shared/tools/in-debian13 is not beside the repository: %v", err)
	}
	root := cmp.Or(os.Getenv("BAKERY_DEBIAN13"), "/var/cache/bakery-oracle/debian13")
	if _, err := os.Stat(filepath.Join(root, ".complete")); err != nil {
		t.Skip("no Debian 13 root with systemd 257 (scripts/setup makes it with ../shared/tools/debian13-root)")
	}
	if _, err := os.Stat(filepath.Join(root, "usr/bin/gpg")); err != nil {
		t.Skip("the Debian 13 root has no gpg, which systemd-pull verifies with (scripts/setup installs it)")
	}
	return tool
}

// sysupdate runs the real systemd-sysupdate 257 from the Debian 13 root as
// the node's: the node root's etc/ and opt/ are laid over the Debian 13
// root's /etc and /opt (overlayfs, the node root as the upper layer, in the
// tool's private mount namespace), so that sysupdate reads the node's
// transfer definitions and keyring (/etc/systemd/import-pubring.gpg, which
// systemd-pull reads from the system it runs on, never under --root) and
// writes the node's /opt/extensions and /etc/extensions. Not --root: with
// it, systemd 257 resolves CurrentSymlink= through the existing link and
// replaces the image in use with a symlink (transfer_install_instance()
// chases the link path when a root is set), which a node never does.
func sysupdate(t *testing.T, tool, root string, args ...string) (string, error) {
	t.Helper()
	// overlayfs wants its upper and work directories under one mount: one
	// bind of the directory holding both.
	work, err := os.MkdirTemp(filepath.Dir(root), "sysupdate-work-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(work)
	script := `set -e
root=$1 work=$2; shift 2
for d in etc opt; do
  mkdir -p "$root/$d" "$work/$d"
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$root/$d,workdir=$work/$d" "/$d"
done
exec /usr/lib/systemd/systemd-sysupdate "$@"`
	full := append([]string{"--bind", filepath.Dir(root), "sh", "-c", script, "sh", root, work}, args...)
	out, err := exec.Command(tool, full...).CombinedOutput()
	return string(out), err
}

// serveSwitchable serves the directory *dir points to, which a test may
// change between requests.
func serveSwitchable(t *testing.T, dir *atomic.Pointer[string]) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.FileServer(http.Dir(*dir.Load())).ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/"
}

// installed lists the versions under the node's target directory and where
// its current symlink points.
func installed(t *testing.T, root, name string) ([]string, string) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(root, "opt/extensions", name))
	var files []string
	for _, e := range ents {
		files = append(files, e.Name())
	}
	link, _ := os.Readlink(filepath.Join(root, "etc/extensions", name+".raw"))
	return files, link
}

// copyDir copies the regular files of src into a new directory.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644)
	}
	return dst
}

// TestReleaseSysupdate publishes a signed release directory on loopback
// and lets the real systemd-sysupdate 257 install from it, as a stock
// node with our key in its keyring: the newest version for its arch and
// the symlink, a newer version on the next run, InstancesMax vacuuming,
// and a refusal of a tampered SHA256SUMS, a tampered image, a missing
// signature and a signature by another key.
func TestReleaseSysupdate(t *testing.T) {
	tool := debian13(t)
	arch := sysext.HostArch().Name
	other := "arm64"
	if arch == other {
		other = "x86-64"
	}
	work := t.TempDir()
	for _, k := range []string{"ours", "theirs"} {
		if _, stderr, code := run(t, "keygen", "--gpg", "--out", filepath.Join(work, k)); code != 0 {
			t.Fatalf("keygen --gpg: %s", stderr)
		}
	}
	pub := filepath.Join(work, "public")
	serving := atomic.Pointer[string]{}
	serving.Store(&pub)
	base := serveSwitchable(t, &serving)
	release := func(images ...string) {
		t.Helper()
		args := append([]string{"release", pub}, images...)
		if _, stderr, code := run(t, append(args, "--base-url", base, "--gpg-key", filepath.Join(work, "ours.key"))...); code != 0 {
			t.Fatalf("release: %s", stderr)
		}
	}
	release(sysextImage(t, t.TempDir(), "hello", "1.0", arch), sysextImage(t, t.TempDir(), "hello", "9.9", other))

	// sha256sum -c checks the whole directory.
	check := exec.Command("sha256sum", "-c", "--strict", "SHA256SUMS")
	check.Dir = pub
	if out, err := check.CombinedOutput(); err != nil || !strings.Contains(string(out), "hello.transfer: OK") {
		t.Fatalf("sha256sum -c: %v\n%s", err, out)
	}

	// The node: its keyring, the transfer definition, /etc/extensions.
	node := func(keyring string) string {
		root := t.TempDir()
		for _, d := range []string{"etc/extensions", "etc/systemd", "etc/sysupdate.hello.d"} {
			os.MkdirAll(filepath.Join(root, d), 0o755)
		}
		ring, _ := os.ReadFile(filepath.Join(work, keyring+".pubring.gpg"))
		os.WriteFile(filepath.Join(root, "etc/systemd/import-pubring.gpg"), ring, 0o644)
		def, _ := os.ReadFile(filepath.Join(pub, "hello.transfer"))
		if !bytes.Contains(def, []byte("Verify=yes")) {
			t.Fatalf("a signed release's transfer does not verify:\n%s", def)
		}
		os.WriteFile(filepath.Join(root, "etc/sysupdate.hello.d/hello.transfer"), def, 0o644)
		return root
	}
	root := node("ours")
	steps := []struct {
		publish string
		want    []string // installed versions after the run
	}{
		{"", []string{"1.0"}},
		{"1.1", []string{"1.0", "1.1"}},
		{"1.2", []string{"1.0", "1.1", "1.2"}},
		{"1.3", []string{"1.1", "1.2", "1.3"}}, // InstancesMax=3: 1.0 goes
	}
	for _, s := range steps {
		if s.publish != "" {
			release(sysextImage(t, t.TempDir(), "hello", s.publish, arch))
		}
		out, err := sysupdate(t, tool, root, "-C", "hello", "update")
		if err != nil {
			t.Fatalf("systemd-sysupdate update after publishing %q: %v\n%s", s.publish, err, out)
		}
		var want []string
		for _, v := range s.want {
			want = append(want, "hello-"+v+"-"+arch+".raw")
		}
		files, link := installed(t, root, "hello")
		newest := want[len(want)-1]
		if !slices.Equal(files, want) || link != "../../opt/extensions/hello/"+newest {
			t.Fatalf("after publishing %q: installed %v, current %q; want %v and %s\n%s", s.publish, files, link, want, newest, out)
		}
		got, _ := os.ReadFile(filepath.Join(root, "opt/extensions/hello", newest))
		if served, _ := os.ReadFile(filepath.Join(pub, newest)); !bytes.Equal(got, served) {
			t.Fatalf("%s installed differs from the released image", newest)
		}
	}

	// Attacks on the served directory, with 1.4 released: each must leave
	// a node with 1.3 as it is. The untampered directory is the control.
	release(sysextImage(t, t.TempDir(), "hello", "1.4", arch))
	newest := "hello-1.4-" + arch + ".raw"
	evil := evilImage(t, "hello", "1.4", arch)
	if released, _ := os.ReadFile(filepath.Join(pub, newest)); bytes.Equal(released, evil) {
		t.Fatal("the attacker's image is the released one: the attacks prove nothing")
	}
	attacks := []struct {
		name    string
		keyring string
		tamper  func(dir string)
		refusal string // what sysupdate says; "" when it must install
	}{
		{"untampered", "ours", func(string) {}, ""},
		{"tampered SHA256SUMS", "ours", func(dir string) {
			os.WriteFile(filepath.Join(dir, newest), evil, 0o644)
			sums, _ := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
			sum := sha256.Sum256(evil)
			lines := strings.Split(string(sums), "\n")
			for i, l := range lines {
				if strings.HasSuffix(l, "  "+newest) {
					lines[i] = hex.EncodeToString(sum[:]) + "  " + newest
				}
			}
			os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(strings.Join(lines, "\n")), 0o644)
		}, "BAD signature"},
		{"tampered image", "ours", func(dir string) {
			os.WriteFile(filepath.Join(dir, newest), evil, 0o644)
		}, "file did not check out"},
		{"no signature", "ours", func(dir string) { os.Remove(filepath.Join(dir, "SHA256SUMS.gpg")) }, "Failed to retrieve signature file"},
		{"the node trusts another key", "theirs", func(string) {}, "No public key"},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			dir := copyDir(t, pub)
			a.tamper(dir)
			serving.Store(&dir)
			defer serving.Store(&pub)
			root := node(a.keyring)
			prev := filepath.Join(root, "opt/extensions/hello", "hello-1.3-"+arch+".raw")
			os.MkdirAll(filepath.Dir(prev), 0o755)
			data, _ := os.ReadFile(filepath.Join(pub, filepath.Base(prev)))
			os.WriteFile(prev, data, 0o644)
			os.Symlink("../../opt/extensions/hello/"+filepath.Base(prev), filepath.Join(root, "etc/extensions/hello.raw"))
			out, err := sysupdate(t, tool, root, "-C", "hello", "update")
			files, link := installed(t, root, "hello")
			if a.refusal == "" {
				if err != nil || !slices.Contains(files, newest) || !strings.HasSuffix(link, newest) {
					t.Fatalf("the untampered release was not installed: %v %v %q\n%s", err, files, link, out)
				}
				return
			}
			if err == nil || slices.Contains(files, newest) || !strings.HasSuffix(link, filepath.Base(prev)) {
				t.Fatalf("systemd-sysupdate accepted it: exit %v, installed %v, current %q\n%s", err, files, link, out)
			}
			if !strings.Contains(out, a.refusal) {
				t.Errorf("refused, but not saying %q:\n%s", a.refusal, out)
			}
		})
	}
}

// evilImage is an image of name, version and arch that an attacker made:
// valid, but not the one released.
func evilImage(t *testing.T, name, version, arch string) []byte {
	t.Helper()
	tree := t.TempDir()
	rel := filepath.Join(tree, sysext.Sysext.ReleaseDir)
	os.MkdirAll(rel, 0o755)
	os.WriteFile(filepath.Join(rel, "extension-release."+name), []byte("ID=_any\nARCHITECTURE="+arch+"\nSYSEXT_VERSION_ID="+version+"\n"), 0o644)
	os.MkdirAll(filepath.Join(tree, "usr/bin"), 0o755)
	os.WriteFile(filepath.Join(tree, "usr/bin/backdoor"), []byte("#!/bin/sh\n"), 0o755)
	img := filepath.Join(t.TempDir(), "evil.raw")
	if _, stderr, code := run(t, "image", "create", tree, img, "--epoch", "0"); code != 0 {
		t.Fatalf("image create: %s", stderr)
	}
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestReleaseCLI: the command's output, refusals and usage errors.
func TestReleaseCLI(t *testing.T) {
	work := t.TempDir()
	if _, stderr, code := run(t, "keygen", "--gpg", "--out", filepath.Join(work, "k")); code != 0 {
		t.Fatalf("keygen --gpg: %s", stderr)
	}
	out := t.TempDir()
	if _, stderr, code := run(t, "bake", "../../testdata/hello", "--out", out, "--epoch", "0"); code != 0 {
		t.Fatalf("bake: %s", stderr)
	}
	pub := filepath.Join(work, "public")
	stdout, stderr, code := run(t, "release", pub, out, "--base-url", "https://example.com/sysexts", "--gpg-key", filepath.Join(work, "k.key"), "--json")
	if code != 0 {
		t.Fatalf("release: %s", stderr)
	}
	var res struct {
		Images     []struct{ File, SHA256 string }
		Extensions []string
		Signed     bool
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || len(res.Images) != 2 || !res.Signed || !slices.Equal(res.Extensions, []string{"hello"}) {
		t.Fatalf("release --json: %v\n%s", err, stdout)
	}
	transfer, _ := os.ReadFile(filepath.Join(pub, "hello.transfer"))
	conf, _ := os.ReadFile(filepath.Join(pub, "hello.conf"))
	if !bytes.Equal(transfer, conf) || !bytes.Contains(transfer, []byte("Path=https://example.com/sysexts/\n")) {
		t.Errorf("hello.transfer and hello.conf:\n%s\n%s", transfer, conf)
	}
	// gpgv, as a person checking the release would, with the keyring.
	if gpgv, err := exec.LookPath("gpgv"); err == nil {
		if out, err := exec.Command(gpgv, "--keyring", filepath.Join(work, "k.pubring.gpg"), filepath.Join(pub, "SHA256SUMS.gpg"), filepath.Join(pub, "SHA256SUMS")).CombinedOutput(); err != nil {
			t.Errorf("gpgv refuses SHA256SUMS.gpg: %v\n%s", err, out)
		}
	}

	cases := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no directory", []string{"release", "--base-url", "https://example.com/"}, 2, "takes DIR"},
		{"no base URL", []string{"release", pub}, 2, "base-url"},
		{"plain http", []string{"release", pub, "--base-url", "http://example.com/"}, 2, "plain http"},
		{"unsigned into a signed directory", []string{"release", pub, "--base-url", "https://example.com/"}, 1, "--gpg-key"},
		{"a PEM key", []string{"release", pub, "--base-url", "https://example.com/", "--gpg-key", filepath.Join(work, "pem.key")}, 1, "not an OpenPGP key"},
		{"the public key to sign", []string{"release", pub, "--base-url", "https://example.com/", "--gpg-key", filepath.Join(work, "k.pub")}, 1, "give the private key"},
		{"help has examples", []string{"release", "--help"}, 0, "Examples:"},
		{"keygen --gpg with --x509", []string{"keygen", "--gpg", "--x509", "--out", filepath.Join(work, "x")}, 2, "takes neither"},
	}
	run(t, "keygen", "--out", filepath.Join(work, "pem"))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stdout, stderr, code := run(t, c.args...)
			if code != c.code || !strings.Contains(stderr+stdout, c.stderr) {
				t.Errorf("exit %d, want %d; output does not say %q:\n%s%s", code, c.code, c.stderr, stdout, stderr)
			}
		})
	}
}
