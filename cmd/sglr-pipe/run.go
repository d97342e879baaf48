package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/artifacts/natsstore"
	"github.com/sglr-pipe/sglr-pipe/dsl"
	"github.com/sglr-pipe/sglr-pipe/pipeline"
	"github.com/sglr-pipe/sglr-pipe/pipeline/natsexec"
	"github.com/sglr-pipe/sglr-pipe/stages"
)

// selectionFlags are the flags run and plan share: which instances to
// consider and how.
type selectionFlags struct {
	sets     []string
	jobs     int
	force    bool
	only     []string
	from     []string
	failFast bool
	verify   bool
	asJSON   bool

	maxInstances int
}

// register adds the flags to cmd.
func (f *selectionFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.sets, "set", nil, "override a pipeline value, k=v (e.g. vars.epochs=5, seed=3); repeatable")
	fl.IntVarP(&f.jobs, "jobs", "j", 0, "core budget for concurrent stages (default: number of CPUs)")
	fl.BoolVar(&f.force, "force", false, "run every selected instance even if it is cached")
	fl.StringArrayVar(&f.only, "only", nil, "run only this stage; everything it reads must be cached (repeatable)")
	fl.StringArrayVar(&f.from, "from", nil, "force this stage and everything downstream of it (repeatable)")
	fl.BoolVar(&f.failFast, "fail-fast", false, "stop everything at the first failure")
	fl.BoolVar(&f.verify, "verify", false, "re-hash the stored outputs of cache hits")
	fl.BoolVar(&f.asJSON, "json", false, "machine-readable output")
	registerMaxInstances(cmd, &f.maxInstances)
}

// options builds pipeline options from the flags.
func (f *selectionFlags) options(cmd *cobra.Command, store artifacts.Store, targets []string) (pipeline.Options, error) {
	if f.jobs < 0 {
		return pipeline.Options{}, usageErrorf(cmd, "--jobs must be at least 1, got %d", f.jobs)
	}
	return pipeline.Options{
		Store:    store,
		Jobs:     f.jobs,
		Force:    f.force,
		Only:     f.only,
		From:     f.from,
		Targets:  targets,
		FailFast: f.failFast,
		Verify:   f.verify,
	}, nil
}

// Executors that run accepts.
const (
	executorLocal = "local"
	executorNATS  = "nats"
)

// executorFlags choose where run executes stage instances.
type executorFlags struct {
	executor      string
	nats          natsFlags
	requireLabels []string // STAGE=LABEL[,LABEL...]
}

// register adds the flags to cmd.
func (f *executorFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.executor, "executor", executorLocal,
		"where instances run: local (this process) or nats (workers that 'sglr-pipe worker' started)")
	f.nats.register(fl)
	fl.StringArrayVar(&f.requireLabels, "require-label", nil,
		"with --executor nats: run STAGE's instances only on workers with LABEL, as STAGE=LABEL[,LABEL] (repeatable)")
}

// natsJobs is the default --jobs of the nats executor: how many instances
// may wait on the work queue at once (workers budget their own cores).
const natsJobs = 256

