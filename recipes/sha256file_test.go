package recipes

import (
	"strings"
	"testing"
)

func TestParseSHA256File(t *testing.T) {
	upperB := strings.ToUpper(hashB)
	tests := []struct {
		name, data, file string
		want             string // the hash, or a part of the error
		wantErr          bool
	}{
		{name: "lone hash", data: hashA + "\n", file: "kubelet", want: hashA},
		{name: "lone hash without newline, upper case", data: upperB, file: "x", want: hashB},
		{name: "lone hash, CRLF and blanks", data: "\r\n  " + hashA + "  \r\n\r\n", file: "x", want: hashA},
		{name: "hash of stdin", data: hashA + "  -\n", file: "tool", want: hashA},
		{name: "hash and its name", data: hashA + "  tool.tgz\n", file: "tool.tgz", want: hashA},
		{name: "hash and another name", data: hashA + "  other.tgz\n", file: "tool.tgz", wantErr: true, want: `no hash for "tool.tgz" (compared whole and by base name with the names on its 1 checksum lines)`},
		{name: "SHA256SUMS", data: hashA + "  a.tgz\n" + hashB + "  b.tgz\n", file: "b.tgz", want: hashB},
		{name: "binary mark", data: hashA + " *a.tgz\n" + upperB + " *b.tgz\n", file: "b.tgz", want: hashB},
		{name: "tab and one space", data: hashA + "\ta.tgz\n" + hashB + " b.tgz\n", file: "a.tgz", want: hashA},
		{name: "names with folders", data: hashA + "  ./dist/a.tgz\n" + hashB + "  dist/b.tgz\n", file: "a.tgz", want: hashA},
		{name: "name with a space", data: hashA + "  my file.tgz\n" + hashB + "  b.tgz\n", file: "my file.tgz", want: hashA},
		{name: "escaped name", data: `\` + hashA + "  a\\\\b.tgz\n" + hashB + "  b.tgz\n", file: `a\b.tgz`, want: hashA},
		{name: "comments", data: "# sums\n" + hashA + "  a.tgz\n# end\n", file: "a.tgz", want: hashA},
		{name: "BSD", data: "SHA256 (a.tgz) = " + hashA + "\nSHA256 (b.tgz) = " + hashB + "\n", file: "b.tgz", want: hashB},
		{name: "openssl", data: "SHA2-256(a.tgz)= " + hashA + "\n", file: "a.tgz", want: hashA},
		{name: "same hash twice", data: hashA + "  a.tgz\n" + hashA + "  dist/a.tgz\n", file: "a.tgz", want: hashA},
		{name: "two hashes for a name", data: hashA + "  a.tgz\n" + hashB + "  dist/a.tgz\n", file: "a.tgz", wantErr: true, want: `gives "a.tgz" two different hashes (lines 1 and 2)`},
		{name: "not found", data: hashA + "  a.tgz\n" + hashB + "  b.tgz\n", file: "c.tgz", wantErr: true, want: `sha256 file has no hash for "c.tgz" (compared whole and by base name with the names on its 2 checksum lines)`},
		{name: "empty", data: "", file: "a", wantErr: true, want: "sha256 file holds no hash"},
		{name: "only comments", data: "# nothing\n\n", file: "a", wantErr: true, want: "holds no hash"},
		{name: "short hash", data: "abc123  a.tgz\n", file: "a.tgz", wantErr: true, want: `sha256 file line 1 is not a checksum line`},
		{name: "sha512", data: hashA + hashA + "  a.tgz\n", file: "a.tgz", wantErr: true, want: "line 1"},
		{name: "garbage line in a list", data: hashA + "  a.tgz\n<html>\n", file: "a.tgz", wantErr: true, want: `sha256 file line 2 is not a checksum line`},
		{name: "BSD md5", data: "MD5 (a.tgz) = 0123456789abcdef0123456789abcdef\n", file: "a.tgz", wantErr: true, want: "line 1 is not a checksum line"},
		{name: "hash glued to name", data: hashA + "a.tgz\n", file: "a.tgz", wantErr: true, want: "line 1 is not a checksum line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSHA256File([]byte(tt.data), tt.file)
			switch {
			case tt.wantErr && err == nil:
				t.Fatalf("gave %q, want an error containing %q", got, tt.want)
			case tt.wantErr && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("error %q, want one containing %q", err, tt.want)
			case !tt.wantErr && err != nil:
				t.Fatal(err)
			case !tt.wantErr && got != tt.want:
				t.Fatalf("gave %q, want %q", got, tt.want)
			}
		})
	}
}

// TestParseSHA256FileNeverEchoesContent feeds documents a sha256-url could
// name by mistake or malice: no error may quote them.
func TestParseSHA256FileNeverEchoesContent(t *testing.T) {
	tests := []struct {
		name, data, file string
		secrets          []string
		want             string
	}{
		{name: "process environment", data: "HOME=/root\x00API_TOKEN=hunter2\x00", file: "a.tgz",
			secrets: []string{"hunter2", "API_TOKEN", "HOME"}, want: "line 1 is not a checksum line"},
		{name: "shadow", data: "root:$y$j9T$salt$hashedpassword:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n", file: "a.tgz",
			secrets: []string{"root", "hashedpassword", "$y$"}, want: "line 1 is not a checksum line"},
		{name: "secret after a good line", data: hashA + "  a.tgz\npassword=hunter2\n", file: "a.tgz",
			secrets: []string{"hunter2", "password"}, want: "line 2 is not a checksum line"},
		{name: "names of a list without the file", data: hashA + "  secret-name-1\n" + hashB + "  secret-name-2\n", file: "a.tgz",
			secrets: []string{"secret-name", hashA, hashB}, want: `no hash for "a.tgz" (compared whole and by base name with the names on its 2 checksum lines)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSHA256File([]byte(tt.data), tt.file)
			if err == nil {
				t.Fatal("no error")
			}
			for _, s := range tt.secrets {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q quotes the document (%q)", err, s)
				}
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want one containing %q", err, tt.want)
			}
		})
	}
}
