package hostile

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Seed is one entry of a fuzz target's seed corpus: the name of its file
// and the values of the target's arguments.
type Seed struct {
	Name   string
	Values []any
}

// Seeds builds the images and makes each the seed prefix-NAME of a fuzz
// target whose arguments are the image followed by extra.
func Seeds(prefix string, images []Image, extra ...any) ([]Seed, error) {
	var seeds []Seed
	for _, im := range images {
		b, err := im.Build()
		if err != nil {
			return nil, fmt.Errorf("%s-%s: %w", prefix, im.Name, err)
		}
		seeds = append(seeds, Seed{Name: prefix + "-" + im.Name, Values: append([]any{b}, extra...)})
	}
	return seeds, nil
}

// writeSeedsEnv makes CheckCorpus write the seed files instead of checking
// them.
const writeSeedsEnv = "BAKERY_WRITE_SEEDS"

// CheckCorpus checks that the seed corpus of the fuzz target,
// testdata/fuzz/<target> of the test's package, holds each seed as Go's
// fuzzer encodes it, so that the checked-in files are the images the code
// builds. With BAKERY_WRITE_SEEDS=1 in the environment it writes them.
func CheckCorpus(t *testing.T, target string, seeds []Seed) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", target)
	for _, s := range seeds {
		want, err := encodeSeed(s.Values)
		if err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		p := filepath.Join(dir, s.Name)
		got, err := os.ReadFile(p)
		if err == nil && bytes.Equal(got, want) {
			continue
		}
		if os.Getenv(writeSeedsEnv) == "" {
			t.Errorf("%s is missing or differs from the image the code builds (%v): write it with %s=1 go test -run '^%s$'", p, err, writeSeedsEnv, t.Name())
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// encodeSeed encodes values as Go's fuzzer writes a corpus file
// (internal/fuzz's marshalCorpusFile), for the types the targets take.
func encodeSeed(values []any) ([]byte, error) {
	b := []byte("go test fuzz v1\n")
	for _, v := range values {
		switch v := v.(type) {
		case []byte:
			b = fmt.Appendf(b, "[]byte(%q)\n", v)
		case int:
			b = fmt.Appendf(b, "int(%v)\n", v)
		case byte:
			b = fmt.Appendf(b, "byte(%q)\n", v)
		default:
			return nil, fmt.Errorf("seed value of type %T", v)
		}
	}
	return b, nil
}
