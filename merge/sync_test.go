package merge

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/sysext-bakery/bakery/sysext"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeRegistry serves images from memory, by reference, and a signed
// catalog when it has one.
type fakeRegistry struct {
	images  map[string]fakeImage
	catalog *SignedCatalog
	// downloads counts the images written.
	downloads int
}

type fakeImage struct {
	data       []byte
	version    string
	class      string // "" is sysext
	unverified bool
	lie        bool   // report a digest other than the data's
	index      string // the index digest reported
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func (r *fakeRegistry) Pull(_ context.Context, req PullRequest) (Pulled, error) {
	img, ok := r.images[req.Ref]
	if !ok {
		return Pulled{}, fmt.Errorf("%s: not found", req.Ref)
	}
	if c := cmp.Or(img.class, "sysext"); req.Class != c {
		return Pulled{}, fmt.Errorf("%s is a %s, not a %s", req.Ref, c, req.Class)
	}
	got := Pulled{Digest: digestOf(img.data), Version: img.version, IndexDigest: img.index}
	if !img.unverified {
		got.Verification = &Verification{At: time.Now(), Signature: digestB, Key: "k"}
	}
	if img.lie {
		got.Digest = digestOf([]byte("other"))
	}
	if got.Digest == req.Have {
		got.Unchanged = true
		return got, nil
	}
	r.downloads++
	f, err := os.OpenFile(req.Dest, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return Pulled{}, err
	}
	defer f.Close()
	// Write in pieces, so that a kill lands in the middle of a download.
	for chunk := range slices.Chunk(img.data, 64<<10) {
		if _, err := f.Write(chunk); err != nil {
			return Pulled{}, err
		}
	}
	return got, nil
}

func (r *fakeRegistry) Catalog(context.Context, string) (*SignedCatalog, error) {
	if r.catalog == nil {
		return nil, errors.New("no signed catalog")
	}
	return r.catalog, nil
}

func TestSync(t *testing.T) {
	v1, v2, v3 := []byte("image v1"), []byte("image v2"), []byte("image v3")
	reg := "reg.example/ns"
	puller := &fakeRegistry{images: map[string]fakeImage{
		reg + "/app:latest":     {data: v2, version: "2.0"},
		reg + "/app:1.0":        {data: v1, version: "1.0"},
		reg + "/app:stable":     {data: v1, version: "1.0"},
		reg + "/tool:latest":    {data: v3, version: "3"},
		reg + "/evil:latest":    {data: v3, version: "3", unverified: true},
		reg + "/liar:latest":    {data: v3, version: "3", lie: true},
		reg + "/app@" + digestA: {data: v1, version: "1.0"},
	}}
	cfg := func(exts ...ConfigExtension) *Config {
		return &Config{Registry: reg, Keys: []string{"/k.pub"}, Extensions: exts}
	}
	root := t.TempDir()
	installed := func(name string) []byte {
		data, _ := os.ReadFile(filepath.Join(root, sysext.Sysext.InstallDir, name+".raw"))
		return data
	}
	steps := []struct {
		name      string
		cfg       *Config
		want      map[string][]byte // installed images afterwards
		installed []string
		removed   []string
		refused   []string
	}{
		{name: "first install", cfg: cfg(ConfigExtension{Name: "app"}, ConfigExtension{Name: "tool"}),
			want: map[string][]byte{"app": v2, "tool": v3}, installed: []string{"app", "tool"}},
		{name: "nothing new", cfg: cfg(ConfigExtension{Name: "app"}, ConfigExtension{Name: "tool"}),
			want: map[string][]byte{"app": v2, "tool": v3}},
		{name: "downgrade through a channel tag is refused", cfg: cfg(ConfigExtension{Name: "app", Tag: "stable"}, ConfigExtension{Name: "tool"}),
			want: map[string][]byte{"app": v2, "tool": v3}, refused: []string{"app: would downgrade 2.0 to 1.0"}},
		{name: "pinned downgrade is allowed; unlisted tool removed", cfg: cfg(ConfigExtension{Name: "app", Tag: "1.0"}),
			want: map[string][]byte{"app": v1, "tool": nil}, installed: []string{"app"}, removed: []string{"tool"}},
		{name: "unverified and lying images are refused", cfg: cfg(ConfigExtension{Name: "app", Tag: "1.0"}, ConfigExtension{Name: "evil"}, ConfigExtension{Name: "liar"}),
			want:    map[string][]byte{"app": v1, "evil": nil, "liar": nil},
			refused: []string{"evil: signature was not verified", "liar: the registry said"}},
	}
	for _, s := range steps {
		res, err := Sync(context.Background(), root, s.cfg, "x86-64", puller)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		for name, want := range s.want {
			if got := installed(name); !bytes.Equal(got, want) {
				t.Errorf("%s: %s.raw = %q, want %q", s.name, name, got, want)
			}
		}
		if !slices.Equal(res.Installed, s.installed) || !slices.Equal(res.Removed, s.removed) {
			t.Errorf("%s: installed %q removed %q, want %q %q", s.name, res.Installed, res.Removed, s.installed, s.removed)
		}
		checkRefused(t, res.Refused, s.refused)
		checkState(t, root)
	}

	// The previous image (v2) was kept: roll back to it, and again to v1.
	for _, want := range [][]byte{v2, v1} {
		if _, err := Rollback(root, "app"); err != nil {
			t.Fatal(err)
		}
		if got := installed("app"); !bytes.Equal(got, want) {
			t.Errorf("after rollback app.raw = %q, want %q", got, want)
		}
		checkState(t, root)
	}
	// A kept image that changed is not rolled back to.
	if err := os.WriteFile(filepath.Join(root, rollbackDir, "app.raw"), []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Rollback(root, "app"); err == nil || !strings.Contains(err.Error(), "not the recorded") {
		t.Errorf("rollback to a tampered image: err = %v", err)
	}
}

// TestSyncClasses: sync installs each extension into its class's
// InstallDir, pulling it as that class (the registry refuses another),
// records the class in state.json, reports which classes changed (the
// merges to refresh), and the merge policy of a class counts only that
// class's verified images; an entry from before classes is a sysext.
func TestSyncClasses(t *testing.T) {
	reg := &fakeRegistry{images: map[string]fakeImage{
		"r/app:latest":   {data: []byte("app"), version: "1"},
		"r/cfg:latest":   {data: []byte("cfg"), version: "1", class: "confext"},
		"r/cfg:2":        {data: []byte("cfg2"), version: "2", class: "confext"},
		"r/other:latest": {data: []byte("other"), version: "1", class: "confext"},
	}}
	cfg := func(exts ...ConfigExtension) *Config {
		return &Config{Registry: "r", Keys: []string{"/k.pub"}, Extensions: exts}
	}
	app, cfgExt := ConfigExtension{Name: "app"}, ConfigExtension{Name: "cfg", Class: "confext"}
	cfg2 := ConfigExtension{Name: "cfg", Class: "confext", Tag: "2"}
	root := t.TempDir()
	steps := []struct {
		name      string
		cfg       *Config
		installed map[string]string // path under root: content ("" = absent)
		classes   []string
		refused   []string
	}{
		{"both classes", cfg(app, cfgExt),
			map[string]string{"var/lib/extensions/app.raw": "app", "var/lib/confexts/cfg.raw": "cfg", "var/lib/extensions/cfg.raw": ""},
			[]string{"sysext", "confext"}, nil},
		{"nothing new", cfg(app, cfgExt), map[string]string{"var/lib/confexts/cfg.raw": "cfg"}, []string{}, nil},
		{"a confext update", cfg(app, cfg2),
			map[string]string{"var/lib/confexts/cfg.raw": "cfg2"}, []string{"confext"}, nil},
		{"a confext pulled as a sysext", cfg(app, cfg2, ConfigExtension{Name: "other"}),
			map[string]string{"var/lib/extensions/other.raw": "", "var/lib/confexts/other.raw": ""}, []string{}, []string{"other: is a confext, not a sysext"}},
		{"class changed in sync.yaml", cfg(ConfigExtension{Name: "app", Class: "confext"}, cfg2),
			map[string]string{"var/lib/extensions/app.raw": "app", "var/lib/confexts/app.raw": ""}, []string{}, []string{"app: installed as a sysext, but"}},
		{"confext removed", cfg(app),
			map[string]string{"var/lib/extensions/app.raw": "app", "var/lib/confexts/cfg.raw": ""}, []string{"confext"}, nil},
	}
	for _, s := range steps {
		res, err := Sync(context.Background(), root, s.cfg, "x86-64", reg)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		for p, want := range s.installed {
			got, _ := os.ReadFile(filepath.Join(root, p))
			if string(got) != want {
				t.Errorf("%s: %s = %q, want %q", s.name, p, got, want)
			}
		}
		if !slices.Equal(res.Classes, s.classes) {
			t.Errorf("%s: changed classes %q, want %q", s.name, res.Classes, s.classes)
		}
		checkRefused(t, res.Refused, s.refused)
	}
	st, err := LoadState(root)
	if err != nil {
		t.Fatal(err)
	}
	if in := st.Extensions["app"]; in == nil || in.Class != "sysext" {
		t.Errorf("state entry of app: %+v, want class sysext", in)
	}

	// The policy of each class counts its own images; an entry without a
	// class (written before classes) is a sysext.
	verified := &Verification{Signature: digestB}
	st.Extensions = map[string]*Installed{
		"old": {Digest: digestA, Verification: verified},
		"cfg": {Class: "confext", Digest: digestB, Verification: verified},
	}
	if err := st.Save(root); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		class sysext.Class
		want  []string
	}{{sysext.Sysext, []string{"old"}}, {sysext.Confext, []string{"cfg"}}} {
		p, _, err := LoadPolicy(root, c.class, true, &Config{})
		if err != nil {
			t.Fatal(err)
		}
		if got := slices.Sorted(maps.Keys(p.Verified)); !slices.Equal(got, c.want) {
			t.Errorf("%s policy verifies %q, want %q", c.class, got, c.want)
		}
	}
}

// checkState checks that state.json parses and that every installed image
// it lists has a digest it records as verified.
func checkState(t *testing.T, root string) {
	t.Helper()
	p, warnings, err := LoadPolicy(root, sysext.Sysext, true, &Config{})
	if err != nil || len(warnings) > 0 {
		t.Fatalf("state: %v %v", err, warnings)
	}
	entries, _ := os.ReadDir(filepath.Join(root, sysext.Sysext.InstallDir))
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".raw")
		if !ok || strings.HasPrefix(name, ".") {
			continue
		}
		sum, err := fileDigest(filepath.Join(root, sysext.Sysext.InstallDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(p.Verified[name], sum) {
			t.Errorf("installed %s has digest %s, state.json verified %v", e.Name(), sum, p.Verified[name])
		}
	}
}

// crashEnv makes the test binary run one sync and exit (TestSyncCrash).
const crashEnv = "BAKERY_MERGE_CRASH_ROOT"

// crashImages are the old and new image TestSyncCrash installs.
var crashImages = [2][]byte{bytes.Repeat([]byte("old image "), 20_000), bytes.Repeat([]byte("new image "), 30_000)}

func TestMain(m *testing.M) {
	if root := os.Getenv(crashEnv); root != "" {
		cfg := &Config{Registry: "reg", Keys: []string{"/k"}, Extensions: []ConfigExtension{{Name: "app", Tag: os.Getenv(crashEnv + "_TAG")}}}
		puller := &fakeRegistry{images: map[string]fakeImage{
			"reg/app:1": {data: crashImages[0], version: "1"},
			"reg/app:2": {data: crashImages[1], version: "2"},
		}}
		if _, err := Sync(context.Background(), root, cfg, "x86-64", puller); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSyncCrash kills a sync (a re-executed test binary) with SIGKILL at
// random moments while it replaces an image, 60 times: each time app.raw
// must be the old or the new image, whole, and state.json must parse and
// record the installed image as verified. A sync after the crash must
// finish the job.
func TestSyncCrash(t *testing.T) {
	root := t.TempDir()
	run := func(tag string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashEnv+"="+root, crashEnv+"_TAG="+tag)
		return cmd
	}
	if out, err := run("1").CombinedOutput(); err != nil {
		t.Fatalf("install the old image: %v\n%s", err, out)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	killed, before, after := 0, 0, 0
	window := 40 * time.Millisecond // a whole sync's run time, measured below
	for i := range 60 {
		tag := []string{"2", "1"}[i%2] // from old to new, then back (pinned)
		cmd := run(tag)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(window/4 + time.Duration(rng.Int64N(int64(window))))
		cmd.Process.Kill()
		err := cmd.Wait()
		var ee *exec.ExitError
		wasKilled := errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signaled()
		if wasKilled {
			killed++
		}
		got, err := os.ReadFile(filepath.Join(root, sysext.Sysext.InstallDir, "app.raw"))
		want := crashImages[map[string]int{"1": 0, "2": 1}[tag]]
		switch {
		case err == nil && bytes.Equal(got, want):
			if wasKilled {
				after++
			}
		case err == nil && (bytes.Equal(got, crashImages[0]) || bytes.Equal(got, crashImages[1])):
			before++
		default:
			t.Fatalf("iteration %d: app.raw is neither image (%d bytes, %v)", i, len(got), err)
		}
		checkState(t, root)
		if t.Failed() {
			t.Fatalf("iteration %d: state inconsistent", i)
		}
		// Let the next sync finish what this one started.
		start := time.Now()
		if out, err := run(tag).CombinedOutput(); err != nil {
			t.Fatalf("iteration %d: sync after the crash: %v\n%s", i, err, out)
		}
		window = time.Since(start) + time.Millisecond
		checkState(t, root)
	}
	t.Logf("%d of 60 syncs were killed: %d left the old image, %d had installed the new one", killed, before, after)
	if before == 0 || after == 0 {
		t.Error("the kills did not land both before and after the switch: the test did not test the window")
	}
}
