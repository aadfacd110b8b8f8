package sysext

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// hosts are the os-release files Match is tested against.
var hosts = map[string]string{
	"flatcar": "testdata/release/flatcar.os-release", // ID_LIKE=coreos, VERSION_ID, SYSEXT_LEVEL=1.0
	"debian":  "testdata/release/debian-12.os-release",
	"ubuntu":  "testdata/release/ubuntu-24.04.os-release", // ID_LIKE=debian
	"arch":    "testdata/release/arch.os-release",         // rolling: no VERSION_ID
}

type matchCase struct {
	name  string
	host  string // a key of hosts, or an os-release text
	ext   Release
	scope string
	arch  string
	want  string // "ok", or the *IncompatibleError text
	// v257 marks rules systemd 252 (the oracle) does not have.
	v257 bool
}

var matchCases = []matchCase{
	// 1. an empty file
	{name: "empty extension-release", host: "flatcar", ext: Release{}, want: "extension-release has no fields: it must set at least ID"},
	// 2. SYSEXT_SCOPE
	{name: "default scope has system", host: "flatcar", ext: Release{"ID": "_any"}, want: "ok"},
	{name: "default scope has portable", host: "flatcar", ext: Release{"ID": "_any"}, scope: "portable", want: "ok"},
	{name: "default scope lacks initrd", host: "flatcar", ext: Release{"ID": "_any"}, scope: "initrd",
		want: `SYSEXT_SCOPE "system portable" does not include this host's scope "initrd"`},
	{name: "initrd only", host: "flatcar", ext: Release{"ID": "_any", "SYSEXT_SCOPE": "initrd"},
		want: `SYSEXT_SCOPE "initrd" does not include this host's scope "system"`},
	{name: "scope words split at tabs", host: "flatcar", ext: Release{"ID": "_any", "SYSEXT_SCOPE": "initrd\tsystem"}, want: "ok"},
	{name: "empty scope matches nothing", host: "flatcar", ext: Release{"ID": "_any", "SYSEXT_SCOPE": ""},
		want: `SYSEXT_SCOPE "" does not include this host's scope "system"`},
	{name: "no scope given skips the check", host: "flatcar", ext: Release{"ID": "_any", "SYSEXT_SCOPE": "initrd"}, scope: "-", want: "ok"},
	// 3. ARCHITECTURE
	{name: "other arch", host: "flatcar", ext: Release{"ID": "_any", "ARCHITECTURE": "arm64"}, arch: "x86-64",
		want: `ARCHITECTURE "arm64" does not match host architecture "x86-64"`},
	{name: "same arch", host: "flatcar", ext: Release{"ID": "_any", "ARCHITECTURE": "arm64"}, arch: "arm64", want: "ok"},
	{name: "arch _any", host: "flatcar", ext: Release{"ID": "_any", "ARCHITECTURE": "_any"}, want: "ok"},
	{name: "arch empty", host: "flatcar", ext: Release{"ID": "_any", "ARCHITECTURE": ""}, want: "ok"},
	{name: "arch is compared as is", host: "flatcar", ext: Release{"ID": "_any", "ARCHITECTURE": "amd64"}, arch: "x86-64",
		want: `ARCHITECTURE "amd64" does not match host architecture "x86-64"`},
	// 4. ID
	{name: "no ID", host: "flatcar", ext: Release{"SYSEXT_LEVEL": "1.0"}, want: `ID is missing: set ID=_any, or the host's ID "flatcar"`},
	{name: "empty ID", host: "flatcar", ext: Release{"ID": "", "SYSEXT_LEVEL": "1.0"}, want: `ID is missing: set ID=_any, or the host's ID "flatcar"`},
	{name: "other ID", host: "flatcar", ext: Release{"ID": "fedora", "SYSEXT_LEVEL": "1.0"},
		want: `ID "fedora" does not match host ID "flatcar" or ID_LIKE "coreos"`},
	{name: "other ID, host without ID_LIKE", host: "debian", ext: Release{"ID": "fedora", "VERSION_ID": "12"},
		want: `ID "fedora" does not match host ID "debian"`},
	{name: "_any skips the version check", host: "flatcar", ext: Release{"ID": "_any", "SYSEXT_LEVEL": "9", "VERSION_ID": "9"}, want: "ok"},
	{name: "ID_LIKE", host: "flatcar", ext: Release{"ID": "coreos", "SYSEXT_LEVEL": "1.0"}, want: "ok", v257: true},
	{name: "ID_LIKE then version", host: "ubuntu", ext: Release{"ID": "debian", "VERSION_ID": "12"},
		want: `VERSION_ID "12" does not match host VERSION_ID "24.04"`, v257: true},
	{name: "ID_LIKE is matched by word", host: "ubuntu", ext: Release{"ID": "deb", "VERSION_ID": "24.04"},
		want: `ID "deb" does not match host ID "ubuntu" or ID_LIKE "debian"`},
	// 5. version
	{name: "same level", host: "flatcar", ext: Release{"ID": "flatcar", "SYSEXT_LEVEL": "1.0"}, want: "ok"},
	{name: "other level", host: "flatcar", ext: Release{"ID": "flatcar", "SYSEXT_LEVEL": "2.0"},
		want: `SYSEXT_LEVEL "2.0" does not match host SYSEXT_LEVEL "1.0"`},
	{name: "level wins over version", host: "flatcar", ext: Release{"ID": "flatcar", "SYSEXT_LEVEL": "1.0", "VERSION_ID": "1"}, want: "ok"},
	{name: "no level: same version", host: "flatcar", ext: Release{"ID": "flatcar", "VERSION_ID": "3975.2.0"}, want: "ok"},
	{name: "no level: other version", host: "flatcar", ext: Release{"ID": "flatcar", "VERSION_ID": "3975.2.1"},
		want: `VERSION_ID "3975.2.1" does not match host VERSION_ID "3975.2.0"`},
	{name: "no version at all", host: "flatcar", ext: Release{"ID": "flatcar"},
		want: `VERSION_ID is missing but the host has VERSION_ID "3975.2.0": set VERSION_ID, SYSEXT_LEVEL (if the host has one) or ID=_any`},
	{name: "empty level counts as none", host: "flatcar", ext: Release{"ID": "flatcar", "SYSEXT_LEVEL": "", "VERSION_ID": "3975.2.0"}, want: "ok"},
	{name: "host without level", host: "debian", ext: Release{"ID": "debian", "SYSEXT_LEVEL": "1.0"},
		want: `VERSION_ID is missing but the host has VERSION_ID "12": set VERSION_ID, SYSEXT_LEVEL (if the host has one) or ID=_any`},
	{name: "host without level, same version", host: "debian", ext: Release{"ID": "debian", "SYSEXT_LEVEL": "1.0", "VERSION_ID": "12"}, want: "ok"},
	{name: "rolling host", host: "arch", ext: Release{"ID": "arch"}, want: "ok"},
	{name: "rolling host ignores versions", host: "arch", ext: Release{"ID": "arch", "VERSION_ID": "1", "SYSEXT_LEVEL": "2"}, want: "ok"},
	{name: "host level only, extension version only", host: "ID=os\nSYSEXT_LEVEL=3\n", ext: Release{"ID": "os", "VERSION_ID": "7"}, want: "ok"},
	{name: "host level only, other level", host: "ID=os\nSYSEXT_LEVEL=3\n", ext: Release{"ID": "os", "SYSEXT_LEVEL": "4"},
		want: `SYSEXT_LEVEL "4" does not match host SYSEXT_LEVEL "3"`},
	{name: "informational fields are not matched", host: "debian", ext: Release{"ID": "debian", "VERSION_ID": "12", "SYSEXT_ID": "x", "SYSEXT_VERSION_ID": "13", "SYSEXT_SYSEXT_LEVEL": "9"}, want: "ok"},
	// the first failing rule is the one reported
	{name: "scope before arch and ID", host: "flatcar", ext: Release{"ID": "fedora", "ARCHITECTURE": "arm64", "SYSEXT_SCOPE": "initrd"}, arch: "x86-64",
		want: `SYSEXT_SCOPE "initrd" does not include this host's scope "system"`},
	{name: "arch before ID", host: "flatcar", ext: Release{"ID": "fedora", "ARCHITECTURE": "arm64"}, arch: "x86-64",
		want: `ARCHITECTURE "arm64" does not match host architecture "x86-64"`},
	{name: "ID before version", host: "flatcar", ext: Release{"ID": "fedora", "SYSEXT_LEVEL": "2.0"},
		want: `ID "fedora" does not match host ID "flatcar" or ID_LIKE "coreos"`},
}

