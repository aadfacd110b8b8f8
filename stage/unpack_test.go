package stage

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// holey is a file mostly made of a hole: 3 MiB of zeros around a few bytes.
var holey = strings.Repeat("\x00", 1<<20) + "middle" + strings.Repeat("\x00", 2<<20)

// sample is a tree with every allowed member type.
var sample = []tm{
	dir("./", 0o755),
	dir("./usr/", 0o755),
	dir("./usr/bin/", 0o755),
	reg("./usr/bin/tool", 0o755, "#!/bin/sh\necho tool\n"),
	reg("./usr/bin/suid", 0o4755, "setuid program"),
	reg("./usr/lib/empty", 0o600, ""),
	reg("./usr/lib/holey", 0o644, holey),
	dir("./usr/share/private/", 0o700),
	dir("./usr/share/sticky/", 0o1777),
	sym("./usr/bin/rel", "tool"),
	sym("./usr/bin/abs", "/usr/bin/env"),
	hard("./usr/bin/hard", "./usr/bin/tool"),
}

// sampleWant is sample unpacked with no options.
var sampleWant = map[string]string{
	"usr":               "dir 0755",
	"usr/bin":           "dir 0755",
	"usr/bin/tool":      fileEntry(0o755, "#!/bin/sh\necho tool\n"),
	"usr/bin/suid":      fileEntry(0o4755, "setuid program"),
	"usr/lib":           "dir 0755", // implicit
	"usr/lib/empty":     fileEntry(0o600, ""),
	"usr/lib/holey":     fileEntry(0o644, holey),
	"usr/share":         "dir 0755", // implicit
	"usr/share/private": "dir 0700",
	"usr/share/sticky":  "dir 1777",
	"usr/bin/rel":       "link -> tool",
	"usr/bin/abs":       "link -> /usr/bin/env",
	"usr/bin/hard":      fileEntry(0o755, "#!/bin/sh\necho tool\n"),
}

func TestArchiveRoundTrip(t *testing.T) {
	for _, format := range []Format{Tar, TarGzip, TarXz, TarZstd, TarBzip2, Zip} {
		t.Run(format.String(), func(t *testing.T) {
			members, want := sample, maps.Clone(sampleWant)
			if format == Zip {
				members = slices.DeleteFunc(slices.Clone(sample), func(m tm) bool { return m.typ == tar.TypeLink })
				delete(want, "usr/bin/hard")
			}
			sb := newSandbox(t)
			src := writeSource(t, "archive.bin", archiveFor(t, format, members))
			res, err := Archive(testCtx, sb.root, src, Options{})
			if err != nil {
				t.Fatalf("Archive: %v", err)
			}
			got := listing(t, sb.dir)
			for p := range want {
				if got[p] != want[p] {
					t.Errorf("%s: got %q, want %q", p, got[p], want[p])
				}
			}
			for p := range got {
				if _, ok := want[p]; !ok {
					t.Errorf("unexpected %s: %s", p, got[p])
				}
			}
			if format != Zip {
				a, _ := os.Lstat(filepath.Join(sb.dir, "usr/bin/tool"))
				b, _ := os.Lstat(filepath.Join(sb.dir, "usr/bin/hard"))
				if !os.SameFile(a, b) {
					t.Error("usr/bin/hard is not a hard link to usr/bin/tool")
				}
			}
			var st syscall.Stat_t
			if err := syscall.Stat(filepath.Join(sb.dir, "usr/lib/holey"), &st); err != nil {
				t.Fatal(err)
			}
			if st.Blocks*512 >= int64(len(holey)) {
				t.Errorf("usr/lib/holey uses %d bytes on disk for %d bytes of mostly zeros: holes were written out", st.Blocks*512, len(holey))
			}
			wantBytes := int64(len("#!/bin/sh\necho tool\n") + len("setuid program") + len(holey))
			if res.Bytes != wantBytes {
				t.Errorf("Result.Bytes = %d, want %d", res.Bytes, wantBytes)
			}
			sb.checkJail(t)
		})
	}
}

