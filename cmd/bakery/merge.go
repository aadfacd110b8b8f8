package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/sysext-bakery/bakery/merge"
)

var rootFlag = &cli.StringFlag{Name: "root", Value: "/", Usage: "operate on the root file system at `DIR`"}

var requireSignatureFlag = &cli.BoolFlag{Name: "require-signature", Usage: "merge only images whose digest sync or pull verified (also set by policy.require-signature in sync.yaml)"}

// merge, unmerge, refresh, status and list are systemd-sysext's verbs.

func mergeCommand() *cli.Command {
	return mergeVerb("merge", "merge the installed extensions into /usr and /opt", merge.Merge)
}

func refreshCommand() *cli.Command {
	return mergeVerb("refresh", "replace the merge with the installed extensions, atomically", merge.Refresh)
}

func unmergeCommand() *cli.Command {
	return &cli.Command{
		Name:  "unmerge",
		Usage: "unmount the merged /usr and /opt (only merges made by bakery or systemd-sysext)",
		Description: `Examples:
  bakery unmerge
  bakery unmerge --root /mnt/node --json`,
		Flags: []cli.Flag{rootFlag, jsonFlag},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.NArg() != 0 {
				return usagef("unmerge takes no arguments")
			}
			done, err := merge.Unmerge(cmd.String("root"))
			if err != nil {
				return err
			}
			if cmd.Bool("json") {
				return printJSON(os.Stdout, map[string][]string{"unmerged": append([]string{}, done...)})
			}
			for _, h := range done {
				stderrf("Unmerged %s.\n", h)
			}
			return nil
		},
	}
}

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show which extensions are merged into each hierarchy",
		Description: `The columns and --json shape are systemd-sysext's; the table goes to stdout.

Examples:
  bakery status
  bakery status --root /mnt/node --json`,
		Flags: []cli.Flag{rootFlag, jsonFlag},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.NArg() != 0 {
				return usagef("status takes no arguments")
			}
			st, err := merge.Status(cmd.String("root"))
			if err != nil || cmd.Bool("json") {
				return jsonOr(st, err)
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 0, 1, ' ', 0)
			fmt.Fprintln(w, "HIERARCHY\tEXTENSIONS\tSINCE")
			for _, s := range st {
				exts, since := "none", "-"
				if names, ok := s.Extensions.([]string); ok {
					exts = strings.Join(names, " ")
					since = time.UnixMicro(*s.Since).Format("Mon 2006-01-02 15:04:05 MST")
				}
				fmt.Fprintf(w, "%s\t%s\t%s\n", s.Hierarchy, exts, since)
			}
			return w.Flush()
		},
	}
}

func listCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list the installed extension images",
		Description: `The columns and --json shape are systemd-sysext's; the table goes to stdout.

Examples:
  bakery list
  bakery list --root /mnt/node --json`,
		Flags: []cli.Flag{rootFlag, jsonFlag},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.NArg() != 0 {
				return usagef("list takes no arguments")
			}
			list, err := merge.List(cmd.String("root"))
			if err != nil || cmd.Bool("json") {
				return jsonOr(list, err)
			}
			if len(list) == 0 {
				stderrf("No OS extensions found.\n")
				return nil
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 0, 1, ' ', 0)
			fmt.Fprintln(w, "NAME\tTYPE\tPATH\tTIME")
			for _, e := range list {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", e.Name, e.Type, e.Path, time.UnixMicro(e.Time).Format("Mon 2006-01-02 15:04:05 MST"))
			}
			return w.Flush()
		},
	}
}

// jsonOr prints v as JSON unless err is set.
func jsonOr(v any, err error) error {
	if err != nil {
		return err
	}
	return printJSON(os.Stdout, v)
}

// mergeVerb is merge or refresh: same flags, same output.
func mergeVerb(name, usage string, run func(merge.Options) (*merge.Result, error)) *cli.Command {
	return &cli.Command{
		Name:  name,
		Usage: usage,
		Description: `Follows systemd-sysext: images in /etc/extensions, /run/extensions and
/var/lib/extensions (first name wins, an empty directory masks), checked
against the host's os-release; incompatible or unverified images are
reported and skipped.

Examples:
  bakery ` + name + `
  bakery ` + name + ` --root /mnt/node --require-signature --json`,
		Flags: []cli.Flag{rootFlag, requireSignatureFlag,
			&cli.StringFlag{Name: "config", Usage: "take the policy from this sync configuration `FILE` (default: ROOT/etc/bakery/sync.yaml, when it exists)"},
			jsonFlag},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.NArg() != 0 {
				return usagef("%s takes no arguments", name)
			}
			opts := merge.Options{Root: cmd.String("root"), RequireSignature: cmd.Bool("require-signature")}
			if p := cmd.String("config"); p != "" {
				cfg, err := merge.LoadConfig(p)
				if err != nil {
					return err
				}
				opts.Config = cfg
			}
			res, err := run(opts)
			if err != nil {
				return err
			}
			if err := printMergeResult(res, cmd.Bool("json")); err != nil {
				return err
			}
			if res.AllRefused() {
				return fmt.Errorf("%d images found, every one refused (see above)", len(res.Refused))
			}
			return nil
		},
	}
}

// printMergeResult reports a merge: refusals and merged hierarchies.
func printMergeResult(res *merge.Result, asJSON bool) error {
	if asJSON {
		return printJSON(os.Stdout, res)
	}
	for _, w := range res.Warnings {
		stderrf("Warning: %s\n", w)
	}
	for _, r := range res.Refused {
		stderrf("Skipping %s\n", r)
	}
	if len(res.Hierarchies) == 0 {
		stderrf("No extensions merged.\n")
		return nil
	}
	stderrf("Using extensions '%s'.\n", strings.Join(res.Extensions, "', '"))
	for h, names := range res.Hierarchies {
		stderrf("Merged into %s: %s\n", h, strings.Join(names, ", "))
	}
	return nil
}
