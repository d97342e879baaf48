package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/pipeline"
)

// defaultRunsShown is how many runs `runs` lists unless -n says otherwise:
// a screenful, as `git log` is read.
const defaultRunsShown = 20

// runStatusInterrupted is how `runs` and `diff` name a run record's
// "cancelled" status: what the user did (Ctrl-C, --fail-fast) rather than
// the scheduler's word for it.
const runStatusInterrupted = "interrupted"

// runListing is one run as `runs` lists it, for people and for --json.
type runListing struct {
	ID        string    `json:"id"`
	Pipeline  string    `json:"pipeline"` // the pipeline's name
	File      string    `json:"file"`     // the pipeline file it ran
	Started   time.Time `json:"started"`
	Seconds   float64   `json:"seconds"`
	Ran       int       `json:"ran"`
	Cached    int       `json:"cached"`
	Failed    int       `json:"failed"`
	Skipped   int       `json:"skipped"`
	Cancelled int       `json:"cancelled"`
	Status    string    `json:"status"` // ok, failed or interrupted
}

// newRunsCommand lists the store's runs, newest first.
func newRunsCommand(g *globalFlags) *cobra.Command {
	var asJSON bool
	var limit int
	var filter runFilter
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "List recorded runs, newest first: id, pipeline, start, duration, counts, status",
		Long: `runs lists the runs recorded in the store, newest first: the run id (what
show, diff and replay take), the pipeline's name, when it started and how long
it took, how many instances ran, were cached or failed, and the run's status:
ok, failed (an instance failed) or interrupted (Ctrl-C or --fail-fast).

The store is the nearest .sglr in the current directory or above it (see
--store). -n limits the list (0 for every run); --pipeline keeps the runs of
one pipeline, by name or by file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 0 {
				return usageErrorf(cmd, "-n must not be negative, got %d", limit)
			}
			store, err := openExistingStore(cmd, g)
			if err != nil {
				return err
			}
			list, err := listRuns(store, filter, limit, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), list)
			}
			printRuns(cmd.OutOrStdout(), list)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the runs as a JSON array")
	cmd.Flags().IntVarP(&limit, "limit", "n", defaultRunsShown, "list at most this many runs (0: all)")
	cmd.Flags().StringVar(&filter.pipeline, "pipeline", "", "list only the runs of this pipeline (its name or its file)")
	return cmd
}

// listRuns collects up to limit runs (all when limit is 0) that the filter
// takes, newest first. A record that cannot be read is named on warn and
// passed over, so that one bad file does not hide the others.
func listRuns(store *artifacts.DirStore, filter runFilter, limit int, warn io.Writer) ([]runListing, error) {
	runs, err := store.RunsNewestFirst()
	if err != nil {
		return nil, err
	}
	list := []runListing{}
	for e := range runs {
		if e.Err != nil {
			fmt.Fprintf(warn, "sglr-pipe: warning: skipping a run record that cannot be read: %v\n", e.Err)
			continue
		}
		if !filter.matches(e.Run) {
			continue
		}
		list = append(list, listRun(e.Run))
		if limit > 0 && len(list) == limit {
			break
		}
	}
	return list, nil
}

// listRun counts what happened to a run's instances.
func listRun(r *artifacts.Run) runListing {
	l := runListing{ID: r.ID, Pipeline: r.Name, File: r.Pipeline, Started: r.Started, Status: runStatus(r.Status)}
	if !r.Finished.IsZero() && !r.Started.IsZero() {
		l.Seconds = r.Finished.Sub(r.Started).Seconds()
	}
	for _, in := range r.Instances {
		switch in.Status {
		case pipeline.StatusRan:
			l.Ran++
		case pipeline.StatusCached:
			l.Cached++
		case pipeline.StatusFailed:
			l.Failed++
		case pipeline.StatusSkipped:
			l.Skipped++
		case pipeline.StatusCancelled:
			l.Cancelled++
		}
	}
	return l
}

// runStatus is the status `runs` shows for a recorded one.
func runStatus(recorded string) string {
	if recorded == pipeline.RunCancelled {
		return runStatusInterrupted
	}
	return recorded
}

// printRuns renders the listing as aligned columns.
func printRuns(w io.Writer, list []runListing) {
	if len(list) == 0 {
		fmt.Fprintln(w, "no runs recorded")
		return
	}
	t := newTable()
	t.header("run", "pipeline", "started", "took", "ran", "cached", "failed", "status")
	for _, l := range list {
		t.row(l.ID, l.Pipeline, l.Started.Local().Format(time.DateTime), formatSeconds(l.Seconds),
			l.Ran, l.Cached, l.Failed, l.Status)
	}
	t.render(w, "")
}