// hostRelease returns the os-release of a matchCase's host.
func hostRelease(t *testing.T, host string) Release {
	if path, ok := hosts[host]; ok {
		return parseFile(t, path)
	}
	return parse(t, host)
}

// args fills in a matchCase's defaults: scope "system" ("-" for none) and
// the real host architecture.
func (tc matchCase) args() (scope, arch string) {
	scope, arch = tc.scope, tc.arch
	switch scope {
	case "":
		scope = "system"
	case "-":
		scope = ""
	}
	if arch == "" {
		arch = HostArch().Name
	}
	return scope, arch
}

func TestMatch(t *testing.T) {
	for _, tc := range matchCases {
		t.Run(tc.name, func(t *testing.T) {
			scope, arch := tc.args()
			err := Sysext.Match(tc.ext, hostRelease(t, tc.host), scope, arch)
			if tc.want == "ok" {
				if err != nil {
					t.Fatalf("Match = %v, want a match", err)
				}
				return
			}
			var ie *IncompatibleError
			if !errors.As(err, &ie) {
				t.Fatalf("Match = %v (%T), want *IncompatibleError %q", err, err, tc.want)
			}
			if ie.Error() != tc.want {
				t.Errorf("Match = %q, want %q", ie, tc.want)
			}
			field, _, _ := strings.Cut(tc.want, " ")
			if strings.ToUpper(field) != field {
				field = "" // a sentence, not a field name
			}
			if ie.Field != field {
				t.Errorf("Field = %q, want %q", ie.Field, field)
			}
		})
	}
}

