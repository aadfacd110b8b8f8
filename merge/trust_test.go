package merge

import (
	"context"
	"errors"
	"github.com/sysext-bakery/bakery/sysext"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// syncRoot makes an empty node root for sync tests.
func syncRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, sysext.Sysext.InstallDir), 0o755); err != nil {
		t.Fatal(err)
	}
	return root
}

// TestSyncWithoutKeysVerifiesNothing: a sync.yaml without keys installs,
// but records no verification, so a merge requiring signatures refuses
// the image (it used to record a verified time).
func TestSyncWithoutKeysVerifiesNothing(t *testing.T) {
	root := syncRoot(t)
	reg := &fakeRegistry{images: map[string]fakeImage{"r/app:latest": {data: []byte("app"), version: "1", unverified: true}}}
	res, err := Sync(context.Background(), root, &Config{Registry: "r", Extensions: []ConfigExtension{{Name: "app"}}}, "x86-64", reg)
	if err != nil || len(res.Installed) != 1 {
		t.Fatalf("sync: %+v, %v", res, err)
	}
	st, err := LoadState(root)
	if err != nil {
		t.Fatal(err)
	}
	if in := st.Extensions["app"]; in == nil || in.Verification != nil || in.Installed.IsZero() {
		t.Fatalf("state entry %+v: want installed, not verified", in)
	}
	p, _, err := LoadPolicy(root, sysext.Sysext, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Verified["app"]) != 0 {
		t.Errorf("policy counts an unsigned image as verified: %v", p.Verified)
	}
}

// TestSyncSkipsUnchangedDownloads: an image already installed is not
// downloaded again, but its signature check is recorded anew.
func TestSyncSkipsUnchangedDownloads(t *testing.T) {
	root := syncRoot(t)
	reg := &fakeRegistry{images: map[string]fakeImage{"r/app:latest": {data: []byte("app v1"), version: "1"}}}
	cfg := &Config{Registry: "r", Keys: []string{"/k.pub"}, Extensions: []ConfigExtension{{Name: "app"}}}
	for i := range 3 {
		if _, err := Sync(context.Background(), root, cfg, "x86-64", reg); err != nil {
			t.Fatal(err)
		}
		if reg.downloads != 1 {
			t.Fatalf("sync %d: %d downloads, want 1", i+1, reg.downloads)
		}
	}
	// A damaged installed file is downloaded again.
	os.WriteFile(filepath.Join(root, sysext.Sysext.InstallDir, "app.raw"), []byte("tampered"), 0o644)
	if _, err := Sync(context.Background(), root, cfg, "x86-64", reg); err != nil || reg.downloads != 2 {
		t.Fatalf("after tampering: %d downloads, %v", reg.downloads, err)
	}
	checkState(t, root)
}

