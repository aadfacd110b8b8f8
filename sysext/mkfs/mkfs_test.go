package mkfs

import (
	"strings"
	"testing"

	"github.com/sysext-bakery/bakery/sysext"
)

func TestMksquashfsArgs(t *testing.T) {
	cases := []struct {
		opts sysext.BuildOptions
		want string // expected tail after the fixed reproducibility flags
		err  string
	}{
		{sysext.BuildOptions{AllRoot: true}, "-all-root -comp zstd", ""},
		{sysext.BuildOptions{Compression: sysext.Zstd, Level: 15}, "-comp zstd -Xcompression-level 15", ""},
		{sysext.BuildOptions{Compression: sysext.Gzip, Level: 9}, "-comp gzip -Xcompression-level 9", ""},
		{sysext.BuildOptions{Compression: sysext.Xz}, "-comp xz", ""},
		{sysext.BuildOptions{Compression: sysext.None}, "-noI -noD -noF -noX", ""},
		{sysext.BuildOptions{Compression: sysext.Zstd, Level: 22}, "-comp zstd -Xcompression-level 22", ""},
		{sysext.BuildOptions{Compression: sysext.Lz4, Level: 3}, "", "lz4 takes no --level"},
		{sysext.BuildOptions{Compression: sysext.None, Level: 3}, "", "none takes no --level"},
		{sysext.BuildOptions{Level: 23}, "", "zstd level 23: use 1..22"},
		{sysext.BuildOptions{Compression: sysext.Gzip, Level: 10}, "", "gzip level 10: use 1..9"},
		{sysext.BuildOptions{Compression: sysext.Gzip, Level: -1}, "", "gzip level -1"},
		{sysext.BuildOptions{Compression: "brotli"}, "", `unknown compression "brotli"`},
	}
	for _, c := range cases {
		args, err := MksquashfsArgs("src", "dst", c.opts)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%+v: err = %v, want %q", c.opts, err, c.err)
			}
			continue
		}
		got := strings.Join(args, " ")
		if !strings.HasPrefix(got, "src dst -noappend -reproducible -quiet -no-progress -mkfs-time 0 -all-time 0 ") || !strings.HasSuffix(got, c.want) {
			t.Errorf("%+v: args %q, want suffix %q", c.opts, got, c.want)
		}
	}
}

func TestMkfsErofsArgs(t *testing.T) {
	args, err := MkfsErofsArgs("src", "dst", sysext.BuildOptions{Epoch: 42, AllRoot: true, Compression: sysext.Lz4, Level: 9})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(args, " "), "--quiet -T42 -Ud7a5c6f0-5a1e-4b3a-9c1d-000000000000 --all-root -zlz4hc,9 dst src"; got != want {
		t.Errorf("args %q, want %q", got, want)
	}
	if _, err := MkfsErofsArgs("src", "dst", sysext.BuildOptions{Compression: sysext.Zstd}); err == nil {
		t.Error("zstd accepted, but Debian's mkfs.erofs has only lz4")
	}
	if _, err := MkfsErofsArgs("src", "dst", sysext.BuildOptions{Level: 3}); err == nil || !strings.Contains(err.Error(), "uncompressed erofs takes no --level") {
		t.Errorf("a level without compression: err = %v, want it refused", err)
	}
}
