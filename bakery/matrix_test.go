package bakery

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/sysext-bakery/bakery/recipes"
	"github.com/sysext-bakery/bakery/sysext/squashfs"
)

func TestMatrix(t *testing.T) {
	plain := writeRecipe(t, "name: plain\nversion: \"1.0\"\narches: [x86-64, arm64]\nsources:\n  - files: files/\n", map[string]string{"files/usr/share/x": "x"})
	bound := writeRecipe(t, `name: kmod
version: "2.0"
arches: [x86-64]
release: {id: "{{.OSID}}", version-id: "{{.OSVersion}}"}
sources:
  - files: files/
`, map[string]string{"files/usr/share/x": "x"})
	unversioned := writeRecipe(t, "name: loose\nsources:\n  - files: files/\n", map[string]string{"files/usr/share/x": "x"})
	releases := []recipes.OS{{ID: "flatcar", Version: "4081.2.0"}, {ID: "flatcar", Version: "4152.2.0"}}
	tests := []struct {
		name     string
		rs       []*recipes.Recipe
		releases []recipes.OS
		want     []string // "name version arch os-version"
		wantErr  string
	}{
		{"every arch of each recipe's version", []*recipes.Recipe{plain}, nil, []string{"plain 1.0 x86-64 ", "plain 1.0 arm64 "}, ""},
		{"kernel-bound recipes over the OS releases", []*recipes.Recipe{plain, bound}, releases,
			[]string{"plain 1.0 x86-64 ", "plain 1.0 arm64 ", "kmod 2.0 x86-64 4081.2.0", "kmod 2.0 x86-64 4152.2.0"}, ""},
		{"a kernel-bound recipe without OS releases", []*recipes.Recipe{bound}, nil, nil, "kmod is kernel-bound"},
		{"a recipe without a version", []*recipes.Recipe{unversioned}, nil, nil, "loose has no version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			builds, err := Matrix(tt.rs, tt.releases)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			var got []string
			for _, b := range builds {
				if b.Recipe.KernelBound() && b.Release.VersionID != b.OS.Version {
					t.Errorf("%s: release version-id %q, want the OS release's", b.Recipe.Name, b.Release.VersionID)
				}
				got = append(got, fmt.Sprintf("%s %s %s %s", b.Recipe.Name, b.Version, b.Arch, b.OS.Version))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("builds %q, want %q", got, tt.want)
			}
		})
	}
}

func TestJobs(t *testing.T) {
	r := helloRecipe(t)
	builds, err := Matrix([]*recipes.Recipe{r}, nil)
	if err != nil {
		t.Fatal(err)
	}
	opts := bakeOptions(t, t.TempDir(), squashfs.Builder{}, squashfsFormat)
	jobs, err := Jobs(context.Background(), builds, func(*recipes.Recipe) Options { return opts })
	if err != nil {
		t.Fatal(err)
	}
	for i, j := range jobs {
		want, err := InputsDigest(context.Background(), builds[i], opts)
		if err != nil {
			t.Fatal(err)
		}
		if j.InputsDigest != want.String() || j.Recipe != r.Path || j.Name != "hello" || j.Arch != builds[i].Arch || j.Skip {
			t.Errorf("job %+v, want hello's %s build with inputs %s", j, builds[i].Arch, want)
		}
	}
}

// TestSkipPublished: a version is skipped only when every arch of it is
// published with the job's inputs digest, as one index holds them all.
func TestSkipPublished(t *testing.T) {
	jobs := func() []Job {
		return []Job{
			{Recipe: "a", Version: "1", Arch: "x86-64", InputsDigest: "a1x"},
			{Recipe: "a", Version: "1", Arch: "arm64", InputsDigest: "a1a"},
			{Recipe: "k", Version: "1", Arch: "x86-64", OS: "flatcar", OSVersion: "1", InputsDigest: "k1"},
			{Recipe: "k", Version: "1", Arch: "x86-64", OS: "flatcar", OSVersion: "2", InputsDigest: "k2"},
		}
	}
	tests := []struct {
		name      string
		published []string
		want      []bool
	}{
		{"nothing published", nil, []bool{false, false, false, false}},
		{"everything published", []string{"a1x", "a1a", "k1", "k2"}, []bool{true, true, true, true}},
		{"one arch of a version changed", []string{"a1x", "k1"}, []bool{false, false, true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			js := jobs()
			SkipPublished(js, func(j Job) bool { return slices.Contains(tt.published, j.InputsDigest) })
			var got []bool
			for _, j := range js {
				got = append(got, j.Skip)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("skip %v, want %v", got, tt.want)
			}
		})
	}
}
