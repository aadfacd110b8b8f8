package sysext

import (
	"bytes"
	"encoding/json"
	"flag"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/release")

func parse(t *testing.T, s string) Release {
	t.Helper()
	r, err := ParseRelease(strings.NewReader(s))
	if err != nil {
		t.Fatalf("ParseRelease(%q): %v", s, err)
	}
	return r
}

func TestParseRelease(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     Release
	}{
		{"plain", "ID=debian\n", Release{"ID": "debian"}},
		{"no final newline", "ID=debian", Release{"ID": "debian"}},
		{"empty file", "", Release{}},
		{"blank lines only", "\n \n\t\n", Release{}},
		{"spaces around key and value", "  ID =  debian \t\n", Release{"ID": "debian"}},
		{"inner spaces kept", "NAME=a b  c  \n", Release{"NAME": "a b  c"}},
		{"lower-case key", "foo_Bar1=x", Release{"foo_Bar1": "x"}},
		{"hash comment", "# c\nID=x", Release{"ID": "x"}},
		{"semicolon comment", "; c\nID=x", Release{"ID": "x"}},
		{"indented comment", "  \t# c\nID=x", Release{"ID": "x"}},
		{"comment backslash does not continue", "# c \\\nID=x", Release{"ID": "x"}},
		{"hash inside value", "ID=x # y", Release{"ID": "x # y"}},
		{"single quotes literal", `A='a "b" \n $c'`, Release{"A": `a "b" \n $c`}},
		{"double quote escapes", `A="\" \\ \$ ` + "\\`" + `"`, Release{"A": "\" \\ $ `"}},
		{"double quote keeps other backslash", `A="a\tb\q"`, Release{"A": `a\tb\q`}},
		{"double quote spaces kept", `A="  x  "`, Release{"A": "  x  "}},
		{"double quote newline", "A=\"x\ny\"", Release{"A": "x\ny"}},
		{"double quote continuation", "A=\"x\\\ny\"", Release{"A": "xy"}},
		{"single quote newline", "A='x\ny'", Release{"A": "x\ny"}},
		{"quoted parts joined", `A="x" 'y' z`, Release{"A": "xyz"}},
		{"unquoted then quotes literal", `A=x"y" 'z'`, Release{"A": `x"y" 'z'`}},
		{"unquoted escapes", `A=a\ b\"c\\d\e`, Release{"A": `a b"c\de`}},
		{"escaped trailing space kept", "A=a\\ \nB=1", Release{"A": "a ", "B": "1"}},
		{"escape first", `A=\"x`, Release{"A": `"x`}},
		{"continuation", "A=foo \\\n  bar \nB=1", Release{"A": "foo   bar", "B": "1"}},
		{"backslash at end of file", `A=x\`, Release{"A": "x"}},
		{"empty value", "A=\nB=\"\"\nC=''", Release{"A": "", "B": "", "C": ""}},
		{"empty value at end", "A=", Release{"A": ""}},
		{"equals in value", "A=b=c", Release{"A": "b=c"}},
		{"last assignment wins", "A=1\nA=2", Release{"A": "2"}},
		{"CRLF", "A=1\r\nB=\"2\"\r\n", Release{"A": "1", "B": "2"}},
		{"UTF-8", `NAME="Café ☕"`, Release{"NAME": "Café ☕"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := parse(t, tc.in); !maps.Equal(got, tc.want) {
				t.Errorf("ParseRelease(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseReleaseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"no equals", "ID=x\nfoo\n", `line 2: "foo" has no "="`},
		{"no equals at end", "ID=x\n\nfoo", `line 3: "foo" has no "="`},
		{"space in key", "ID=x\nFOO BAR=1", `line 2: key "FOO BAR" is not a valid name`},
		{"export", "export ID=x", `line 1: key "export ID" is not a valid name`},
		{"digit first", "1A=x", `line 1: key "1A" is not a valid name`},
		{"dash in key", "A-B=x", `line 1: key "A-B" is not a valid name`},
		{"empty key", "ID=1\n =x=y", `line 2: key "=x" is not a valid name`},
		{"non-UTF-8 key", "\xffA=x", `line 1: key "\xffA" is not a valid name`},
		{"unterminated double quote", "ID=x\nA=\"abc\n\ndef", `line 2: A: unterminated " quote`},
		{"unterminated single quote", "A='abc", `line 1: A: unterminated ' quote`},
		{"unterminated after escape", "A=\"abc\\", `line 1: A: unterminated " quote`},
		{"NUL byte", "A=1\nB=x\x00y\n", "line 2: NUL byte"},
		{"invalid UTF-8 value", "A=1\n\nB=\xff\n", "line 3: B: value is not valid UTF-8"},
		{"invalid UTF-8 in quotes", "B=\"\xc3\"", "line 1: B: value is not valid UTF-8"},
		{"lines counted in quotes", "A=\"x\ny\"\nB C=1", `line 3: key "B C"`},
		{"lines counted in continuation", "A=x\\\ny\nB", `line 3: "B" has no "="`},
		{"lines counted in comments", "#\n;\nB", `line 3: "B" has no "="`},
		{"too large", "A=" + strings.Repeat("x", MaxReleaseSize), "larger than"},
		{"long line without equals", strings.Repeat("k", 1000), `line 1: "` + strings.Repeat("k", 32) + "..." + strings.Repeat("k", 32) + `" has no "="`},
		{"long invalid key", strings.Repeat("k", 1000) + "-=1", `line 1: key "` + strings.Repeat("k", 32) + "..." + strings.Repeat("k", 31) + `-" is not a valid name`},
		{"escapes in an unterminated key", "\x1b[2J='abc", `line 1: "\x1b[2J": unterminated ' quote`},
		{"long unterminated key", strings.Repeat("K", 100) + "='abc", `line 1: "` + strings.Repeat("K", 32) + "..." + strings.Repeat("K", 32) + `": unterminated`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseRelease(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseRelease(%.40q) = %q, %v; want error containing %q", tc.in, r, err, tc.want)
			}
			if len(err.Error()) > 200 {
				t.Errorf("error of %d bytes: %.200s", len(err.Error()), err)
			}
		})
	}
}

