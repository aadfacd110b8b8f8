// Command bakery bakes, publishes, pulls and merges systemd system extensions.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v3"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newApp().Run(ctx, os.Args)
	stop()
	os.Exit(exitCode(err))
}

// newApp is the command tree; each command lives in its own file.
func newApp() *cli.Command {
	return markUsageErrors(&cli.Command{
		Name:  "bakery",
		Usage: "bake, sign, publish, pull and merge systemd system extensions",
		Description: `bakery turns a declarative recipe into reproducible sysext images
(NAME-VERSION-ARCH.raw), publishes them to OCI registries as signed
multi-arch indexes, and merges them on the node with systemd-sysext's rules.

Examples:
  bakery bake testdata/hello --out out/
  bakery image inspect out/hello-1.0.0-x86-64.raw --json
  bakery demo`,
		EnableShellCompletion: true,
		Commands: []*cli.Command{
			bakeCommand(),
			planCommand(),
			recipesCommand(),
			imageCommand(),
			demoCommand(),
			mergeCommand(),
			unmergeCommand(),
			refreshCommand(),
			statusCommand(),
			listCommand(),
			syncCommand(),
			keygenCommand(),
			pushCommand(),
			pullCommand(),
			verifyCommand(),
			catalogCommand(),
			registryCommand(),
			releaseCommand(),
			butaneCommand(),
		},
		ExitErrHandler: func(context.Context, *cli.Command, error) {}, // main reports errors
	})
}

// usageError marks a mistake in how bakery was called (exit code 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// usagef returns a usage error (exit code 2).
func usagef(format string, args ...any) error {
	return usageError{fmt.Sprintf(format, args...)}
}

// exitCode prints err and maps it to the contract's exit codes:
// 0 ok, 1 failure, 2 usage.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	fmt.Fprintln(os.Stderr, "bakery:", err)
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}
