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

// Output convention: a command's report (inspect, status, list, catalog)
// goes to stdout, as a table or, with --json, as one JSON document whose
// keys are lowerCamelCase; progress, notes, warnings and the results of
// commands that act (bake, push, pull, sync, merge) go to stderr, and with
// --json those also print one JSON document on stdout.

// stderrf prints notes and progress; they go to stderr so stdout stays
// clean for reports and --json.
func stderrf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format, args...)
}

// markUsageErrors makes flag parsing errors of cmd and all its
// subcommands, and unknown subcommands, usage errors (exit code 2).
func markUsageErrors(cmd *cli.Command) *cli.Command {
	cmd.OnUsageError = func(_ context.Context, _ *cli.Command, err error, _ bool) error {
		return usageError{err.Error()}
	}
	if len(cmd.Commands) > 0 && cmd.Action == nil {
		cmd.Action = func(ctx context.Context, c *cli.Command) error {
			if c.NArg() > 0 {
				return usagef("unknown command %q (see %s --help)", c.Args().First(), c.FullName())
			}
			return cli.ShowSubcommandHelp(c)
		}
	}
	for _, sub := range cmd.Commands {
		markUsageErrors(sub)
	}
	return cmd
}