// TestStateCorruption checks what a damaged state.json does: merge warns
// and merges without a signature policy, refuses every image with one
// (saying why), never hangs on a FIFO, and sync rebuilds the state from
// the installed images keeping downgrade protection.
func TestStateCorruption(t *testing.T) {
	tests := []struct {
		name  string
		write func(p string) error
		why   string
	}{
		{"garbage", func(p string) error { return os.WriteFile(p, []byte("\x00\xffnot json"), 0o644) }, "not valid state JSON"},
		{"truncated", func(p string) error { return os.WriteFile(p, []byte(`{"extensions":{"app":{"digest":`), 0o644) }, "truncated"},
		{"wrong types", func(p string) error { return os.WriteFile(p, []byte(`{"extensions":["x"]}`), 0o644) }, "wrong type"},
		{"impossible digest", func(p string) error {
			return os.WriteFile(p, []byte(`{"extensions":{"app":{"digest":"sha256:zz"}}}`), 0o644)
		}, "not sha256:HEX"},
		{"newer schema", func(p string) error { return os.WriteFile(p, []byte(`{"schema":99}`), 0o644) }, "newer than this bakery"},
		{"huge", func(p string) error {
			f, err := os.Create(p)
			if err != nil {
				return err
			}
			defer f.Close()
			return f.Truncate(maxStateSize + 10)
		}, "larger than"},
		{"symlink", func(p string) error { return os.Symlink("/etc/passwd", p) }, "symlink"},
		{"fifo", func(p string) error { return unix.Mkfifo(p, 0o644) }, "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := syncRoot(t)
			// Real images: sync reads the installed one's version.
			images := t.TempDir()
			var data [2][]byte
			for i, v := range []string{"1", "2"} {
				p := filepath.Join(images, v+".raw")
				buildImage(t, p, false, false, anyExt("app", "usr/lib/extension-release.d/extension-release.app", "ID=_any\nSYSEXT_VERSION_ID="+v+"\n"))
				data[i], _ = os.ReadFile(p)
			}
			reg := &fakeRegistry{images: map[string]fakeImage{
				"r/app:2":      {data: data[1], version: "2"},
				"r/app:latest": {data: data[0], version: "1"},
			}}
			cfg := &Config{Registry: "r", Keys: []string{"/k.pub"}, Extensions: []ConfigExtension{{Name: "app", Tag: "2"}}}
			if _, err := Sync(context.Background(), root, cfg, "x86-64", reg); err != nil {
				t.Fatal(err)
			}
			p := statePath(root)
			os.Remove(p)
			if err := tt.write(p); err != nil {
				t.Fatal(err)
			}

			done := make(chan struct{})
			go func() {
				defer close(done)
				for _, require := range []bool{false, true} {
					policy, warnings, err := LoadPolicy(root, sysext.Sysext, require, &Config{})
					if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0], tt.why) {
						t.Errorf("require=%v: policy %+v, warnings %q, %v; want one warning saying %q", require, policy, warnings, err, tt.why)
						continue
					}
					if strings.Contains(warnings[0], "delete") || strings.Contains(warnings[0], "remove it") {
						t.Errorf("the warning tells to delete the file: %s", warnings[0])
					}
					if !require {
						continue // the image goes on to be opened and checked as without a state
					}
					_, reason := prepareOne(Image{Name: "app", Type: Raw, Path: sysext.Sysext.InstallDir + "/app.raw"}, false, sysext.Sysext, Host{}, nil, policy)
					if !strings.Contains(reason, tt.why) {
						t.Errorf("with signatures required, refusal %q does not say the state is damaged", reason)
					}
				}
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("reading the damaged state.json hangs")
			}

			// sync rebuilds: the downgrade to latest (1) is still refused,
			// the damaged file kept aside.
			cfg.Extensions[0].Tag = "latest"
			res, err := Sync(context.Background(), root, cfg, "x86-64", reg)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], tt.why) {
				t.Errorf("sync warnings %q, want one saying %q", res.Warnings, tt.why)
			}
			checkRefused(t, res.Refused, []string{"app: would downgrade 2 to 1"})
			if _, err := os.Lstat(p + ".damaged"); err != nil {
				t.Errorf("the damaged file was not kept aside: %v", err)
			}
			if _, err := LoadState(root); err != nil {
				t.Errorf("state after the sync: %v", err)
			}
		})
	}
}