func TestMatchHostWithoutID(t *testing.T) {
	for _, host := range []Release{{}, {"ID": "", "VERSION_ID": "1"}} {
		err := Sysext.Match(Release{"ID": "_any"}, host, "system", "x86-64")
		var ie *IncompatibleError
		if err == nil || errors.As(err, &ie) || !strings.Contains(err.Error(), "host os-release has no ID") {
			t.Errorf("Match on host %q = %v, want a host error", host, err)
		}
	}
}

// TestMatchSystemd runs systemd-sysext (through ../shared/tools/sysext-oracle)
// on the cases systemd 252 implements: for each host, one root holds every
// case as a directory extension, and the extensions systemd merges must be
// exactly those Match accepts.
func TestMatchSystemd(t *testing.T) {
	oracle := findOracle(t)
	byHost := map[string][]matchCase{}
	for _, tc := range matchCases {
		if scope, arch := tc.args(); !tc.v257 && scope == "system" && arch == HostArch().Name {
			byHost[tc.host] = append(byHost[tc.host], tc)
		}
	}
	for host, cases := range byHost {
		t.Run(strings.Fields(host)[0], func(t *testing.T) {
			hostRel := hostRelease(t, host)
			exts := map[string][]byte{}
			var want []string
			for i, tc := range cases {
				name := fmt.Sprintf("case%02d", i)
				exts[name] = tc.ext.Render()
				if Sysext.Match(tc.ext, hostRel, "system", HostArch().Name) == nil {
					want = append(want, name)
				}
				t.Logf("%s: %s (%s)", name, tc.name, tc.want)
			}
			got := runOracle(t, oracle, hostRel, exts)
			if !slices.Equal(got, want) {
				t.Errorf("systemd-sysext merged %v, Match accepts %v", got, want)
			}
		})
	}
}

// TestParseSystemd checks ParseRelease against systemd's own parser: an
// extension whose VERSION_ID is written in some syntax merges onto a host
// whose VERSION_ID is ParseRelease's reading of it, and a control extension
// with another VERSION_ID does not.
func TestParseSystemd(t *testing.T) {
	oracle := findOracle(t)
	for _, raw := range []string{
		`plain`, `  spaced out  `, `"double \" \\ \$ \` + "`" + ` \q"`, `'single \ $x "y"'`,
		`"a"'b'c "d"`, `x"y"z`, `a\ b\"c\\d\e`, "first \\\n  second", "\"ab\\\ncd\"",
		"\"multi\nline\"", `a # b`, `"Café ☕"`, `a\ `, `"\r"`,
	} {
		t.Run(raw, func(t *testing.T) {
			want := parse(t, "VERSION_ID="+raw)["VERSION_ID"]
			host := Release{"ID": "bakerytest", "VERSION_ID": want}
			got := runOracle(t, oracle, host, map[string][]byte{
				"control": Release{"ID": "bakerytest", "VERSION_ID": want + "x"}.Render(),
				"raw":     []byte("ID=bakerytest\nVERSION_ID=" + raw + "\n"),
			})
			if !slices.Equal(got, []string{"raw"}) {
				t.Errorf("systemd-sysext merged %v for VERSION_ID=%s; ParseRelease reads it as %q", got, raw, want)
			}
		})
	}
}

// findOracle locates ../shared/tools/sysext-oracle beside the repository, or
// skips the test when it cannot run.
func findOracle(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: not running systemd-sysext")
	}
	if os.Geteuid() != 0 {
		t.Skip("systemd-sysext needs root")
	}
	if _, err := exec.LookPath("systemd-sysext"); err != nil {
		t.Skip("systemd-sysext is not installed")
	}
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for ; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		if dir == filepath.Dir(dir) {
			t.Fatal("no go.mod above the package directory")
		}
	}
	oracle := filepath.Join(dir, "..", "shared", "tools", "sysext-oracle")
	if _, err := os.Stat(oracle); err != nil {
		t.Skipf("sysext-oracle not found beside the repository: %v", err)
	}
	return oracle
}

// runOracle builds a root with host as its os-release and each of exts (name
// to extension-release file) as a directory extension, merges it with
// systemd-sysext and returns the names of the extensions merged, sorted.
func runOracle(t *testing.T, oracle string, host Release, exts map[string][]byte) []string {
	t.Helper()
	root := t.TempDir()
	write := func(path string, data []byte) {
		path = filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("usr/lib/os-release", host.Render())
	for name, release := range exts {
		dir := filepath.Join("var/lib/extensions", name, "usr")
		write(filepath.Join(dir, "lib/extension-release.d/extension-release."+name), release)
		write(filepath.Join(dir, "share/bakery-test", name), []byte(name))
	}
	out, err := exec.Command(oracle, root).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", oracle, err, out)
	}
	if !bytes.Contains(out, []byte("status ")) {
		t.Fatalf("sysext-oracle printed no status:\n%s", out)
	}
	var merged []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "hierarchy" && f[1] == "/usr" {
			merged = strings.Split(f[2], ",")
		}
	}
	slices.Sort(merged)
	return merged
}
