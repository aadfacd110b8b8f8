package merge

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sysext-bakery/bakery/sign"
	"github.com/sysext-bakery/bakery/sysext"
	"github.com/sysext-bakery/bakery/sysext/ddi"
	"github.com/sysext-bakery/bakery/sysext/erofs"
)

// ddiKey makes a signing key and its self-signed certificate, as bakery
// keygen --x509 does, and returns them with the certificate's PEM.
func ddiKey(t *testing.T) (*sysext.Signing, []byte) {
	t.Helper()
	key, err := sign.GenerateKey(sign.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := sign.SelfSignedCert(key, "merge test")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := sign.ParseCertificate(pem)
	if err != nil {
		t.Fatal(err)
	}
	return &sysext.Signing{Key: key, Cert: cert}, pem
}

// buildDDI writes the DDI of extension name (a few files in /usr and
// /opt, for the host's architecture) to p, signed with s unless nil.
func buildDDI(t *testing.T, p, name string, s *sysext.Signing) {
	t.Helper()
	src := t.TempDir()
	writeFiles(t, src, map[string]string{
		"usr/lib/extension-release.d/extension-release." + name: "ID=_any\nARCHITECTURE=" + sysext.HostArch().Name + "\n",
		"usr/bin/" + name:          "#!/bin/sh\necho " + name + "\n",
		"usr/share/" + name + "/a": strings.Repeat(name+"\n", 5000),
		"opt/" + name + "/b":       "opt\n",
	})
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := (ddi.Builder{Inner: erofs.Builder{}}).Build(context.Background(), src, p, sysext.BuildOptions{Epoch: 1700000000, AllRoot: true, Signing: s}); err != nil {
		t.Fatal(err)
	}
}

// TestDDIOracle merges a DDI with systemd-sysext 252 and 257 (through
// ../shared/tools/sysext-oracle; unsigned, since systemd cannot check a
// signed one without dm-verity) and the same DDI signed with bakery merge
// --require-signature, its certificate in /etc/verity.d: the same
// extensions and the same merged tree.
func TestDDIOracle(t *testing.T) {
	oracle := oraclePath(t)
	if _, ok := ddiPartitionTypes(sysext.HostArch().Name); !ok {
		t.Skipf("no DDI partition types for this host's architecture %q", sysext.HostArch().Name)
	}
	if !inNamespace(t, "systemd-sysext") {
		return
	}
	base := t.TempDir()
	s, pem := ddiKey(t)
	ours, theirs := filepath.Join(base, "bakery"), filepath.Join(base, "systemd")
	for _, root := range []string{ours, theirs} {
		writeFiles(t, root, debianHost)
	}
	buildDDI(t, filepath.Join(ours, "var/lib/extensions/ddiext.raw"), "ddiext", s)
	mkfile(t, filepath.Join(ours, "etc/verity.d/test.crt"), string(pem))
	got := mergeAndDescribeWith(t, oracle, Options{Root: ours, RequireSignature: true})
	if got.status != "ok" {
		t.Fatalf("bakery merge --require-signature of a signed DDI: %+v", got)
	}
	for _, version := range []string{"252", "257"} {
		if version == "257" && !debian13Ready() {
			t.Logf("systemd 257: skipped, no Debian 13 root (make it with ../shared/tools/debian13-root)")
			continue
		}
		os.RemoveAll(filepath.Join(theirs, "var"))
		buildDDI(t, filepath.Join(theirs, "var/lib/extensions/ddiext.raw"), "ddiext", nil)
		want, out := runOracle(t, oracle, version, sysext.Sysext, theirs)
		t.Logf("systemd %s:\n%s", version, out)
		if want.status != "ok" || !slices.Equal(got.hierarchies, want.hierarchies) || got.extensions != want.extensions || got.tree != want.tree {
			t.Errorf("systemd %s merged the unsigned DDI as %+v, bakery the signed one as %+v", version, want, got)
		}
	}
	checkClean(t, base)
}

// ddiPartitionTypes tells whether DDIs exist for arch.
func ddiPartitionTypes(arch string) (string, bool) {
	u, err := ddi.PartitionType(arch, ddi.RoleRoot)
	return u.String(), err == nil
}

// TestDDITrust merges DDIs beside each other: signed by a trusted
// certificate, with a flipped data byte, signed by an untrusted key, and
// without a signature. With --require-signature only the first is merged
// and each other one is refused with its reason; without, the DDIs whose
// hash trees check out are merged and the damaged one is still refused.
func TestDDITrust(t *testing.T) {
	if _, ok := ddiPartitionTypes(sysext.HostArch().Name); !ok {
		t.Skipf("no DDI partition types for this host's architecture %q", sysext.HostArch().Name)
	}
	if !inNamespace(t) {
		return
	}
	good, pem := ddiKey(t)
	untrusted, _ := ddiKey(t)
	root := t.TempDir()
	writeFiles(t, root, debianHost)
	mkfile(t, filepath.Join(root, "etc/verity.d/good.crt"), string(pem))
	dir := filepath.Join(root, "var/lib/extensions")
	buildDDI(t, filepath.Join(dir, "signed.raw"), "signed", good)
	buildDDI(t, filepath.Join(dir, "flipped.raw"), "flipped", good)
	buildDDI(t, filepath.Join(dir, "untrusted.raw"), "untrusted", untrusted)
	buildDDI(t, filepath.Join(dir, "stripped.raw"), "stripped", nil)
	// An unsigned DDI whose root holds no file system: with signatures
	// required it is refused as unsigned, before anything reads its root
	// (without, for what it holds).
	garbage, err := os.Create(filepath.Join(dir, "garbage.raw"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := garbage.Write(bytes.Repeat([]byte("not a file system "), 4096)); err != nil {
		t.Fatal(err)
	}
	if err := ddi.Assemble(context.Background(), garbage, sysext.HostArch().Name, nil); err != nil {
		t.Fatal(err)
	}
	garbage.Close()
	f, err := os.OpenFile(filepath.Join(dir, "flipped.raw"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	off := int64(40*ddi.Sector + 4096 + 7) // inside the root partition's second block
	f.ReadAt(b, off)
	b[0] ^= 0x20
	f.WriteAt(b, off)
	f.Close()

	for _, tt := range []struct {
		require bool
		merged  []string
		refused map[string]string
	}{
		{true, []string{"signed"}, map[string]string{
			"flipped":   "hash tree mismatch",
			"untrusted": "not signed: signature: not signed by a trusted certificate",
			"stripped":  "not signed: the DDI has no root-" + sysext.HostArch().Name + "-verity-sig partition",
			"garbage":   "not signed: the DDI has no root-" + sysext.HostArch().Name + "-verity-sig partition",
		}},
		{false, []string{"signed", "stripped", "untrusted"}, map[string]string{"flipped": "hash tree mismatch", "garbage": "no file system bakery knows"}},
	} {
		res, err := Merge(Options{Root: root, RequireSignature: tt.require})
		if err != nil {
			t.Fatalf("require-signature %v: %v", tt.require, err)
		}
		if !slices.Equal(res.Extensions, tt.merged) {
			t.Errorf("require-signature %v: merged %v, want %v", tt.require, res.Extensions, tt.merged)
		}
		for _, r := range res.Refused {
			if want, ok := tt.refused[r.Name]; !ok || !strings.Contains(r.Reason, want) {
				t.Errorf("require-signature %v: %s refused because %q, want %q", tt.require, r.Name, r.Reason, want)
			}
		}
		if len(res.Refused) != len(tt.refused) {
			t.Errorf("require-signature %v: refused %v, want %v", tt.require, res.Refused, tt.refused)
		}
		for _, name := range tt.merged {
			if data, err := os.ReadFile(filepath.Join(root, "usr/bin", name)); err != nil || !strings.Contains(string(data), "echo "+name) {
				t.Errorf("require-signature %v: /usr/bin/%s after the merge: %q, %v", tt.require, name, data, err)
			}
		}
		if _, err := Unmerge(Options{Root: root}); err != nil {
			t.Fatal(err)
		}
	}
	checkClean(t, root)
}