// TestStaleTempsRemoved: what a sync killed mid-download left behind is
// removed by the next sync; what another process is writing is not.
func TestStaleTempsRemoved(t *testing.T) {
	root := syncRoot(t)
	extDir := filepath.Join(root, sysext.Sysext.InstallDir)
	stale := []string{
		filepath.Join(extDir, "..gone.raw.partial.tmp-123456"),
		filepath.Join(extDir, ".gone.raw.partial"),
		filepath.Join(root, StateDir, ".state.json.tmp-99"),
		filepath.Join(root, rollbackDir, ".app.raw.tmp-7"),
	}
	for _, p := range stale {
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, make([]byte, 1<<20), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	reg := &fakeRegistry{images: map[string]fakeImage{"r/app:latest": {data: []byte("app"), version: "1"}}}
	if _, err := Sync(context.Background(), root, &Config{Registry: "r", Keys: []string{"/k"}, Extensions: []ConfigExtension{{Name: "app"}}}, "x86-64", reg); err != nil {
		t.Fatal(err)
	}
	for _, p := range stale {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there (%v)", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(extDir, "app.raw")); err != nil {
		t.Error(err)
	}
}

// TestRequireCatalog checks sync against the namespace's signed catalog:
// a replayed older catalog, a version or index it does not list, and a
// moving tag frozen at an older version are refused.
func TestRequireCatalog(t *testing.T) {
	v1, v2 := []byte("app v1"), []byte("app v2")
	catalog := func(seq int64, latest string) *SignedCatalog {
		return &SignedCatalog{Sequence: seq, Extensions: map[string]CatalogListing{
			"app": {Versions: map[string]string{"1": digestA, "2": digestB}, Tags: map[string]string{"latest": latest}},
		}}
	}
	steps := []struct {
		name    string
		catalog *SignedCatalog
		latest  fakeImage
		tag     string
		want    []byte
		refused string // "" = installed; "sync" = the whole sync fails
	}{
		{"catalog and registry agree", catalog(10, "1"), fakeImage{data: v1, version: "1", index: digestA}, "latest", v1, ""},
		{"registry freezes latest at 1 while the catalog says 2", catalog(11, "2"), fakeImage{data: v1, version: "1", index: digestA}, "latest", v1, "frozen or rolled-back tag"},
		{"an index the catalog does not list", catalog(12, "2"), fakeImage{data: v2, version: "2", index: digestA}, "latest", v1, "but the signed catalog (sequence 12) lists"},
		{"a version the catalog does not list", catalog(13, "3"), fakeImage{data: v2, version: "3", index: digestB}, "latest", v1, "does not list app 3"},
		{"a replayed older catalog", catalog(5, "1"), fakeImage{data: v1, version: "1", index: digestA}, "latest", v1, "sync"},
		{"version tags need no moving-tag entry", catalog(14, "1"), fakeImage{data: v2, version: "2", index: digestB}, "2", v2, ""},
	}
	root := syncRoot(t)
	for _, s := range steps {
		reg := &fakeRegistry{catalog: s.catalog, images: map[string]fakeImage{"r/app:" + s.tag: s.latest}}
		cfg := &Config{Registry: "r", Keys: []string{"/k"}, Extensions: []ConfigExtension{{Name: "app", Tag: s.tag}}}
		cfg.Policy.RequireCatalog = true
		res, err := Sync(context.Background(), root, cfg, "x86-64", reg)
		switch {
		case s.refused == "sync":
			if err == nil || !strings.Contains(err.Error(), "replayed catalog") {
				t.Errorf("%s: %v, want the sync refused as a replay", s.name, err)
			}
		case err != nil:
			t.Fatalf("%s: %v", s.name, err)
		case s.refused == "":
			checkRefused(t, res.Refused, nil)
		default:
			checkRefused(t, res.Refused, []string{"app: " + s.refused})
		}
		got, _ := os.ReadFile(filepath.Join(root, sysext.Sysext.InstallDir, "app.raw"))
		if string(got) != string(s.want) {
			t.Errorf("%s: app.raw = %q, want %q", s.name, got, s.want)
		}
	}
	st, _ := LoadState(root)
	if seen := st.Catalogs["r"]; seen == nil || seen.Sequence != 14 {
		t.Errorf("state records catalog %+v, want sequence 14", seen)
	}
}

// TestPolicyFromGivenConfig: the policy in force is the configuration the
// caller gives, not the root's sync.yaml.
func TestPolicyFromGivenConfig(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc/bakery"), 0o755)
	os.WriteFile(filepath.Join(root, ConfigPath), []byte("registry: r\n"), 0o644)
	given := &Config{Registry: "r", Keys: []string{"/k"}}
	given.Policy.RequireSignature = true
	for _, tc := range []struct {
		cfg  *Config
		want bool
	}{{nil, false}, {given, true}} {
		p, _, err := LoadPolicy(root, sysext.Sysext, false, tc.cfg)
		if err != nil || p.RequireSignature != tc.want {
			t.Errorf("config %v: require %v, %v; want %v", tc.cfg, p.RequireSignature, err, tc.want)
		}
	}
}
