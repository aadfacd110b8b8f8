package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v3"
)

// jsonFlag is the --json flag every command whose output a script reads has.
var jsonFlag = &cli.BoolFlag{Name: "json", Usage: "print one JSON document on stdout (human output and progress stay on stderr)"}

// printJSON writes v as one indented JSON document to w.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// stderrf prints human-readable output; it goes to stderr so stdout stays
// clean for --json.
func stderrf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format, args...)
}

// markUsageErrors makes flag parsing errors of cmd and all its
// subcommands usage errors (exit code 2).
func markUsageErrors(cmd *cli.Command) *cli.Command {
	cmd.OnUsageError = func(_ context.Context, _ *cli.Command, err error, _ bool) error {
		return usageError{err.Error()}
	}
	for _, sub := range cmd.Commands {
		markUsageErrors(sub)
	}
	return cmd
}
