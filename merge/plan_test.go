package merge

import (
	"errors"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/sysext-bakery/bakery/sysext"
)

func file(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s), Mode: 0o644} }
func dir() *fstest.MapFile          { return &fstest.MapFile{Mode: fs.ModeDir | 0o755} }

func TestDiscover(t *testing.T) {
	tests := []struct {
		name    string
		fsys    fstest.MapFS
		want    []string // name:type:path
		refused []string // name: reason substring
	}{
		{
			name: "first search path wins, then sort by version",
			fsys: fstest.MapFS{
				"etc/extensions/b10.raw":         file("x"),
				"var/lib/extensions/b9.raw":      file("x"),
				"var/lib/extensions/b10.raw":     file("lower"),
				"run/extensions/tree/usr/a":      file("x"),
				"var/lib/extensions/notes.txt":   file("ignored"),
				"var/lib/extensions/.hidden.raw": file("ignored"),
			},
			want: []string{"b9:raw:var/lib/extensions/b9.raw", "b10:raw:etc/extensions/b10.raw", "tree:directory:run/extensions/tree"},
		},
		{
			name: "empty directory masks a lower image",
			fsys: fstest.MapFS{
				"etc/extensions/foo":         dir(),
				"var/lib/extensions/foo.raw": file("x"),
				"var/lib/extensions/bar.raw": file("x"),
			},
			want:    []string{"bar:raw:var/lib/extensions/bar.raw"},
			refused: []string{"foo: empty directory"},
		},
		{
			name: "symlinks and non-regular files are refused and still claim the name",
			fsys: fstest.MapFS{
				"etc/extensions/evil.raw":     &fstest.MapFile{Data: []byte("/tmp/evil.raw"), Mode: fs.ModeSymlink | 0o777},
				"var/lib/extensions/evil.raw": file("x"),
				"etc/extensions/pipe.raw":     &fstest.MapFile{Mode: fs.ModeNamedPipe | 0o644},
				"etc/extensions/linkdir":      &fstest.MapFile{Data: []byte("/srv"), Mode: fs.ModeSymlink | 0o777},
			},
			refused: []string{"evil: symlink (to \"/tmp/evil.raw\")", "linkdir: symlink", "pipe: not a regular file"},
		},
		{
			name: "no extension directories",
			fsys: fstest.MapFS{"usr/lib/os-release": file("ID=debian\n")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			images, refused, err := Discover(tt.fsys, sysext.Sysext)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, img := range images {
				got = append(got, img.Name+":"+string(img.Type)+":"+img.Path)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("images = %q, want %q", got, tt.want)
			}
			checkRefused(t, refused, tt.refused)
		})
	}
}

// checkRefused checks that exactly the wanted images were refused, each
// for a reason holding the given text ("name: text").
func checkRefused(t *testing.T, got []Refusal, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("refused %v, want %d refusals %q", got, len(want), want)
		return
	}
	slices.SortFunc(got, func(a, b Refusal) int { return strings.Compare(a.Name, b.Name) })
	for i, w := range want {
		name, text, _ := strings.Cut(w, ": ")
		if got[i].Name != name || !strings.Contains(got[i].Reason, text) {
			t.Errorf("refusal %d = %v, want %s with %q", i, got[i], name, text)
		}
	}
}

// fakeTree is an image tree in memory with extended attributes; with
// verity set, the tree of a DDI verified that way (fakeDDI).
type fakeTree struct {
	fstest.MapFS
	xattrs           map[string]string
	verity, unsigned string
}

// fakeDDI is the tree of a DDI, verified as its fakeTree says.
type fakeDDI struct{ fakeTree }

func (t fakeDDI) Verity() string   { return t.verity }
func (t fakeDDI) Unsigned() string { return t.unsigned }

func (fakeTree) Close() error { return nil }
func (t fakeTree) Xattr(name, attr string) ([]byte, error) {
	v, ok := t.xattrs[name+"\x00"+attr]
	if !ok {
		return nil, errors.New("no such attribute")
	}
	return []byte(v), nil
}

// fakeOpener opens images from memory: the tree of a raw image is looked
// up by name, a directory image is read from the root.
type fakeOpener struct {
	root    fstest.MapFS
	trees   map[string]fakeTree
	digests map[string]string
}

