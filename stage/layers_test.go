package stage

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// wh is a whiteout member: an empty regular file, as image builders write
// them.
func wh(name string) tm { return reg(name, 0o644, "") }

// layerFiles writes each layer (members, compressed as format) to a file.
func layerFiles(t *testing.T, format Format, layers ...[]tm) []*os.File {
	t.Helper()
	var files []*os.File
	for i, members := range layers {
		files = append(files, writeSource(t, "layer"+string(rune('0'+i)), compress(t, format, tarBytes(t, members))))
	}
	return files
}

func TestLayers(t *testing.T) {
	base := []tm{
		dir("usr/", 0o755),
		dir("usr/bin/", 0o755),
		reg("usr/bin/tool", 0o755, "tool v1"),
		reg("usr/bin/gone", 0o755, "whited out"),
		dir("usr/lib/plugins/", 0o755),
		reg("usr/lib/plugins/a.so", 0o644, "a"),
		dir("usr/lib/plugins/sub/", 0o755),
		reg("usr/lib/plugins/sub/b.so", 0o644, "b"),
		reg("usr/share/doc/tool/README", 0o644, "readme"),
		sym("usr/bin/link", "tool"),
		reg("etc/tool.conf", 0o644, "conf"),
	}
	tests := []struct {
		name   string
		layers [][]tm
		opts   Options
		want   map[string]string
	}{
		{
			name:   "one layer is an archive",
			layers: [][]tm{base},
			opts:   Options{Include: []string{"usr/bin"}},
			want: map[string]string{
				"usr": "dir 0755", "usr/bin": "dir 0755",
				"usr/bin/tool": fileEntry(0o755, "tool v1"), "usr/bin/gone": fileEntry(0o755, "whited out"),
				"usr/bin/link": "link -> tool",
			},
		},
		{
			name: "whiteout, opaque directory, upper file wins",
			layers: [][]tm{base, {
				wh("usr/bin/.wh.gone"),
				reg("usr/bin/tool", 0o755, "tool v2"),
				wh("usr/lib/plugins/.wh..wh..opq"),
				reg("usr/lib/plugins/c.so", 0o644, "c"),
				wh("usr/share/.wh.doc"),
			}},
			opts: Options{Include: []string{"usr"}},
			want: map[string]string{
				"usr": "dir 0755", "usr/bin": "dir 0755", "usr/lib": "dir 0755", "usr/share": "dir 0755",
				"usr/bin/tool": fileEntry(0o755, "tool v2"), "usr/bin/link": "link -> tool",
				"usr/lib/plugins": "dir 0755", "usr/lib/plugins/c.so": fileEntry(0o644, "c"),
			},
		},
		{
			name: "a whiteout spares its own layer's entries, and acts in order",
			layers: [][]tm{base, {
				reg("usr/lib/plugins/new.so", 0o644, "new"),
				wh("usr/lib/plugins/.wh..wh..opq"),
				wh("usr/lib/plugins/.wh.new.so"),
			}, {
				reg("usr/bin/gone", 0o755, "back again"),
			}},
			opts: Options{Include: []string{"usr/lib", "usr/bin/gone"}},
			want: map[string]string{
				"usr": "dir 0755", "usr/bin": "dir 0755", "usr/lib": "dir 0755",
				"usr/lib/plugins": "dir 0755", "usr/lib/plugins/new.so": fileEntry(0o644, "new"),
				"usr/bin/gone": fileEntry(0o755, "back again"),
			},
		},
		{
			name: "an upper layer replaces a directory with a file and a file with a link",
			layers: [][]tm{base, {
				reg("usr/lib/plugins", 0o644, "now a file"),
				sym("usr/bin/tool", "other"),
				dir("usr/bin/link/", 0o755),
			}},
			opts: Options{Include: []string{"usr/lib", "usr/bin"}},
			want: map[string]string{
				"usr": "dir 0755", "usr/bin": "dir 0755", "usr/lib": "dir 0755",
				"usr/lib/plugins": fileEntry(0o644, "now a file"),
				"usr/bin/tool":    "link -> other", "usr/bin/gone": fileEntry(0o755, "whited out"),
				"usr/bin/link": "dir 0755",
			},
		},
		{
			name: "strip-components, include and to apply to whiteouts",
			layers: [][]tm{
				{reg("rootfs/bin/a", 0o755, "a"), reg("rootfs/bin/b", 0o755, "b"), reg("rootfs/lib/c", 0o644, "c")},
				{wh("rootfs/bin/.wh.a"), wh("rootfs/lib/.wh.c")},
			},
			opts: Options{StripComponents: 1, Include: []string{"bin"}, To: "/usr/libexec/x"},
			want: map[string]string{
				"usr": "dir 0755", "usr/libexec": "dir 0755", "usr/libexec/x": "dir 0755", "usr/libexec/x/bin": "dir 0755",
				"usr/libexec/x/bin/b": fileEntry(0o755, "b"),
			},
		},
		{
			name: "a whited-out directory made only of implied parents goes too",
			layers: [][]tm{
				{reg("opt/app/lib/x.so", 0o644, "x"), reg("opt/app/bin/app", 0o755, "app")},
				{wh("opt/app/.wh.lib")},
			},
			want: map[string]string{
				"opt": "dir 0755", "opt/app": "dir 0755", "opt/app/bin": "dir 0755",
				"opt/app/bin/app": fileEntry(0o755, "app"),
			},
		},
		{
			name: "whiteouts of other drivers' metadata and of missing entries change nothing",
			layers: [][]tm{
				{reg("usr/bin/a", 0o755, "a")},
				{wh("usr/bin/.wh..wh.plnk"), wh("usr/bin/.wh.missing"), wh("nothing/here/.wh..wh..opq")},
			},
			want: map[string]string{"usr": "dir 0755", "usr/bin": "dir 0755", "usr/bin/a": fileEntry(0o755, "a")},
		},
	}
	for _, tt := range tests {
		for _, format := range []Format{Tar, TarGzip, TarZstd} {
			t.Run(tt.name+"/"+format.String(), func(t *testing.T) {
				sb := newSandbox(t)
				r := &replay{dir: sb.dir, seen: map[string]string{}}
				if _, err := Layers(WithSink(testCtx, r), sb.root, layerFiles(t, format, tt.layers...), tt.opts); err != nil {
					t.Fatal(err)
				}
				if got := listing(t, sb.dir); !maps.Equal(got, tt.want) {
					t.Errorf("tree:\n got %q\nwant %q", got, tt.want)
				}
				if !maps.Equal(r.seen, tt.want) {
					t.Errorf("a Sink was told of\n%q\nwant %q", r.seen, tt.want)
				}
				sb.checkJail(t)
			})
		}
	}
}

