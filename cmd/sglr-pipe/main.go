// Command sglr-pipe runs adversarial-robustness experiments declared as YAML
// DAGs of cached stages (see DESIGN.md).
//
// Exit codes: 0 success; 1 a stage failed, replay differed or the store has
// problems; 2 a bad pipeline file or a usage mistake; 130 interrupted.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/sglr-pipe/sglr-pipe/dsl"
	"github.com/sglr-pipe/sglr-pipe/pipeline"

	// Linked for gorgonia's start-up check (see package ops's doc).
	_ "github.com/sglr-pipe/sglr-pipe/nn/ops"
	// Built-in stages register themselves in stages.Builtin.
	_ "github.com/sglr-pipe/sglr-pipe/stages/bestfinal"
	_ "github.com/sglr-pipe/sglr-pipe/stages/calibrate"
	_ "github.com/sglr-pipe/sglr-pipe/stages/eval"
	_ "github.com/sglr-pipe/sglr-pipe/stages/labelstats"
	_ "github.com/sglr-pipe/sglr-pipe/stages/load"
	_ "github.com/sglr-pipe/sglr-pipe/stages/noise"
	_ "github.com/sglr-pipe/sglr-pipe/stages/refine"
	_ "github.com/sglr-pipe/sglr-pipe/stages/report"
	_ "github.com/sglr-pipe/sglr-pipe/stages/train"
)

// version is the tool version; release builds set it with
// -ldflags "-X main.version=v1.2.3".
var version = "dev"

// Exit codes of the command.
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitInterrupted = 130
)

// interruptGrace is how long the first SIGINT or SIGTERM gives a command to
// stop its running stages and return before the process exits anyway. It
// covers an exec: plugin that ignores SIGTERM (killed after exec.KillGrace)
// and the run record written after it.
const interruptGrace = 5 * time.Second

// afterInterrupt runs once the first signal has cancelled a command's
// context: it waits for the command to finish (done closed) and exits the
// process with code 130 on a second signal, or when the command has not
// finished within grace. That is what makes a blocked process still go away
// on the first signal: a stage stuck in a system call (open() of a FIFO, a
// file on a hung network file system) never sees its context. Exiting under
// it leaves the store consistent: every object, action and run record is
// written to a temporary file and renamed into place, so nothing half-written
// ever has a name in it, and what is left in tmp/ is for `cache gc`.
func afterInterrupt(sigs <-chan os.Signal, done <-chan struct{}, stderr io.Writer, grace time.Duration) {
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-sigs:
		fmt.Fprintln(stderr, "sglr-pipe: interrupted again: exiting now")
		os.Exit(exitInterrupted)
	case <-timer.C:
		fmt.Fprintf(stderr, "sglr-pipe: still not stopped %s after the signal (a stage is blocked): exiting now\n", grace)
		os.Exit(exitInterrupted)
	case <-done:
	}
}

// storeEnv names the environment variable that overrides the default store.
const storeEnv = "SGLR_STORE"

func main() {
	pipeline.ToolVersion = "sglr-pipe " + version
	os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr))
}