func (o fakeOpener) Open(img Image, policy Policy) (Tree, string, error) {
	if img.Type == Directory {
		sub, _ := fs.Sub(o.root, img.Path)
		return fakeTree{MapFS: toMap(sub)}, "", nil
	}
	t, ok := o.trees[img.Name]
	if !ok {
		return nil, "", errors.New("not a squashfs or erofs image (no known superblock magic)")
	}
	if t.verity != "" {
		return fakeDDI{t}, o.digests[img.Name], nil
	}
	return t, o.digests[img.Name], nil
}

func toMap(fsys fs.FS) fstest.MapFS {
	m := fstest.MapFS{}
	fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			data, _ := fs.ReadFile(fsys, p)
			m[p] = &fstest.MapFile{Data: data}
		}
		return err
	})
	return m
}

// ext is the tree of an extension named name with extension-release rel.
func ext(name, rel string) fakeTree {
	return fakeTree{MapFS: fstest.MapFS{
		"usr/lib/extension-release.d/extension-release." + name: file(rel),
		"usr/bin/" + name: file(name),
	}}
}

// ddiExt is the tree of a DDI verified as verity says.
func ddiExt(name, verity, unsigned string) fakeTree {
	t := ext(name, "ID=_any\n")
	t.verity, t.unsigned = verity, unsigned
	return t
}

// gptHead is the start of a GPT disk: a protective MBR's signature and a
// GPT header's.
func gptHead() []byte {
	b := make([]byte, 1024)
	b[510], b[511] = 0x55, 0xaa
	copy(b[512:], "EFI PART")
	return b
}

