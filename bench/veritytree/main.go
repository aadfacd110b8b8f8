// Command veritytree writes the dm-verity hash device of a file with
// bakery's sysext/verity, as `veritysetup format DATA HASH` does, and
// prints the root hash: the bakery side of the verity benchmark.
//
//	go run ./bench/veritytree DATA HASH
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/sysext-bakery/bakery/sysext/verity"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: veritytree DATA HASH")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "veritytree:", err)
		os.Exit(1)
	}
}

func run(dataPath, hashPath string) error {
	data, err := os.Open(dataPath)
	if err != nil {
		return err
	}
	defer data.Close()
	fi, err := data.Stat()
	if err != nil {
		return err
	}
	hash, err := os.Create(hashPath)
	if err != nil {
		return err
	}
	tree, err := verity.Format(context.Background(), data, fi.Size(), hash, verity.Options{})
	if err != nil {
		hash.Close()
		return err
	}
	if err := hash.Close(); err != nil {
		return err
	}
	fmt.Printf("Root hash: %x\n", tree.RootHash)
	return nil
}