// TestLayersSpareEarlierSources: whiteouts and opaque directories remove
// what the image's own lower layers wrote, also beneath directories an
// earlier source made, and never that source's files.
func TestLayersSpareEarlierSources(t *testing.T) {
	for _, whiteouts := range [][]string{
		{".wh.usr"},
		{".wh..wh..opq"},
		{"usr/.wh..wh..opq"},
		{"usr/lib/.wh.plugins", "usr/share/x/.wh.mine"},
		{"usr/lib/plugins/.wh..wh..opq", "usr/share/.wh.x"},
	} {
		t.Run(strings.Join(whiteouts, ","), func(t *testing.T) {
			sb := newSandbox(t)
			earlier := writeSource(t, "earlier.tar", tarBytes(t, []tm{
				reg("usr/bin/kubelet", 0o755, "kubelet"),
				reg("usr/lib/plugins/keep.so", 0o644, "keep"),
				reg("usr/share/x/keep", 0o644, "keep"),
			}))
			if _, err := Archive(testCtx, sb.root, earlier, Options{}); err != nil {
				t.Fatal(err)
			}
			var upper []tm
			for _, w := range whiteouts {
				upper = append(upper, wh(w))
			}
			layers := layerFiles(t, Tar,
				[]tm{reg("usr/lib/plugins/mine.so", 0o644, "mine"), reg("usr/share/x/mine", 0o644, "mine"), reg("usr/bin/kubelet", 0o755, "mine")},
				upper,
			)
			if _, err := Layers(testCtx, sb.root, layers, Options{}); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{
				"usr": "dir 0755", "usr/bin": "dir 0755", "usr/lib": "dir 0755", "usr/share": "dir 0755",
				"usr/lib/plugins": "dir 0755", "usr/lib/plugins/keep.so": fileEntry(0o644, "keep"),
				"usr/share/x": "dir 0755", "usr/share/x/keep": fileEntry(0o644, "keep"),
			}
			if len(whiteouts) == 2 { // the image's kubelet, which replaced the earlier one, stays
				want["usr/bin/kubelet"] = fileEntry(0o755, "mine")
			}
			if got := listing(t, sb.dir); !maps.Equal(got, want) {
				t.Errorf("tree:\n got %q\nwant %q", got, want)
			}
		})
	}
}