// newRunCommand runs a pipeline.
func newRunCommand(g *globalFlags) *cobra.Command {
	f := &selectionFlags{}
	ef := &executorFlags{}
	var outDir, tables string
	cmd := &cobra.Command{
		Use:   "run FILE [TARGET...]",
		Short: "Run a pipeline (or only the TARGET stages and what they need), reusing cached results",
		Long: `run executes every stage instance of the pipeline that is not already cached,
concurrently within the --jobs core budget. TARGETs are stage ids: only they and
what they read are run. The store defaults to .sglr/ beside the pipeline file.

With --executor nats the instances run on workers ('sglr-pipe worker') that
share a NATS JetStream server with this coordinator: the action cache and the
artifacts live in JetStream, the store directory mirrors what is fetched and
keeps the run records. --jobs then bounds how many instances wait on the work
queue at once (default 256).

Exit status: 0 when every instance ran or was cached, 1 when a stage failed,
2 for a bad pipeline or command line, 130 when interrupted.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkTablesFlag(cmd, tables); err != nil {
				return err
			}
			return runPipeline(cmd, g, f, ef, runOutput{dir: outDir, tables: tables}, args[0], args[1:])
		},
	}
	f.register(cmd)
	ef.register(cmd)
	cmd.Flags().StringVar(&outDir, "out", defaultOutDir,
		"write the files of report outputs to DIR/<pipeline name>/<run id>/<instance>/, and point DIR/<pipeline name>/latest at it (\"\" to skip)")
	cmd.Flags().StringVar(&tables, "tables", tablesChanged,
		"which leaf tables to print: changed (not the ones this pipeline's last printed run showed with the same digest), always or never")
	return cmd
}

// runOutput is what run does with its results besides recording them.
type runOutput struct {
	dir    string // --out: where report files go ("" for nowhere)
	tables string // --tables: which leaf tables to print
}

// runPipeline is the body of `run`.
func runPipeline(cmd *cobra.Command, g *globalFlags, f *selectionFlags, ef *executorFlags, ro runOutput, file string, targets []string) error {
	p, err := loadPipeline(file, f.sets, f.maxInstances)
	if err != nil {
		return err
	}
	labels, err := ef.check(cmd, p)
	if err != nil {
		return err
	}
	mirror, err := artifacts.OpenDir(g.storeDir(file))
	if err != nil {
		return err
	}
	if err := checkSelection(cmd, p, f, targets); err != nil {
		return err
	}
	var store artifacts.Store = mirror
	opts, err := f.options(cmd, store, targets)
	if err != nil {
		return err
	}
	opts.Args = os.Args[1:]
	opts.WillRead = readAfterRun

	ctx, stop := interruptContext(cmd.Context(), cmd.ErrOrStderr())
	defer stop()

	if ef.executor == executorNATS {
		nc, js, err := ef.nats.connect(cmd, "sglr-pipe run "+filepath.Base(file), newLogger(cmd.ErrOrStderr(), "sglr-pipe"))
		if err != nil {
			return err
		}
		defer nc.Close()
		shared, err := natsstore.Open(ctx, js, mirror, natsstore.Config{})
		if err != nil {
			return failed(err)
		}
		exec, err := natsexec.NewExecutor(ctx, nc, natsexec.ExecutorConfig{
			Labels:   func(instance string) []string { return labels[instanceDecl(p, instance)] },
			ExecBase: filepath.Dir(file),
		})
		if err != nil {
			return failed(err)
		}
		defer exec.Close()
		store, opts.Store, opts.Executor = shared, shared, exec
		if f.jobs == 0 {
			opts.Jobs = natsJobs
		}
	}

	out := cmd.OutOrStdout()
	disp := newDisplay(out, f.asJSON, isTerminal(out))
	opts.Events = disp.Event
	started := time.Now()
	run, runErr := p.Run(ctx, opts)
	disp.Close()
	elapsed := time.Since(started)

	if runErr != nil && run == nil {
		if ctx.Err() != nil {
			return &exitError{code: exitInterrupted, err: fmt.Errorf("interrupted: %w", runErr)}
		}
		return failed(runErr)
	}
	summary := summarise(run, elapsed)
	summary.Warnings = stageWarnings(store, run)
	if f.asJSON {
		if err := writeSummaryJSON(out, summary); err != nil {
			return err
		}
	} else {
		printSummary(out, summary, mirror.Root())
		printLeafTables(out, p, run, store, leafOptions{mode: ro.tables, width: terminalWidth(out), shown: mirror})
	}
	written, outErr := writeOutFiles(ro.dir, p, run, store)
	if !f.asJSON {
		printOutFiles(out, written)
	}
	if written.Warning != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "sglr-pipe: warning: %v\n", written.Warning)
	}
	if outErr != nil && runErr == nil && ctx.Err() == nil {
		return failed(outErr)
	} else if outErr != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "sglr-pipe: %v\n", outErr)
	}
	switch {
	case ctx.Err() != nil || (run != nil && run.Status == "cancelled"):
		return silentExit(exitInterrupted, errors.New("interrupted"))
	case runErr != nil:
		return failed(runErr)
	}
	return nil
}

// check validates the executor flags against the pipeline and returns the
// labels each declaration's instances require.
func (f *executorFlags) check(cmd *cobra.Command, p *pipeline.Pipeline) (map[string][]string, error) {
	switch f.executor {
	case executorLocal:
		if len(f.requireLabels) > 0 {
			return nil, usageErrorf(cmd, "--require-label needs --executor nats")
		}
		if f.nats.url != "" {
			return nil, usageErrorf(cmd, "--nats needs --executor nats")
		}
		return nil, nil
	case executorNATS:
	default:
		return nil, usageErrorf(cmd, "--executor %q: want local or nats", f.executor)
	}
	declared := map[string]bool{}
	for _, id := range p.DeclIDs() {
		declared[id] = true
	}
	labels := map[string][]string{}
	for _, req := range f.requireLabels {
		decl, list, ok := strings.Cut(req, "=")
		if !ok || decl == "" || list == "" {
			return nil, usageErrorf(cmd, "--require-label %q: want STAGE=LABEL[,LABEL] (e.g. train=gpu)", req)
		}
		if !declared[decl] {
			return nil, usageErrorf(cmd, "--require-label %q: no stage %q in %s (stages: %s)", req, decl, p.File, strings.Join(p.DeclIDs(), ", "))
		}
		checked, err := natsexec.CheckLabels(append(labels[decl], strings.Split(list, ",")...))
		if err != nil {
			return nil, usageErrorf(cmd, "--require-label %q: %v", req, err)
		}
		labels[decl] = checked
	}
	return labels, nil
}

// instanceDecl returns the declaration an instance was expanded from.
func instanceDecl(p *pipeline.Pipeline, instance string) string {
	if n, ok := p.Node(instance); ok {
		return n.Decl()
	}
	return ""
}

// registerMaxInstances adds --max-instances, the cap on what a pipeline's
// matrix may expand to, to the flags of run, plan and graph.
func registerMaxInstances(cmd *cobra.Command, max *int) {
	cmd.Flags().IntVar(max, "max-instances", dsl.DefaultMaxInstances,
		"refuse a pipeline whose matrix makes more stage instances (or combinations) than this")
}

// loadPipeline loads a pipeline file with the CLI's resolver: built-ins plus
// exec: stages relative to the file's directory. maxInstances is the
// --max-instances cap on its expansion.
func loadPipeline(file string, sets []string, maxInstances int) (*pipeline.Pipeline, error) {
	if maxInstances < 1 {
		return nil, &usageError{command: "sglr-pipe", msg: fmt.Sprintf("--max-instances must be at least 1, got %d", maxInstances)}
	}
	info, err := os.Stat(file)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, &usageError{command: "sglr-pipe", msg: fmt.Sprintf("pipeline file %s does not exist", file)}
		}
		return nil, fmt.Errorf("pipeline %s: %w", file, err)
	}
	if info.IsDir() {
		return nil, &usageError{command: "sglr-pipe", msg: fmt.Sprintf("%s is a directory, not a pipeline file", file)}
	}
	return pipeline.LoadWith(file, sets, newResolver(filepath.Dir(file)), pipeline.LoadOptions{MaxInstances: maxInstances})
}

// checkSelection rejects stage ids in targets, --only and --from that the
// pipeline does not declare: a usage mistake, reported before anything runs.
func checkSelection(cmd *cobra.Command, p *pipeline.Pipeline, f *selectionFlags, targets []string) error {
	if len(f.only) > 0 && len(targets) > 0 {
		return usageErrorf(cmd, "--only and targets cannot be combined: --only already names what runs")
	}
	declared := map[string]bool{}
	for _, id := range p.DeclIDs() {
		declared[id] = true
	}
	for _, sel := range []struct {
		what string
		ids  []string
	}{{"target", targets}, {"--only", f.only}, {"--from", f.from}} {
		for _, id := range sel.ids {
			if !declared[id] {
				return usageErrorf(cmd, "%s %q: no such stage in %s (stages: %s)", sel.what, id, p.File, strings.Join(p.DeclIDs(), ", "))
			}
		}
	}
	return nil
}

// runSummary is the outcome of a run in numbers, for people and for --json.
type runSummary struct {
	Kind      string        `json:"kind"` // always "summary", to tell it from events
	RunID     string        `json:"run_id"`
	Status    string        `json:"status"`
	Ran       int           `json:"ran"`
	Cached    int           `json:"cached"`
	Failed    int           `json:"failed"`
	Skipped   int           `json:"skipped"`
	Cancelled int           `json:"cancelled"`
	Seconds   float64       `json:"seconds"`
	Failures  []runFailure  `json:"failures,omitempty"`
	Warnings  []runWarning  `json:"warnings,omitempty"`
	Instances []instanceOut `json:"instances"`
}

// runWarning is one warning a stage reported (stages.SummaryWarnings), e.g.
// eval's sanity checks; printed for instances that ran and that were cached.
type runWarning struct {
	Instance string `json:"instance"`
	Warning  string `json:"warning"`
}

// stageWarnings collects the warnings in the actions of the run's instances.
func stageWarnings(store artifacts.Store, run *artifacts.Run) []runWarning {
	if run == nil {
		return nil
	}
	var out []runWarning
	for _, in := range run.Instances {
		if in.Key == "" || (in.Status != "ran" && in.Status != "cached") {
			continue
		}
		a, err := store.GetAction(in.Key)
		if err != nil {
			continue
		}
		list, _ := a.Summary[stages.SummaryWarnings].([]any)
		for _, w := range list {
			if s, ok := w.(string); ok {
				out = append(out, runWarning{Instance: in.ID, Warning: s})
			}
		}
	}
	return out
}

// runFailure is one failed instance and its error.
type runFailure struct {
	Instance string `json:"instance"`
	Error    string `json:"error"`
}

// instanceOut is one instance's status and outputs in the summary.
type instanceOut struct {
	ID      string                      `json:"id"`
	Status  string                      `json:"status"`
	Outputs map[string]artifacts.Digest `json:"outputs,omitempty"`
}

// summarise counts what happened to each instance.
func summarise(run *artifacts.Run, elapsed time.Duration) runSummary {
	s := runSummary{Kind: "summary", Seconds: elapsed.Seconds(), Instances: []instanceOut{}}
	if run == nil {
		return s
	}
	s.RunID, s.Status = run.ID, run.Status
	for _, in := range run.Instances {
		switch in.Status {
		case "ran":
			s.Ran++
		case "cached":
			s.Cached++
		case "failed":
			s.Failed++
			s.Failures = append(s.Failures, runFailure{Instance: in.ID, Error: in.Error})
		case "skipped":
			s.Skipped++
		case "cancelled":
			s.Cancelled++
		}
		s.Instances = append(s.Instances, instanceOut{ID: in.ID, Status: in.Status, Outputs: in.Outputs})
	}
	return s
}

// writeSummaryJSON ends the --json event stream with the summary on one line.
func writeSummaryJSON(w io.Writer, s runSummary) error {
	return writeJSONLine(w, s)
}

// printSummary writes the human summary: counts, run id, time, failures.
func printSummary(w io.Writer, s runSummary, storeRoot string) {
	fmt.Fprintf(w, "\n%d ran, %d cached, %d failed", s.Ran, s.Cached, s.Failed)
	if s.Skipped > 0 {
		fmt.Fprintf(w, ", %d skipped", s.Skipped)
	}
	if s.Cancelled > 0 {
		fmt.Fprintf(w, ", %d cancelled", s.Cancelled)
	}
	fmt.Fprintf(w, " in %s", formatSeconds(s.Seconds))
	if s.RunID != "" {
		fmt.Fprintf(w, " (run %s, store %s)", s.RunID, storeRoot)
	}
	fmt.Fprintln(w)
	for _, f := range s.Failures {
		fmt.Fprintf(w, "FAILED %s: %s\n", f.Instance, f.Error)
	}
	for _, warn := range s.Warnings {
		fmt.Fprintf(w, "WARNING %s: %s\n", warn.Instance, warn.Warning)
	}
}

// interruptContext cancels the returned context on the first SIGINT or
// SIGTERM, so running stages stop and finished ones stay cached; a second
// signal, or interruptGrace without the command returning, exits at once.
func interruptContext(parent context.Context, stderr io.Writer) (context.Context, func()) {
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithCancel(parent)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-sigs:
			fmt.Fprintf(stderr, "\nsglr-pipe: %s: stopping running stages (press Ctrl-C again to exit now; exiting anyway in %s)\n", sig, interruptGrace)
			cancel()
		case <-done:
			return
		}
		afterInterrupt(sigs, done, stderr, interruptGrace)
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel()
	}
}

// isTerminal reports whether w is a terminal (so bars can be drawn on it).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