func TestPrepare(t *testing.T) {
	debian := sysext.Release{"ID": "debian", "VERSION_ID": "12", "ID_LIKE": "ubuntu-ish"}
	host := Host{Release: debian, Scope: "system", Arch: "x86-64"}
	raw := func(names ...string) fstest.MapFS {
		m := fstest.MapFS{}
		for _, n := range names {
			m["var/lib/extensions/"+n+".raw"] = file("image")
		}
		return m
	}
	relaxed := ext("other", "ID=_any\n")
	relaxed.xattrs = map[string]string{"usr/lib/extension-release.d/extension-release.other\x00" + sysext.StrictXattr: "0"}
	withOSRelease := ext("osr", "ID=_any\n")
	withOSRelease.MapFS["usr/lib/os-release"] = file("ID=evil\n")

	tests := []struct {
		name    string
		root    fstest.MapFS
		trees   map[string]fakeTree
		digests map[string]string
		policy  Policy
		want    []string
		refused []string
	}{
		{name: "ID=_any", root: raw("a"), trees: map[string]fakeTree{"a": ext("a", "ID=_any\n")}, want: []string{"a"}},
		{name: "ID and VERSION_ID match", root: raw("a"), trees: map[string]fakeTree{"a": ext("a", "ID=debian\nVERSION_ID=12\n")}, want: []string{"a"}},
		{name: "VERSION_ID mismatch", root: raw("a"), trees: map[string]fakeTree{"a": ext("a", "ID=debian\nVERSION_ID=11\n")}, refused: []string{"a: VERSION_ID"}},
		{name: "ID_LIKE (systemd 257)", root: raw("a"), trees: map[string]fakeTree{"a": ext("a", "ID=ubuntu-ish\nVERSION_ID=12\n")}, want: []string{"a"}},
		{name: "ARCHITECTURE mismatch", root: raw("a"), trees: map[string]fakeTree{"a": ext("a", "ID=_any\nARCHITECTURE=arm64\n")}, refused: []string{"a: ARCHITECTURE"}},
		{name: "initrd scope only", root: raw("a"), trees: map[string]fakeTree{"a": ext("a", "ID=_any\nSYSEXT_SCOPE=initrd\n")}, refused: []string{"a: SYSEXT_SCOPE"}},
		{name: "name mismatch", root: raw("a"), trees: map[string]fakeTree{"a": ext("b", "ID=_any\n")}, refused: []string{"a: no /usr/lib/extension-release.d/extension-release.a"}},
		{name: "name mismatch with strict=0", root: raw("a"), trees: map[string]fakeTree{"a": relaxed}, want: []string{"a"}},
		{name: "os-release in image", root: raw("osr"), trees: map[string]fakeTree{"osr": withOSRelease}, refused: []string{"osr: usr/lib/os-release"}},
		{name: "broken image does not stop others", root: raw("bad", "good"), trees: map[string]fakeTree{"good": ext("good", "ID=_any\n")}, want: []string{"good"}, refused: []string{"bad: superblock"}},
		{name: "garbage extension-release", root: raw("a"), trees: map[string]fakeTree{"a": ext("a", "ID\x00=\n")}, refused: []string{"a: extension-release.a"}},
		{name: "order b9 below b10", root: raw("b10", "b9"), trees: map[string]fakeTree{"b9": ext("b9", "ID=_any\n"), "b10": ext("b10", "ID=_any\n")}, want: []string{"b9", "b10"}},
		{
			name: "directory image", root: fstest.MapFS{"etc/extensions/d/usr/lib/extension-release.d/extension-release.d": file("ID=_any\n")},
			want: []string{"d"},
		},
		{
			name: "require signature: verified, replaced, unverified, directory",
			root: func() fstest.MapFS {
				m := raw("ok", "swapped", "unknown")
				m["etc/extensions/d/usr/lib/extension-release.d/extension-release.d"] = file("ID=_any\n")
				return m
			}(),
			trees:   map[string]fakeTree{"ok": ext("ok", "ID=_any\n"), "swapped": ext("swapped", "ID=_any\n"), "unknown": ext("unknown", "ID=_any\n")},
			digests: map[string]string{"ok": "sha256:aa", "swapped": "sha256:evil", "unknown": "sha256:cc"},
			policy:  Policy{RequireSignature: true, Verified: map[string][]string{"ok": {"sha256:aa"}, "swapped": {"sha256:bb"}}},
			want:    []string{"ok"},
			refused: []string{"d: directory image", "swapped: digest sha256:evil differs from the verified sha256:bb", "unknown: not verified"},
		},
		{
			name: "require signature: DDIs signed, unsigned, unsigned but verified by sync",
			root: func() fstest.MapFS {
				m := fstest.MapFS{}
				for _, n := range []string{"signed", "unsigned", "synced"} {
					m["var/lib/extensions/"+n+".raw"] = &fstest.MapFile{Data: gptHead()}
				}
				return m
			}(),
			trees: map[string]fakeTree{
				"signed":   ddiExt("signed", "signed", ""),
				"unsigned": ddiExt("unsigned", "verity", "the DDI has no root-x86-64-verity-sig partition"),
				"synced":   ddiExt("synced", "verity", "the DDI has no root-x86-64-verity-sig partition"),
			},
			digests: map[string]string{"signed": "sha256:11", "unsigned": "sha256:22", "synced": "sha256:33"},
			policy:  Policy{RequireSignature: true, Verified: map[string][]string{"synced": {"sha256:33"}}},
			want:    []string{"signed", "synced"},
			refused: []string{"unsigned: not signed: the DDI has no root-x86-64-verity-sig partition"},
		},
		{
			name:  "unsigned DDI without require-signature",
			root:  fstest.MapFS{"var/lib/extensions/u.raw": &fstest.MapFile{Data: gptHead()}},
			trees: map[string]fakeTree{"u": ddiExt("u", "verity", "no signature")},
			want:  []string{"u"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := Prepare(tt.root, sysext.Sysext, host, fakeOpener{tt.root, tt.trees, tt.digests}, tt.policy)
			if err != nil {
				t.Fatal(err)
			}
			if got := plan.Names(); !slices.Equal(got, tt.want) {
				t.Errorf("extensions = %q, want %q (refused %v)", got, tt.want, plan.Refused)
			}
			checkRefused(t, plan.Refused, tt.refused)
		})
	}
}

func TestReadHostRelease(t *testing.T) {
	tests := []struct {
		name    string
		fsys    fstest.MapFS
		wantID  string
		wantErr string
	}{
		{"etc wins", fstest.MapFS{"etc/os-release": file("ID=etc\n"), "usr/lib/os-release": file("ID=usr\n")}, "etc", ""},
		{"usr fallback", fstest.MapFS{"usr/lib/os-release": file("ID=usr\n")}, "usr", ""},
		{"missing", fstest.MapFS{}, "", "no host os-release"},
		{"no ID", fstest.MapFS{"etc/os-release": file("NAME=x\n")}, "", "has no ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rel, err := ReadHostRelease(tt.fsys)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || rel["ID"] != tt.wantID {
				t.Fatalf("ID = %q, %v; want %q", rel["ID"], err, tt.wantID)
			}
		})
	}
}