func TestLayersRefuseHostile(t *testing.T) {
	tests := []struct {
		name   string
		layers func(outside string) [][]tm
		opts   Options
		want   error
	}{
		{"whiteout with dot dot", func(string) [][]tm {
			return [][]tm{{reg("a", 0o644, "a")}, {wh("../.wh.a")}}
		}, Options{}, ErrEscape},
		{"whiteout leaving to", func(string) [][]tm {
			return [][]tm{{reg("a", 0o644, "a")}, {wh("x/../../.wh.cni")}}
		}, Options{To: "/usr/libexec/cni"}, ErrEscape},
		{"absolute whiteout", func(string) [][]tm { return [][]tm{{wh("/usr/bin/.wh.sh")}} }, Options{}, ErrEscape},
		{"whiteout through a link of a lower layer", func(o string) [][]tm {
			return [][]tm{{sym("usr/x", o)}, {wh("usr/x/.wh.victim")}}
		}, Options{}, ErrThroughSymlink},
		{"opaque directory through a link", func(o string) [][]tm {
			return [][]tm{{sym("usr/x", o)}, {wh("usr/x/.wh..wh..opq")}}
		}, Options{}, ErrThroughSymlink},
		{"write through a link of a lower layer", func(o string) [][]tm {
			return [][]tm{{sym("usr/x", o)}, {reg("usr/x/pwned", 0o644, "x")}}
		}, Options{}, ErrThroughSymlink},
		{"a whiteout naming nothing", func(string) [][]tm { return [][]tm{{wh("usr/.wh.")}} }, Options{}, ErrBadName},
		{"device in an upper layer", func(string) [][]tm {
			return [][]tm{{reg("a", 0o644, "a")}, {{name: "dev/null", typ: '3', mode: 0o666}}}
		}, Options{}, ErrDevice},
		{"hard link to a whited-out file", func(string) [][]tm {
			return [][]tm{{reg("usr/a", 0o644, "a")}, {wh("usr/.wh.a"), hard("usr/b", "usr/a")}}
		}, Options{}, ErrLinkOutside},
		{"entries counted over all layers", func(string) [][]tm {
			return [][]tm{{reg("a", 0o644, ""), reg("b", 0o644, ""), reg("c", 0o644, "")}, {wh(".wh.a"), reg("d", 0o644, ""), reg("e", 0o644, "")}}
		}, Options{MaxEntries: 5}, ErrTooManyEntries},
		{"bytes counted over all layers", func(string) [][]tm {
			return [][]tm{{reg("a", 0o644, "12345")}, {reg("b", 0o644, "12345")}}
		}, Options{MaxBytes: 8}, ErrTooLarge},
		{"include matching no layer's member", func(string) [][]tm {
			return [][]tm{{reg("a", 0o644, "a")}, {wh(".wh.a")}}
		}, Options{Include: []string{"b"}}, ErrNoMatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outside := outsideDir(t)
			victim := filepath.Join(outside, "victim")
			os.WriteFile(victim, []byte("keep"), 0o644)
			sb := newSandbox(t)
			_, err := Layers(testCtx, sb.root, layerFiles(t, Tar, tt.layers(outside)...), tt.opts)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if _, err := os.Stat(victim); err != nil {
				t.Errorf("the file outside is gone: %v", err)
			}
			os.Remove(victim)
			checkOutside(t, outside)
			sb.checkJail(t)
		})
	}
}

func TestLayersErrorNamesTheLayer(t *testing.T) {
	sb := newSandbox(t)
	layers := layerFiles(t, Tar, []tm{reg("a", 0o644, "a")}, []tm{reg("../x", 0o644, "x")})
	_, err := Layers(testCtx, sb.root, layers, Options{Origin: "registry.example/tool@sha256:1234"})
	want := `registry.example/tool@sha256:1234 layer 2 of 2: member "../x"`
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("err = %v, want it to start with %q", err, want)
	}
	zip := writeSource(t, "layer.zip", zipBytes(t, []tm{reg("a", 0o644, "a")}))
	if _, err := Layers(testCtx, sb.root, []*os.File{zip}, Options{}); !errors.Is(err, ErrFormat) {
		t.Errorf("a zip layer: err = %v, want %v", err, ErrFormat)
	}
}
