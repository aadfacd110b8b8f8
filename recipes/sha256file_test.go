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
		{name: "hash and another name", data: hashA + "  other.tgz\n", file: "tool.tgz", wantErr: true, want: `no hash for "tool.tgz" (it lists other.tgz)`},
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
		{name: "not found", data: hashA + "  a.tgz\n" + hashB + "  b.tgz\n", file: "c.tgz", wantErr: true, want: `sha256 file has no hash for "c.tgz" (it lists a.tgz, b.tgz)`},
		{name: "not found in a long list", data: strings.Repeat(hashA+"  a.tgz\n", 7), file: "c.tgz", wantErr: true, want: "and 2 more"},
		{name: "empty", data: "", file: "a", wantErr: true, want: "sha256 file holds no hash"},
		{name: "only comments", data: "# nothing\n\n", file: "a", wantErr: true, want: "holds no hash"},
		{name: "short hash", data: "abc123  a.tgz\n", file: "a.tgz", wantErr: true, want: `sha256 file line 1: "abc123  a.tgz" is neither`},
		{name: "sha512", data: hashA + hashA + "  a.tgz\n", file: "a.tgz", wantErr: true, want: "line 1"},
		{name: "garbage line in a list", data: hashA + "  a.tgz\n<html>\n", file: "a.tgz", wantErr: true, want: `sha256 file line 2: "<html>" is neither`},
		{name: "BSD md5", data: "MD5 (a.tgz) = 0123456789abcdef0123456789abcdef\n", file: "a.tgz", wantErr: true, want: "is neither"},
		{name: "hash glued to name", data: hashA + "a.tgz\n", file: "a.tgz", wantErr: true, want: "is neither"},
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
