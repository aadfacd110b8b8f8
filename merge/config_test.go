package merge

import (
	"strings"
	"testing"

	"github.com/sysext-bakery/bakery/sysext"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name, yaml, wantErr string
		wantRef, wantClass  string
	}{
		{name: "by tag", yaml: "registry: r.example/ns\nkeys: [/k.pub]\nextensions:\n  - name: app\n    tag: v1\n", wantRef: "r.example/ns/app:v1"},
		{name: "by digest", yaml: "registry: r.example/ns/\nextensions:\n  - name: app\n    digest: " + digestA + "\n", wantRef: "r.example/ns/app@" + digestA},
		{name: "latest by default", yaml: "registry: r\nextensions: [{name: app}]\n", wantRef: "r/app:latest"},
		{name: "unknown key", yaml: "registy: r\n", wantErr: "registy"},
		{name: "tag and digest", yaml: "registry: r\nextensions: [{name: a, tag: x, digest: " + digestA + "}]\n", wantErr: "not both"},
		{name: "bad digest", yaml: "registry: r\nextensions: [{name: a, digest: md5:1}]\n", wantErr: "sha256:<64"},
		{name: "short digest", yaml: "registry: r\nextensions: [{name: a, digest: sha256:ab}]\n", wantErr: "sha256:<64"},
		{name: "bad tag", yaml: "registry: r\nextensions: [{name: a, tag: -x}]\n", wantErr: "not a valid OCI tag"},
		{name: "name recipes refuse", yaml: "registry: r\nextensions: [{name: Kube_Tools}]\n", wantErr: "not an extension name"},
		{name: "name too long", yaml: "registry: r\nextensions: [{name: " + strings.Repeat("a", 65) + "}]\n", wantErr: "longer than 64"},
		{name: "relative key", yaml: "registry: r\nkeys: [release.pub]\nextensions: [{name: a}]\n", wantErr: `keys[0] "release.pub": give an absolute path`},
		{name: "catalog policy without keys", yaml: "policy: {require-catalog: true}\n", wantErr: "trusted key"},
		{name: "twice", yaml: "registry: r\nextensions: [{name: a}, {name: a}]\n", wantErr: "listed twice"},
		{name: "bad name", yaml: "registry: r\nextensions: [{name: ../a}]\n", wantErr: "invalid name"},
		{name: "catalog is reserved", yaml: "registry: r\nextensions: [{name: catalog}]\n", wantErr: "taken by the published catalog"},
		{name: "no registry", yaml: "extensions: [{name: a}]\n", wantErr: "registry is not set"},
		{name: "policy without keys", yaml: "policy: {require-signature: true}\n", wantErr: "trusted key"},
		{name: "confext", yaml: "registry: r\nextensions: [{name: a, class: confext}]\n", wantRef: "r/a:latest", wantClass: "confext"},
		{name: "sysext said", yaml: "registry: r\nextensions: [{name: a, class: sysext}]\n", wantRef: "r/a:latest", wantClass: "sysext"},
		{name: "sysext by default", yaml: "registry: r\nextensions: [{name: a}]\n", wantRef: "r/a:latest", wantClass: "sysext"},
		{name: "unknown class", yaml: "registry: r\nextensions: [{name: a, class: portable}]\n", wantErr: `extension a: class: unknown image class "portable": use sysext or confext`},
		{name: "empty", yaml: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tt.yaml), "sync.yaml")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantRef != "" {
				if got := c.Ref(c.Extensions[0]); got != tt.wantRef {
					t.Errorf("ref = %q, want %q", got, tt.wantRef)
				}
			}
			if tt.wantClass != "" {
				if got := c.Extensions[0].class().Name; got != tt.wantClass {
					t.Errorf("class = %q, want %q", got, tt.wantClass)
				}
			}
		})
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("registry: r\nkeys: [/k]\npolicy: {require-signature: true}\nextensions: [{name: a, tag: v1}]\n"))
	f.Add([]byte("extensions: [{name: a, digest: sha256:00}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data, "sync.yaml")
		if err != nil {
			return
		}
		for _, e := range c.Extensions {
			if sysext.CheckName(e.Name) != nil || strings.Contains(c.Ref(e), "/../") {
				t.Fatalf("accepted bad extension %q", e.Name)
			}
		}
	})
}

// digestA and digestB are well-formed digests for tests.
var (
	digestA = "sha256:" + strings.Repeat("a", 64)
	digestB = "sha256:" + strings.Repeat("b", 64)
)

func TestParseState(t *testing.T) {
	tests := []struct{ name, json, wantErr string }{
		{"ok", `{"schema":2,"extensions":{"a":{"ref":"r","digest":"` + digestA + `","verification":{"at":"2026-01-01T00:00:00Z"}}}}`, ""},
		{"schema 1", `{"extensions":{"a":{"ref":"r","digest":"` + digestA + `","verified":"2026-01-01T00:00:00Z"}}}`, ""},
		{"pending first install", `{"extensions":{"a":{"ref":"r","digest":"","pending":{"digest":"` + digestB + `"}}}}`, ""},
		{"no digest", `{"extensions":{"a":{"ref":"r"}}}`, "no digest"},
		{"short digest", `{"extensions":{"a":{"digest":"sha256:1"}}}`, "not sha256:HEX"},
		{"bad previous digest", `{"extensions":{"a":{"digest":"` + digestA + `","previous":{"digest":"md5:x"}}}}`, "previous digest"},
		{"null entry", `{"extensions":{"a":null}}`, "null entry"},
		{"confext", `{"extensions":{"a":{"class":"confext","digest":"` + digestA + `"}}}`, ""},
		{"unknown class", `{"extensions":{"a":{"class":"PASSWORD=hunter2","digest":"` + digestA + `"}}}`, "class is not an image class"},
		{"bad name", `{"extensions":{"a/b":{"digest":"` + digestA + `"}}}`, "not an extension name"},
		{"newer schema", `{"schema":3}`, "newer than this bakery"},
		{"garbage", `{`, "truncated"},
		{"trailing data", `{} {}`, "data after the document"},
		{"secret not echoed", `{"extensions":"PASSWORD=hunter2"}`, "wrong type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseState([]byte(tt.json))
			if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error echoes the file's content: %v", err)
			}
		})
	}
}

func FuzzParseState(f *testing.F) {
	f.Add([]byte(`{"extensions":{"a":{"ref":"r","digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","verified":"2026-01-01T00:00:00Z"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := ParseState(data)
		if err != nil {
			return
		}
		for name, in := range st.Extensions {
			if in == nil || sysext.CheckName(name) != nil {
				t.Fatalf("accepted bad entry %q", name)
			}
		}
	})
}