// TestParseReleaseFiles parses real-world os-release files and the syntax
// sampler against their golden JSON (go test -update rewrites it).
func TestParseReleaseFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/release/*-release")
	if err != nil || len(files) == 0 {
		t.Fatalf("no release files in testdata/release: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			got := parseFile(t, f)
			golden := strings.TrimSuffix(f, filepath.Ext(f)) + ".json"
			if *update {
				b, _ := json.MarshalIndent(got, "", "  ")
				if err := os.WriteFile(golden, append(b, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			b, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it, then check it by hand)", err)
			}
			var want Release
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, want) {
				t.Errorf("ParseRelease(%s) = %q, want %q", f, got, want)
			}
		})
	}
}

func parseFile(t *testing.T, path string) Release {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := ParseRelease(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return r
}

func TestRender(t *testing.T) {
	r := Release{
		"NAME": "Foo Linux", "ZZ": "1", "AA": "", "SYSEXT_VERSION_ID": "v1.32.2+k3s1",
		"SYSEXT_ID": "kubernetes", "EXTENSION_RELOAD_MANAGER": "1", "SYSEXT_SCOPE": "system portable",
		"ARCHITECTURE": "x86-64", "SYSEXT_LEVEL": "1.0", "VERSION_ID": "12", "ID_LIKE": "debian", "ID": "foo",
		"URL": "https://x.org/a_b-c,d:e@f%20", "ODD": "a'b\"c\\d$e`f",
	}
	want := `ID=foo
ID_LIKE=debian
VERSION_ID=12
SYSEXT_LEVEL=1.0
ARCHITECTURE=x86-64
SYSEXT_SCOPE="system portable"
EXTENSION_RELOAD_MANAGER=1
SYSEXT_ID=kubernetes
SYSEXT_VERSION_ID=v1.32.2+k3s1
AA=
NAME="Foo Linux"
ODD="a'b\"c\\d\$e` + "\\`" + `f"
URL=https://x.org/a_b-c,d:e@f%20
ZZ=1
`
	if got := string(r.Render()); got != want {
		t.Errorf("Render() =\n%s\nwant\n%s", got, want)
	}
}

// renderCases are values that need quoting, escaping or neither.
var renderCases = []string{
	"", "plain", "1.0+git", "with space", " lead", "trail ", "\ttab", "a\"b", `a\b`, `\`, `\\"`,
	"$HOME", "${x}", "`id`", "it's", "#hash", ";semi", "x=y", "line1\nline2", "cr\rlf\r\n", "\n",
	"Café ☕", "*?[a]", "a|b&c;d<e>f(g)", "~user", "!x", "\\\n", "https://a.example/b_c-d,e:f@g%20+h",
}

func TestRenderRoundTrip(t *testing.T) {
	for _, v := range renderCases {
		r := Release{"A": v, "ID": "x"}
		out := r.Render()
		if got := parse(t, string(out)); !maps.Equal(got, r) {
			t.Errorf("value %q: Render gave %q, which parses as %q", v, out, got)
		}
	}
}

// TestRenderShell checks that a POSIX shell sourcing Render's output sees
// the same values, as os-release(5) promises.
func TestRenderShell(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh to source the file with")
	}
	r := Release{}
	var names []string
	for i, v := range renderCases {
		k := "V" + strings.Repeat("X", i)
		r[k], names = v, append(names, `"$`+k+`"`)
	}
	f := filepath.Join(t.TempDir(), "os-release")
	if err := os.WriteFile(f, r.Render(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sh, "-c", `. "$0" && printf '%s\0' `+strings.Join(names, " "), f).Output()
	if err != nil {
		t.Fatalf("sh: %v", err)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if len(got) != len(renderCases) {
		t.Fatalf("sh printed %d values, want %d: %q", len(got), len(renderCases), got)
	}
	for i, v := range renderCases {
		if got[i] != v {
			t.Errorf("sh read %q, want %q", got[i], v)
		}
	}
}

func TestExtensionRelease(t *testing.T) {
	for _, tc := range []struct {
		name string
		e    ExtensionRelease
		want string // the rendered file
	}{
		{"defaults", ExtensionRelease{}, "ID=_any\n"},
		{"any with everything", ExtensionRelease{
			Architecture: "arm64", Scope: []string{"system", "portable"}, ReloadManager: true,
			ExtensionID: "kubernetes", ExtensionVersion: "v1.32.2",
		}, "ID=_any\nARCHITECTURE=arm64\nSYSEXT_SCOPE=\"system portable\"\nEXTENSION_RELOAD_MANAGER=1\nSYSEXT_ID=kubernetes\nSYSEXT_VERSION_ID=v1.32.2\n"},
		{"level", ExtensionRelease{ID: "flatcar", Level: "1.0", Architecture: "x86-64"},
			"ID=flatcar\nSYSEXT_LEVEL=1.0\nARCHITECTURE=x86-64\n"},
		{"confext with everything", ExtensionRelease{Class: Confext, ID: "flatcar", Level: "2", Scope: []string{"initrd"}, ReloadManager: true,
			ExtensionID: "etcd-conf", ExtensionVersion: "3.5"},
			"ID=flatcar\nCONFEXT_LEVEL=2\nCONFEXT_SCOPE=initrd\nEXTENSION_RELOAD_MANAGER=1\nCONFEXT_ID=etcd-conf\nCONFEXT_VERSION_ID=3.5\n"},
		{"version", ExtensionRelease{ID: "debian", VersionID: "12", Scope: []string{"initrd"}},
			"ID=debian\nVERSION_ID=12\nSYSEXT_SCOPE=initrd\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.e.Release()
			if got := string(r.Render()); got != tc.want {
				t.Errorf("Render() = %q, want %q", got, tc.want)
			}
			if err := tc.e.Validate(); err != nil {
				t.Errorf("Validate() = %v", err)
			}
			back := parse(t, tc.want).Extension(tc.e.class())
			if got, want := back.Release(), tc.e.Release(); !maps.Equal(got, want) {
				t.Errorf("Extension() gave %+v, want %+v", back, tc.e)
			}
		})
	}
}

func TestValidateRelease(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    Release
		want []string // each a regexp one error line must match; none for valid
	}{
		{"minimal", Release{"ID": "_any"}, nil},
		{"all fields", Release{"ID": "fedora", "VERSION_ID": "41", "SYSEXT_LEVEL": "1.0_rc-2+x,y",
			"ARCHITECTURE": "s390x", "SYSEXT_SCOPE": " initrd\tsystem portable ", "EXTENSION_RELOAD_MANAGER": "yes",
			"SYSEXT_ID": "any thing", "NAME": "free text"}, nil},
		{"SLES-style version", Release{"ID": "sles", "VERSION_ID": "15-SP5"}, nil},
		{"arch systemd knows but bakery does not build", Release{"ID": "_any", "ARCHITECTURE": "mips64-le"}, nil},
		{"arch any", Release{"ID": "_any", "ARCHITECTURE": "_any"}, nil},
		{"reload off", Release{"ID": "_any", "EXTENSION_RELOAD_MANAGER": "0"}, nil},
		{"missing ID", Release{"SYSEXT_LEVEL": "1"}, []string{`^ID is missing: set ID=_any`}},
		{"empty ID", Release{"ID": ""}, []string{`^ID is missing`}},
		{"upper-case ID", Release{"ID": "Debian"}, []string{`^ID "Debian" is not a valid os-release ID: use lower-case`}},
		{"ID with space", Release{"ID": "a b"}, []string{`^ID "a b" is not a valid os-release ID`}},
		{"level with any is informational", Release{"ID": "_any", "SYSEXT_LEVEL": "1.0"}, nil},
		{"version with any", Release{"ID": "_any", "VERSION_ID": "12"}, []string{`^VERSION_ID "12" is ignored with ID=_any`}},
		{"bad version", Release{"ID": "debian", "VERSION_ID": "12 (bookworm)"},
			[]string{`^VERSION_ID "12 \(bookworm\)" is not a valid version: use letters, digits`}},
		{"empty level", Release{"ID": "debian", "SYSEXT_LEVEL": ""}, []string{`^SYSEXT_LEVEL "" is not a valid version`}},
		{"tilde not a version char", Release{"ID": "debian", "SYSEXT_LEVEL": "1~rc"}, []string{`^SYSEXT_LEVEL "1~rc" is not a valid version`}},
		{"GOARCH spelling", Release{"ID": "_any", "ARCHITECTURE": "amd64"},
			[]string{`^ARCHITECTURE "amd64" is not a systemd architecture: use one of alpha, .*x86-64, or _any$`}},
		{"bad scope", Release{"ID": "_any", "SYSEXT_SCOPE": "system host"},
			[]string{`^SYSEXT_SCOPE "system host": "host" is not a scope: use system, initrd or portable$`}},
		{"empty scope", Release{"ID": "_any", "SYSEXT_SCOPE": " "}, []string{`^SYSEXT_SCOPE is empty, so the extension applies nowhere`}},
		{"reload not boolean", Release{"ID": "_any", "EXTENSION_RELOAD_MANAGER": "2"},
			[]string{`^EXTENSION_RELOAD_MANAGER "2" is not a boolean: use 1 or 0$`}},
		{"bad key and value", Release{"ID": "_any", "A B": "x", "C": "\xff", "D": "a\x00b"}, []string{
			`^key "A B" is not a valid name`, `^C: value is not UTF-8 text`, `^D: value is not UTF-8 text`}},
		{"every problem reported", Release{"VERSION_ID": "a b", "ARCHITECTURE": "x", "SYSEXT_SCOPE": "y"},
			[]string{`^ID is missing`, `^VERSION_ID "a b" is not a valid version`, `^ARCHITECTURE "x"`, `^SYSEXT_SCOPE "y"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Sysext.ValidateRelease(tc.r)
			var lines []string
			if err != nil {
				lines = strings.Split(err.Error(), "\n")
			}
			if len(lines) != len(tc.want) {
				t.Fatalf("ValidateRelease(%q) = %v, want %d errors", tc.r, err, len(tc.want))
			}
			for i, re := range tc.want {
				if !regexp.MustCompile(re).MatchString(lines[i]) {
					t.Errorf("error %d = %q, want match for %q", i, lines[i], re)
				}
			}
		})
	}
}

func FuzzParseRelease(f *testing.F) {
	files, _ := filepath.Glob("testdata/release/*-release")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{"A=\"x\\\ny\"", "A='", "A=x\\", "A= \\\n \\ \n", "#\\\nA=1", "A=\"\\\r\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRelease(bytes.NewReader(data))
		if err != nil {
			return
		}
		out := r.Render()
		back, err := ParseRelease(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("Render output %q does not parse: %v", out, err)
		}
		if !maps.Equal(back, r) {
			t.Fatalf("input %q parsed as %q, rendered as %q, parsed back as %q", data, r, out, back)
		}
		if again := back.Render(); !bytes.Equal(again, out) {
			t.Fatalf("Render not deterministic: %q then %q", out, again)
		}
	})
}
