// Command gentree writes a deterministic tree of files for benchmarks: a mix
// of incompressible and text-like content in nested directories, of a given
// total size or of a given number of small files.
//
//	go run ./bench/gentree -size 1G DIR
//	go run ./bench/gentree -files 500000 DIR
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

func main() {
	size := flag.String("size", "1G", "total bytes of file content (suffix K, M or G)")
	files := flag.Int("files", 0, "when not 0, write this many small files (64 B to 8 KiB) instead of -size bytes")
	seed := flag.Uint64("seed", 1, "random seed; the same seed gives the same tree")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: gentree [-size 1G | -files N] [-seed N] DIR")
		os.Exit(2)
	}
	total, err := parseSize(*size)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gentree:", err)
		os.Exit(2)
	}
	rng := rand.New(rand.NewPCG(*seed, *seed))
	if *files > 0 {
		err = generateFiles(flag.Arg(0), *files, rng)
	} else {
		err = generate(flag.Arg(0), total, rng)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gentree:", err)
		os.Exit(1)
	}
}

// parseSize reads 123, 4K, 5M or 1G.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult = 1 << 10
	case strings.HasSuffix(s, "M"):
		mult = 1 << 20
	case strings.HasSuffix(s, "G"):
		mult = 1 << 30
	}
	n, err := strconv.ParseInt(strings.TrimRight(s, "KMG"), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("size %q: want a number with an optional K, M or G", s)
	}
	return n * mult, nil
}

// words make the text-like files compress like source code or docs.
var words = strings.Fields("the of and to in is for on that with as by this be are from at or an it not which have " +
	"func return if else package import type struct interface map string int error nil true false var const range " +
	"kubelet containerd systemd sysext overlay squashfs erofs image layer digest manifest index registry node")

// generate writes files of 1 KiB to 8 MiB until total bytes are written:
// a third random bytes (compressed binaries), the rest text.
func generate(dir string, total int64, rng *rand.Rand) error {
	var written int64
	for i := 0; written < total; i++ {
		d := filepath.Join(dir, fmt.Sprintf("d%02d", i%37), fmt.Sprintf("s%03d", i%211))
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		size := int64(1024) << rng.IntN(14) // 1 KiB … 8 MiB
		size += rng.Int64N(size)
		if size > total-written {
			size = total - written
		}
		if err := writeFile(filepath.Join(d, fmt.Sprintf("f%06d", i)), size, i%3 == 0, rng); err != nil {
			return err
		}
		written += size
	}
	return nil
}

// generateFiles writes n files of 64 B to 8 KiB, a third random bytes, the
// rest text, in directories of about 64 files: a tree whose cost is in its
// file count, not its bytes.
func generateFiles(dir string, n int, rng *rand.Rand) error {
	dirs := max(1, n/64)
	for i := range n {
		d := filepath.Join(dir, fmt.Sprintf("d%03d", i%dirs%997), fmt.Sprintf("s%05d", i%dirs))
		if i < dirs {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		size := int64(64) << rng.IntN(7) // 64 B … 4 KiB
		size += rng.Int64N(size)
		if err := writeFile(filepath.Join(d, fmt.Sprintf("f%07d", i)), size, i%3 == 0, rng); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(p string, size int64, random bool, rng *rand.Rand) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, int(min(max(size, 4096), 1<<20)))
	var buf [8]byte
	for n := int64(0); n < size; {
		var chunk []byte
		if random {
			v := rng.Uint64()
			for j := range buf {
				buf[j] = byte(v >> (8 * j))
			}
			chunk = buf[:]
		} else {
			chunk = []byte(words[rng.IntN(len(words))] + " ")
			if rng.IntN(12) == 0 {
				chunk = append(chunk, '\n')
			}
		}
		if int64(len(chunk)) > size-n {
			chunk = chunk[:size-n]
		}
		w.Write(chunk)
		n += int64(len(chunk))
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
