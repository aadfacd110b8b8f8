package merge

import (
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name, yaml, wantErr string
		wantRef             string
	}{
		{name: "by tag", yaml: "registry: r.example/ns\nkeys: [/k.pub]\nextensions:\n  - name: app\n    tag: v1\n", wantRef: "r.example/ns/app:v1"},
		{name: "by digest", yaml: "registry: r.example/ns/\nextensions:\n  - name: app\n    digest: sha256:ab\n", wantRef: "r.example/ns/app@sha256:ab"},
		{name: "latest by default", yaml: "registry: r\nextensions: [{name: app}]\n", wantRef: "r/app:latest"},
		{name: "unknown key", yaml: "registy: r\n", wantErr: "registy"},
		{name: "tag and digest", yaml: "registry: r\nextensions: [{name: a, tag: x, digest: sha256:1}]\n", wantErr: "not both"},
		{name: "bad digest", yaml: "registry: r\nextensions: [{name: a, digest: md5:1}]\n", wantErr: "sha256:HEX"},
		{name: "twice", yaml: "registry: r\nextensions: [{name: a}, {name: a}]\n", wantErr: "listed twice"},
		{name: "bad name", yaml: "registry: r\nextensions: [{name: ../a}]\n", wantErr: "invalid name"},
		{name: "no registry", yaml: "extensions: [{name: a}]\n", wantErr: "registry is not set"},
		{name: "policy without keys", yaml: "policy: {require-signature: true}\n", wantErr: "trusted key"},
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
		})
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("registry: r\nkeys: [k]\npolicy: {require-signature: true}\nextensions: [{name: a, tag: v1}]\n"))
	f.Add([]byte("extensions: [{name: a, digest: sha256:00}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data, "sync.yaml")
		if err != nil {
			return
		}
		for _, e := range c.Extensions {
			if checkName(e.Name) != "" || strings.Contains(c.Ref(e), "/../") {
				t.Fatalf("accepted bad extension %q", e.Name)
			}
		}
	})
}

func TestParseState(t *testing.T) {
	tests := []struct{ name, json, wantErr string }{
		{"ok", `{"extensions":{"a":{"ref":"r","digest":"sha256:1","verified":"2026-01-01T00:00:00Z"}}}`, ""},
		{"pending first install", `{"extensions":{"a":{"ref":"r","digest":"","pending":{"digest":"sha256:2"},"verified":"0001-01-01T00:00:00Z"}}}`, ""},
		{"no digest", `{"extensions":{"a":{"ref":"r","verified":"0001-01-01T00:00:00Z"}}}`, "no digest"},
		{"null entry", `{"extensions":{"a":null}}`, "null entry"},
		{"bad name", `{"extensions":{"a/b":{"digest":"sha256:1"}}}`, "contains '/'"},
		{"garbage", `{`, "unexpected end"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseState([]byte(tt.json))
			if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func FuzzParseState(f *testing.F) {
	f.Add([]byte(`{"extensions":{"a":{"ref":"r","digest":"sha256:1","verified":"2026-01-01T00:00:00Z"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := ParseState(data)
		if err != nil {
			return
		}
		for name, in := range st.Extensions {
			if in == nil || checkName(name) != "" {
				t.Fatalf("accepted bad entry %q", name)
			}
		}
	})
}
