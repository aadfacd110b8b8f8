package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sysext-bakery/bakery/sign"
)

// goTool finds a Go-built client (crane, cosign) in PATH or in the
// directory scripts/install-go-tools installs into, or skips t.
func goTool(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	dirs := []string{os.Getenv("BAKERY_TOOLS")}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		dirs = append(dirs, filepath.Join(strings.TrimSpace(string(out)), "bin"))
	}
	for _, d := range dirs {
		if p := filepath.Join(d, name); d != "" && isExecutable(p) {
			return p
		}
	}
	t.Skipf("%s not found in PATH or $(go env GOPATH)/bin: run scripts/install-go-tools", name)
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// runTool runs a client and returns its stdout, failing t on error.
func runTool(t *testing.T, env []string, bin string, args ...string) []byte {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestInteropClients reads what bakery pushed with skopeo and crane: the
// index bytes match its digest and crane blob gives back the very file.
func TestInteropClients(t *testing.T) {
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Skip("skopeo not installed (apt-get install skopeo)")
	}
	crane := goTool(t, "crane")
	dir := bakeDir(t, "hello", "3.0", 128<<10, "x86-64", "arm64")
	for _, kind := range registryKinds {
		t.Run(kind, func(t *testing.T) {
			reg := startRegistry(t, kind)
			ref := reg.host + "/ns/hello"
			res, err := Push(context.Background(), ref, []string{dir}, WithoutCatalog())
			if err != nil {
				t.Fatal(err)
			}
			raw := runTool(t, nil, "skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+ref+":3.0")
			if "sha256:"+sha256Hex(raw) != res.IndexDigest {
				t.Errorf("skopeo inspect --raw: digest sha256:%s, pushed %s", sha256Hex(raw), res.IndexDigest)
			}
			oci := filepath.Join(t.TempDir(), "oci")
			runTool(t, nil, "skopeo", "copy", "--all", "--src-tls-verify=false", "docker://"+ref+":3.0", "oci:"+oci+":3.0")
			// skopeo 1.9 rewrites the index (it does not know artifactType),
			// but must carry each manifest and image file byte for byte.
			for _, img := range res.Images {
				for _, d := range []string{img.ManifestDigest, img.LayerDigest} {
					b, err := os.ReadFile(filepath.Join(oci, "blobs/sha256", strings.TrimPrefix(d, "sha256:")))
					if err != nil || "sha256:"+sha256Hex(b) != d {
						t.Errorf("skopeo copy: blob %s of %s missing or changed: %v", d, img.Arch, err)
					}
				}
			}
			craneEnv := []string{}
			if m := runTool(t, craneEnv, crane, "manifest", "--insecure", ref+"@"+res.IndexDigest); !bytes.Equal(m, raw) {
				t.Error("crane manifest differs from skopeo's")
			}
			for _, img := range res.Images {
				blob := runTool(t, craneEnv, crane, "blob", "--insecure", ref+"@"+img.LayerDigest)
				want, err := os.ReadFile(filepath.Join(dir, img.File))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(blob, want) {
					t.Errorf("crane blob %s: %d bytes differ from %s", img.LayerDigest, len(blob), img.File)
				}
			}
		})
	}
}

// TestInteropCosign checks signatures both ways: cosign verify --key
// accepts bakery's, and bakery accepts a key-based one cosign made.
func TestInteropCosign(t *testing.T) {
	cosign := goTool(t, "cosign")
	dir := bakeDir(t, "hello", "4.0", 4096, "x86-64")
	for _, kind := range registryKinds {
		t.Run(kind, func(t *testing.T) {
			reg := startRegistry(t, kind)
			ctx := context.Background()
			tmp := t.TempDir()
			env := []string{"HOME=" + tmp, "TUF_ROOT=" + filepath.Join(tmp, "tuf"), "COSIGN_PASSWORD=", "SIGSTORE_NO_CACHE=1"}
			net := []string{"--allow-http-registry", "--allow-insecure-registry"}

			// bakery signs, cosign verifies.
			key := newKey(t, sign.ECDSAP256)
			pub, err := sign.MarshalPublicKey(key.Public())
			if err != nil {
				t.Fatal(err)
			}
			pubPath := filepath.Join(tmp, "bakery.pub")
			if err := os.WriteFile(pubPath, pub, 0o644); err != nil {
				t.Fatal(err)
			}
			signed, err := Push(ctx, reg.host+"/signed/hello", []string{dir}, WithSigner(key), WithoutCatalog())
			if err != nil {
				t.Fatal(err)
			}
			runTool(t, env, cosign, append([]string{"verify", "--key", pubPath, "--insecure-ignore-tlog=true"}, append(net, reg.host+"/signed/hello@"+signed.IndexDigest)...)...)

			// cosign refuses it with another key: the check above can fail.
			other, _ := sign.MarshalPublicKey(newKey(t, sign.ECDSAP256).Public())
			otherPath := filepath.Join(tmp, "other.pub")
			os.WriteFile(otherPath, other, 0o644)
			bad := exec.Command(cosign, append([]string{"verify", "--key", otherPath, "--insecure-ignore-tlog=true"}, append(net, reg.host+"/signed/hello@"+signed.IndexDigest)...)...)
			bad.Env = append(os.Environ(), env...)
			if out, err := bad.CombinedOutput(); err == nil {
				t.Errorf("cosign verify accepted a wrong key:\n%s", out)
			}

			// cosign signs, bakery verifies.
			unsigned, err := Push(ctx, reg.host+"/bycosign/hello", []string{dir}, WithoutCatalog())
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(cosign, "generate-key-pair")
			cmd.Dir, cmd.Env = tmp, append(os.Environ(), env...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
			}
			runTool(t, env, cosign, append([]string{"sign", "--key", filepath.Join(tmp, "cosign.key"), "--tlog-upload=false", "--use-signing-config=false", "-y"},
				append(net, reg.host+"/bycosign/hello@"+unsigned.IndexDigest)...)...)
			cosignPub, err := sign.LoadPublicKey(filepath.Join(tmp, "cosign.pub"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Verify(ctx, reg.host+"/bycosign/hello:4.0", WithKeys(cosignPub)); err != nil {
				t.Errorf("bakery verify of cosign's signature: %v", err)
			}
			if _, err := Verify(ctx, reg.host+"/bycosign/hello:4.0", WithKeys(key.Public())); err == nil {
				t.Error("bakery verify accepted cosign's signature with another key")
			}
		})
	}
}
