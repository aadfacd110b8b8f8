package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/sysext-bakery/bakery/merge"
	"github.com/sysext-bakery/bakery/sysext"
)

var rootFlag = &cli.StringFlag{Name: "root", Value: "/", Usage: "operate on the root file system at `DIR`"}

var requireSignatureFlag = &cli.BoolFlag{Name: "require-signature", Usage: "merge only images whose digest sync or pull verified, or DDIs signed by a certificate in /etc/verity.d or sync.yaml's certificates (also set by policy.require-signature in sync.yaml)"}

var classFlag = &cli.StringFlag{Name: "class", Value: sysext.Sysext.Name, Usage: "the image `CLASS`: sysext (/usr, /opt) or confext (/etc)"}

var noReloadFlag = &cli.BoolFlag{Name: "no-reload", Usage: "do not reload the service manager, even when an extension asks for it (EXTENSION_RELOAD_MANAGER=1); never reloaded with a --root other than /"}

// imageClass is the class --class names; a bad one is a usage error.
func imageClass(cmd *cli.Command) (sysext.Class, error) {
	c, err := sysext.ClassByName(cmd.String("class"))
	if err != nil {
		return sysext.Class{}, usagef("--class: %v", err)
	}
	return c, nil
}

// mergeOptions are the options of merge, refresh and unmerge: the root,
// the class, and systemd's reloader unless --no-reload.
func mergeOptions(cmd *cli.Command) (merge.Options, error) {
	c, err := imageClass(cmd)
	if err != nil {
		return merge.Options{}, err
	}
	opts := merge.Options{Root: cmd.String("root"), Class: c}
	if !cmd.Bool("no-reload") {
		opts.Reloader = merge.SystemdReloader{}
	}
	return opts, nil
}

// merge, unmerge, refresh, status and list are systemd-sysext's (and
// systemd-confext's) verbs.

func mergeCommand() *cli.Command {
	return mergeVerb("merge", "merge the installed extensions into /usr and /opt (--class confext: /etc)", merge.Merge)
}

func refreshCommand() *cli.Command {
	return mergeVerb("refresh", "replace the merge with the installed extensions, atomically", merge.Refresh)
}

func unmergeCommand() *cli.Command {
	return &cli.Command{
		Name:  "unmerge",
		Usage: "unmount the merged /usr and /opt (--class confext: /etc), only merges made by bakery or systemd",
		Description: `Reloads the service manager afterwards when a merged extension asked for
it (EXTENSION_RELOAD_MANAGER=1), unless --no-reload or --root is not /.

Examples:
  bakery unmerge
  bakery unmerge --class confext
  bakery unmerge --root /mnt/node --json`,
		Flags: []cli.Flag{rootFlag, classFlag, noReloadFlag, jsonFlag},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.NArg() != 0 {
				return usagef("unmerge takes no arguments")
			}
			opts, err := mergeOptions(cmd)
			if err != nil {
				return err
			}
			res, err := merge.Unmerge(opts)
			if res != nil && cmd.Bool("json") {
				if perr := printJSON(os.Stdout, res); err == nil {
					err = perr
				}
			} else if res != nil {
				for _, h := range res.Unmerged {
					stderrf("Unmerged %s.\n", h)
				}
				if res.Reloaded {
					stderrf("Reloaded the service manager.\n")
				}
			}
			return err
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
  bakery status --class confext
  bakery status --root /mnt/node --json`,
		Flags: []cli.Flag{rootFlag, classFlag, jsonFlag},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.NArg() != 0 {
				return usagef("status takes no arguments")
			}
			c, err := imageClass(cmd)
			if err != nil {
				return err
			}
			st, err := merge.Status(cmd.String("root"), c)
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
  bakery list --class confext
  bakery list --root /mnt/node --json`,
		Flags: []cli.Flag{rootFlag, classFlag, jsonFlag},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.NArg() != 0 {
				return usagef("list takes no arguments")
			}
			c, err := imageClass(cmd)
			if err != nil {
				return err
			}
			list, err := merge.List(cmd.String("root"), c)
			if err != nil || cmd.Bool("json") {
				return jsonOr(list, err)
			}
			if len(list) == 0 {
				stderrf("No %ss found.\n", c.Noun)
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

// searchDirs spells where images of each class are looked for, for help
// texts: "/etc/extensions, /run/extensions and /var/lib/extensions (sysext)".
func searchDirs() string {
	var out []string
	for _, c := range sysext.Classes() {
		dirs := make([]string, len(c.SearchDirs))
		for i, d := range c.SearchDirs {
			dirs[i] = filepath.Join("/", d)
		}
		out = append(out, fmt.Sprintf("%s and %s (%s)", strings.Join(dirs[:len(dirs)-1], ", "), dirs[len(dirs)-1], c.Name))
	}
	return strings.Join(out, "; ")
}

// mergeVerb is merge or refresh: same flags, same output.
func mergeVerb(name, usage string, run func(merge.Options) (*merge.Result, error)) *cli.Command {
	return &cli.Command{
		Name:  name,
		Usage: usage,
		Description: `Follows systemd-sysext and systemd-confext: images in ` + searchDirs() + `
(first name wins, an empty directory masks), checked against the host's
os-release; incompatible or unverified images are reported and skipped.
The service manager is reloaded afterwards when an extension merged, or
one taken away, asks for it (EXTENSION_RELOAD_MANAGER=1), unless
--no-reload or --root is not /.

A DDI (bake --format ddi) is verified before it is mounted: its root
partition for this host's architecture must match its dm-verity hash tree
(checked here, the kernel need not have dm-verity), and its signature is
checked against the *.crt files in ROOT/etc/verity.d (and systemd's other
verity.d directories) and sync.yaml's certificates; only the verified
blocks are mounted.

Up to 498 extensions with content in a hierarchy merge over a host's own
(overlayfs stacks 500 layers, the marker and the host's among them);
beyond, nothing changes and the error says so.

Examples:
  bakery ` + name + `
  bakery ` + name + ` --class confext
  bakery ` + name + ` --root /mnt/node --require-signature --json`,
		Flags: []cli.Flag{rootFlag, classFlag, requireSignatureFlag,
			&cli.StringFlag{Name: "config", Usage: "take the policy from this sync configuration `FILE` (default: ROOT/etc/bakery/sync.yaml, when it exists)"},
			noReloadFlag, jsonFlag},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.NArg() != 0 {
				return usagef("%s takes no arguments", name)
			}
			opts, err := mergeOptions(cmd)
			if err != nil {
				return err
			}
			opts.RequireSignature = cmd.Bool("require-signature")
			if p := cmd.String("config"); p != "" {
				cfg, err := merge.LoadConfig(p)
				if err != nil {
					return err
				}
				opts.Config = cfg
			}
			res, err := run(opts)
			if res != nil {
				if perr := printMergeResult(res, cmd.Bool("json")); err == nil {
					err = perr
				}
			}
			if err != nil {
				return err
			}
			if res.AllRefused() {
				return fmt.Errorf("%d images found, every one refused (see above)", len(res.Refused))
			}
			return nil
		},
	}
}

// printMergeResult reports a merge: refusals, merged hierarchies and a
// reload.
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
	} else {
		stderrf("Using extensions '%s'.\n", strings.Join(res.Extensions, "', '"))
		for _, h := range slices.Sorted(maps.Keys(res.Hierarchies)) {
			stderrf("Merged into %s: %s\n", h, strings.Join(res.Hierarchies[h], ", "))
		}
	}
	if res.Reloaded {
		stderrf("Reloaded the service manager.\n")
	}
	return nil
}