// execute runs the command line args and returns the process exit code. It
// prints every error itself, so main only exits.
func execute(args []string, stdout, stderr io.Writer) int {
	root := newRootCommand(stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	return report(err, stderr)
}

// globalFlags are the flags every subcommand accepts.
type globalFlags struct {
	store string
}

// newRootCommand builds the command tree.
func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:   "sglr-pipe",
		Short: "Run adversarial-robustness experiments as cached YAML pipelines",
		Long: `sglr-pipe runs experiments declared as YAML DAGs of stages. Every stage
instance is cached by the content of its inputs and its parameters, so a rerun
only does what changed, and any recorded instance can be replayed bit for bit.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Version:       version,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&g.store, "store", "",
		"store directory (default: $"+storeEnv+" if set, else .sglr beside the pipeline file for run/plan, else the nearest .sglr in the current directory or above it)")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageErrorf(cmd, "%v", err)
	})
	root.AddCommand(
		newVersionCommand(),
		newRunCommand(g),
		newPlanCommand(g),
		newGraphCommand(g),
		newStagesCommand(),
		newShowCommand(g),
		newRunsCommand(g),
		newDiffCommand(g),
		newExportCommand(g),
		newCacheCommand(g),
		newReplayCommand(g),
		newServeCommand(),
		newWorkerCommand(),
	)
	for _, c := range allCommands(root) {
		// An error a command returns without classifying it is a failure (1);
		// diagnostics and usage errors keep their own code in report.
		if c.RunE != nil {
			runE := c.RunE
			c.RunE = func(cmd *cobra.Command, args []string) error {
				err := runE(cmd, args)
				var diags dsl.Diagnostics
				var usage *usageError
				var exit *exitError
				if err == nil || errors.As(err, &diags) || errors.As(err, &usage) || errors.As(err, &exit) {
					return err
				}
				return failed(err)
			}
		}
		// Argument-count mistakes are usage errors too.
		if c.Args != nil {
			check := c.Args
			c.Args = func(cmd *cobra.Command, args []string) error {
				if err := check(cmd, args); err != nil {
					return usageErrorf(cmd, "%v", err)
				}
				return nil
			}
		}
	}
	return root
}

// newVersionCommand prints the tool version.
func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the sglr-pipe version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "sglr-pipe %s\n", version)
			return err
		},
	}
}

// exitError carries the exit code an error should produce. Its message is
// printed as "sglr-pipe: <message>" unless it is silent (already reported).
type exitError struct {
	code   int
	err    error
	silent bool
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError is a command-line mistake: exit code 2 and a pointer to --help.
type usageError struct {
	command string
	msg     string
}

func (e *usageError) Error() string { return e.msg }

// usageErrorf builds a usageError for cmd.
func usageErrorf(cmd *cobra.Command, format string, args ...any) error {
	return &usageError{command: cmd.CommandPath(), msg: fmt.Sprintf(format, args...)}
}

// failed wraps err so that it exits with code 1.
func failed(err error) error { return &exitError{code: exitFailed, err: err} }

// silentExit ends the command with code without printing anything more: the
// command already told the user what happened.
func silentExit(code int, err error) error { return &exitError{code: code, err: err, silent: true} }

// report prints err the way its kind asks and returns the exit code.
func report(err error, stderr io.Writer) int {
	var diags dsl.Diagnostics
	if errors.As(err, &diags) {
		fmt.Fprint(stderr, ensureNewline(diags.Error()))
		return exitUsage
	}
	var usage *usageError
	if errors.As(err, &usage) {
		fmt.Fprintf(stderr, "sglr-pipe: %s\nRun '%s --help' for usage.\n", usage.msg, usage.command)
		return exitUsage
	}
	var exit *exitError
	if errors.As(err, &exit) {
		if !exit.silent {
			fmt.Fprintf(stderr, "sglr-pipe: %s\n", exit.err)
		}
		return exit.code
	}
	// Errors cobra returns itself (unknown command, missing subcommand) are
	// usage mistakes; every error of ours is classified above.
	fmt.Fprintf(stderr, "sglr-pipe: %s\nRun 'sglr-pipe --help' for usage.\n", err)
	return exitUsage
}

// ensureNewline makes s end with exactly one trailing newline.
func ensureNewline(s string) string {
	if s == "" || s[len(s)-1] != '\n' {
		return s + "\n"
	}
	return s
}

// allCommands lists c and every command below it.
func allCommands(c *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{c}
	for _, sub := range c.Commands() {
		out = append(out, allCommands(sub)...)
	}
	return out
}

// storeDir picks the store of a command given a pipeline file: --store,
// then $SGLR_STORE, then .sglr beside the file. Commands without a pipeline
// file find theirs with locateStore.
func (g *globalFlags) storeDir(pipelineFile string) string {
	if g.store != "" {
		return g.store
	}
	if env := os.Getenv(storeEnv); env != "" {
		return env
	}
	return filepath.Join(filepath.Dir(pipelineFile), storeName)
}