func TestArchiveOptions(t *testing.T) {
	cni := []tm{
		dir("./", 0o755),
		reg("./bridge", 0o755, "bridge"),
		reg("./host-local", 0o755, "host-local"),
		reg("./loopback", 0o755, "loopback"),
		reg("./LICENSE", 0o644, "license"),
	}
	pkg := []tm{
		dir("pkg-1.0/", 0o755),
		dir("pkg-1.0/bin/", 0o750),
		reg("pkg-1.0/bin/a", 0o700, "a"),
		reg("pkg-1.0/bin/b", 0o4700, "b"),
		reg("pkg-1.0/share/doc/README", 0o644, "readme"),
		hard("pkg-1.0/bin/c", "pkg-1.0/bin/a"),
		reg("pkg-1.0", 0o644, "stripped to nothing: skipped"),
	}
	tests := []struct {
		name    string
		members []tm
		opts    Options
		want    map[string]string
		wantErr error
	}{
		{
			name:    "cni: strip counts ./ like GNU tar, include, to",
			members: cni,
			opts:    Options{StripComponents: 1, Include: []string{"bridge", "host-local"}, To: "/usr/libexec/cni"},
			want: map[string]string{
				"usr": "dir 0755", "usr/libexec": "dir 0755", "usr/libexec/cni": "dir 0755",
				"usr/libexec/cni/bridge":     fileEntry(0o755, "bridge"),
				"usr/libexec/cni/host-local": fileEntry(0o755, "host-local"),
			},
		},
		{
			name:    "strip one, to opt, hard link target stripped too",
			members: pkg,
			opts:    Options{StripComponents: 1, To: "opt/pkg"},
			want: map[string]string{
				"opt": "dir 0755", "opt/pkg": "dir 0755",
				"opt/pkg/bin":              "dir 0750",
				"opt/pkg/bin/a":            fileEntry(0o700, "a"),
				"opt/pkg/bin/b":            fileEntry(0o4700, "b"),
				"opt/pkg/bin/c":            fileEntry(0o700, "a"),
				"opt/pkg/share":            "dir 0755",
				"opt/pkg/share/doc":        "dir 0755",
				"opt/pkg/share/doc/README": fileEntry(0o644, "readme"),
			},
		},
		{
			name:    "a directory pattern selects its subtree",
			members: pkg,
			opts:    Options{StripComponents: 1, Include: []string{"share"}},
			want: map[string]string{
				"share": "dir 0755", "share/doc": "dir 0755",
				"share/doc/README": fileEntry(0o644, "readme"),
			},
		},
		{
			name:    "globs match whole components",
			members: pkg,
			opts:    Options{Include: []string{"*/bin/[ab]"}},
			want: map[string]string{
				"pkg-1.0": "dir 0755", "pkg-1.0/bin": "dir 0755",
				"pkg-1.0/bin/a": fileEntry(0o700, "a"),
				"pkg-1.0/bin/b": fileEntry(0o4700, "b"),
			},
		},
		{
			name:    "mode replaces file modes, raw octal setuid kept",
			members: pkg,
			opts:    Options{StripComponents: 2, Include: []string{"a", "doc"}, Mode: 0o4755},
			want: map[string]string{
				"a": fileEntry(0o4755, "a"), "doc": "dir 0755",
				"doc/README": fileEntry(0o4755, "readme"),
			},
		},
		{
			name:    "mode with Go flags",
			members: pkg,
			opts:    Options{StripComponents: 2, Include: []string{"a"}, Mode: fs.ModeSetgid | 0o750},
			want:    map[string]string{"a": fileEntry(0o2750, "a")},
		},
		{
			name:    "pattern matching nothing",
			members: cni,
			opts:    Options{StripComponents: 1, Include: []string{"bridge", "flannel"}},
			wantErr: ErrNoMatch,
		},
		{
			name:    "include before strip matches nothing",
			members: pkg,
			opts:    Options{StripComponents: 1, Include: []string{"pkg-1.0/bin"}},
			wantErr: ErrNoMatch,
		},
		{
			name:    "hard link to an excluded file",
			members: pkg,
			opts:    Options{StripComponents: 1, Include: []string{"bin/c"}},
			wantErr: ErrLinkOutside,
		},
		{
			name:    "bad pattern",
			members: cni,
			opts:    Options{Include: []string{"[b"}},
			wantErr: path.ErrBadPattern,
		},
		{
			name:    "bad pattern after a literal",
			members: cni,
			opts:    Options{Include: []string{"bin/[a-"}},
			wantErr: path.ErrBadPattern,
		},
		{
			name:    "total over MaxBytes",
			members: []tm{reg("a", 0o644, strings.Repeat("a", 600)), reg("b", 0o644, strings.Repeat("b", 600))},
			opts:    Options{MaxBytes: 1000},
			wantErr: ErrTooLarge,
		},
		{
			name:    "later files replace earlier ones",
			members: []tm{reg("a", 0o644, "old"), sym("l", "a"), reg("a", 0o600, "new"), sym("l", "b")},
			want:    map[string]string{"a": fileEntry(0o600, "new"), "l": "link -> b"},
		},
		{
			name:    "replacing a file keeps its hard links' content",
			members: []tm{reg("a", 0o644, "old"), hard("b", "a"), hard("b", "a"), reg("a", 0o644, "new")},
			want:    map[string]string{"a": fileEntry(0o644, "new"), "b": fileEntry(0o644, "old")},
		},
		{
			name: "directory modes: the last member's wins, those locking the owner out come last",
			members: []tm{
				dir("ro/", 0o555), reg("ro/f", 0o644, "f"), dir("ro/sub/", 0o500), reg("ro/sub/g", 0o644, "g"),
				dir("unlocked/", 0o555), dir("unlocked/", 0o2775), reg("unlocked/h", 0o644, "h"),
				dir("locked/", 0o755), dir("locked/", 0o1555),
			},
			want: map[string]string{
				"ro": "dir 0555", "ro/f": fileEntry(0o644, "f"), "ro/sub": "dir 0500", "ro/sub/g": fileEntry(0o644, "g"),
				"unlocked": "dir 2775", "unlocked/h": fileEntry(0o644, "h"), "locked": "dir 1555",
			},
		},
		{
			name:    "inner .. that stays inside",
			members: []tm{reg("x/../y", 0o644, "y")},
			want:    map[string]string{"y": fileEntry(0o644, "y")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sb := newSandbox(t)
			src := writeSource(t, "src.tar", tarBytes(t, tt.members))
			_, err := Archive(testCtx, sb.root, src, tt.opts)
			sb.checkJail(t)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Archive: %v", err)
			}
			got := listing(t, sb.dir)
			if !maps.Equal(got, tt.want) {
				t.Errorf("tree:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// BenchmarkArchive unpacks a tar.zst of 2000 small files and one 8 MiB file.
func BenchmarkArchive(b *testing.B) {
	var members []tm
	for i := range 2000 {
		members = append(members, reg("usr/share/bench/"+strconv.Itoa(i/100)+"/"+strconv.Itoa(i), 0o644, strings.Repeat(strconv.Itoa(i), 200)))
	}
	members = append(members, reg("usr/bin/big", 0o755, strings.Repeat("binary\x01", 8<<20/7)))
	src := writeSource(b, "bench.tar.zst", compress(b, TarZstd, tarBytes(b, members)))
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		sb := newSandbox(b)
		b.StartTimer()
		res, err := Archive(testCtx, sb.root, src, Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(res.Bytes)
	}
}

// TestArchiveZipWithoutUnixModes checks that a zip written on a system
// without Unix modes (FAT attributes: everything 0666/0777) gets 0644
// files and 0755 directories rather than world-writable ones.
func TestArchiveZipWithoutUnixModes(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range []string{"dir/", "dir/file.txt"} {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(name, "/") {
			w.Write([]byte("text"))
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	sb := newSandbox(t)
	if _, err := Archive(testCtx, sb.root, writeSource(t, "fat.zip", buf.Bytes()), Options{}); err != nil {
		t.Fatalf("Archive: %v", err)
	}
	want := map[string]string{"dir": "dir 0755", "dir/file.txt": fileEntry(0o644, "text")}
	if got := listing(t, sb.dir); !maps.Equal(got, want) {
		t.Errorf("tree:\n got %q\nwant %q", got, want)
	}
}

func TestEntryLimit(t *testing.T) {
	members := func(n int) []tm {
		var ms []tm
		for i := range n {
			ms = append(ms, reg("usr/share/x/"+strconv.Itoa(i), 0o644, ""))
		}
		return ms
	}
	for _, format := range []Format{Tar, TarGzip, Zip} {
		for _, tt := range []struct {
			entries, max int
			err          error
		}{{10, 10, nil}, {11, 10, ErrTooManyEntries}, {11, 0, nil}} {
			t.Run(fmt.Sprintf("%s/%d of %d", format, tt.entries, tt.max), func(t *testing.T) {
				sb := newSandbox(t)
				src := writeSource(t, "many", archiveFor(t, format, members(tt.entries)))
				_, err := Archive(testCtx, sb.root, src, Options{MaxEntries: tt.max, Origin: "https://example.org/many"})
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				if err != nil {
					want := "https://example.org/many: more than 10 entries (MaxEntries) — raise MaxEntries (bake --max-entries) only if the source is trusted"
					if !strings.HasPrefix(err.Error(), want) {
						t.Errorf("err = %v, want it to start with %q", err, want)
					}
					if files := len(listing(t, sb.dir)) - 3; files > 10 || format == Zip && files > 0 {
						t.Errorf("%d files unpacked before the refusal; want at most 10, none from a zip", files)
					}
				}
				sb.checkJail(t)
			})
		}
	}
	t.Run("tree", func(t *testing.T) {
		src := t.TempDir()
		files := map[string]string{}
		for i := range 9 {
			files["usr/"+strconv.Itoa(i)] = ""
		}
		makeTree(t, src, files, nil) // usr and 9 files: 10 entries
		for _, tt := range []struct {
			max int
			err error
		}{{10, nil}, {9, ErrTooManyEntries}} {
			err := Tree(testCtx, newSandbox(t).root, src, Options{MaxEntries: tt.max})
			if !errors.Is(err, tt.err) || err != nil && !strings.HasPrefix(err.Error(), src+": more than 9 entries") {
				t.Errorf("MaxEntries %d: err = %v, want %v", tt.max, err, tt.err)
			}
		}
	})
}

// TestAtKeepsDirectoriesOpen walks the stager's open directories down a
// tree deeper than maxOpenDirs, a level at a time, and back up and down: each Root at returns is the
// member's directory (a file made through it lands there), the open
// directories stay an ancestor chain of at most maxOpenDirs+1, and going
// back up closes the deeper ones.
func TestAtKeepsDirectoriesOpen(t *testing.T) {
	dir := t.TempDir()
	deep := strings.Repeat("d/", 3*maxOpenDirs) + "f"
	if err := os.MkdirAll(filepath.Join(dir, path.Dir(deep)), 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	s := &stager{root: root}
	defer s.closeDirs(0)
	// Down one level at a time (as an archive in walk order and parents
	// go), then jumps up and down.
	var walk []string
	for p := path.Dir(deep); p != "."; p = path.Dir(p) {
		walk = append([]string{p + "/f"}, walk...)
	}
	for _, full := range append(walk, "top", "d/d/a", deep, "d/d/d/b", "d/c", deep) {
		d, base, err := s.at(full)
		if err != nil {
			t.Fatalf("%s: %v", full, err)
		}
		if err := d.WriteFile(base, []byte(full), 0o644); err != nil {
			t.Fatalf("%s: %v", full, err)
		}
		if got, err := os.ReadFile(filepath.Join(dir, full)); err != nil || string(got) != full {
			t.Errorf("%s: the file made through at's Root is not there: %q, %v", full, got, err)
		}
		if len(s.dirs) > maxOpenDirs+1 {
			t.Errorf("%s: %d directories open", full, len(s.dirs))
		}
		for k, o := range s.dirs {
			if want := path.Dir(full); o.path != want && !strings.HasPrefix(want, o.path+"/") || k > 0 && !strings.HasPrefix(o.path, s.dirs[k-1].path+"/") {
				t.Errorf("%s: open directory %d is %s", full, k, o.path)
			}
		}
		if want := strings.Count(path.Dir(full), "/") + 1; path.Dir(full) != "." && len(s.dirs) != min(want, maxOpenDirs+1) {
			t.Errorf("%s: %d directories open, want %d", full, len(s.dirs), min(want, maxOpenDirs+1))
		}
	}
}
