package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

// runDiff is what `diff` reports: how the parameters of two runs' instances
// and the metric tables they produced differ.
type runDiff struct {
	Old     diffRun       `json:"old"`
	New     diffRun       `json:"new"`
	Params  []paramChange `json:"params"`
	Metrics []tableChange `json:"metrics"`
	Notes   []string      `json:"notes,omitempty"` // what could not be compared, and why
}

// diffRun names one side of a diff.
type diffRun struct {
	ID       string    `json:"id"`
	Pipeline string    `json:"pipeline"`
	File     string    `json:"file"`
	Started  time.Time `json:"started"`
	Status   string    `json:"status"`
}

// Kinds of change in a diff.
const (
	changeChanged = "changed"
	changeAdded   = "added"
	changeRemoved = "removed"
)

// paramChange is one parameter that differs, or (with Param empty) an
// instance that only one of the runs has.
type paramChange struct {
	Instance string `json:"instance"`
	Change   string `json:"change"` // changed, added or removed
	Param    string `json:"param,omitempty"`
	Old      any    `json:"old,omitempty"`
	New      any    `json:"new,omitempty"`
}

// newDiffCommand compares two runs.
func newDiffCommand(g *globalFlags) *cobra.Command {
	var asJSON bool
	var filter runFilter
	cmd := &cobra.Command{
		Use:   "diff [OLD] [NEW]",
		Short: "Show how two runs differ: parameters per instance and metric table rows",
		Long: `diff compares two runs: the parameters of every instance (changed values,
and instances only one run has), then the rows of the table outputs both runs
produced (eval's and calibrate's metrics, label-stats, best-final, plugins'
tables): rows are joined on their text columns (the matrix tags, checkpoint,
attack, ...) and every number that changed is shown old → new with its delta.

  diff OLD NEW   compare run OLD with run NEW
  diff RUN       compare RUN with the run of the same pipeline before it
  diff           compare the newest run with the one of its pipeline before it

A run is named by its id, a unique prefix of it or of its random part
(after the dash), latest or latest~N (N runs before the newest; with
--pipeline, counting only that pipeline's runs). diff exits 0 whether or not
anything differs.`,
		Args: cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := openExistingStore(cmd, g)
			if err != nil {
				return err
			}
			oldRun, newRun, err := diffPair(store, args, filter)
			if err != nil {
				return refUsage(cmd, err)
			}
			d := diffRuns(store, oldRun, newRun)
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), d)
			}
			printDiff(cmd.OutOrStdout(), d)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the differences as JSON")
	cmd.Flags().StringVar(&filter.pipeline, "pipeline", "", "resolve latest~N among this pipeline's runs (its name or its file)")
	return cmd
}

// diffPair resolves diff's arguments to the old and the new run.
func diffPair(store *artifacts.DirStore, args []string, filter runFilter) (oldRun, newRun *artifacts.Run, err error) {
	if len(args) == 2 {
		if oldRun, err = findRun(store, args[0], filter); err != nil {
			return nil, nil, err
		}
		if newRun, err = findRun(store, args[1], filter); err != nil {
			return nil, nil, err
		}
		return oldRun, newRun, nil
	}
	spec := "latest"
	if len(args) == 1 {
		spec = args[0]
	}
	if newRun, err = findRun(store, spec, filter); err != nil {
		return nil, nil, err
	}
	oldRun, err = previousRun(store, newRun)
	if errors.Is(err, artifacts.ErrNotFound) {
		return nil, nil, &refError{msg: fmt.Sprintf("%v: nothing to compare it with (give two runs: diff OLD NEW)", err)}
	}
	return oldRun, newRun, err
}

// diffRuns compares two run records (see runDiff). What cannot be read
// (a table whose object was collected, an instance whose parameters were
// recorded nowhere) is noted, not fatal: the rest is still compared.
func diffRuns(store *artifacts.DirStore, oldRun, newRun *artifacts.Run) *runDiff {
	d := &runDiff{Old: describeRun(oldRun), New: describeRun(newRun), Params: []paramChange{}, Metrics: []tableChange{}}
	oldByID := instancesByID(oldRun)
	newByID := instancesByID(newRun)
	for _, in := range newRun.Instances {
		prev, ok := oldByID[in.ID]
		if !ok {
			d.Params = append(d.Params, paramChange{Instance: in.ID, Change: changeAdded})
			continue
		}
		d.Params = append(d.Params, d.diffParams(store, prev, in, oldRun.ID, newRun.ID)...)
		d.Metrics = append(d.Metrics, d.diffTables(store, prev, in)...)
	}
	for _, in := range oldRun.Instances {
		if _, ok := newByID[in.ID]; !ok {
			d.Params = append(d.Params, paramChange{Instance: in.ID, Change: changeRemoved})
		}
	}
	return d
}

// describeRun is one side of the diff's header.
func describeRun(r *artifacts.Run) diffRun {
	return diffRun{ID: r.ID, Pipeline: r.Name, File: r.Pipeline, Started: r.Started, Status: runStatus(r.Status)}
}

// instancesByID indexes a run's instances.
func instancesByID(r *artifacts.Run) map[string]artifacts.RunInstance {
	m := make(map[string]artifacts.RunInstance, len(r.Instances))
	for _, in := range r.Instances {
		m[in.ID] = in
	}
	return m
}

// diffParams lists the parameters of one instance that differ between runs,
// in name order.
func (d *runDiff) diffParams(store *artifacts.DirStore, oldIn, newIn artifacts.RunInstance, oldID, newID string) []paramChange {
	oldP, errOld := instanceParams(store, oldIn)
	newP, errNew := instanceParams(store, newIn)
	for _, e := range []struct {
		err error
		run string
	}{{errOld, oldID}, {errNew, newID}} {
		if e.err != nil {
			d.Notes = append(d.Notes, fmt.Sprintf("parameters of %s in run %s not compared: %v", newIn.ID, e.run, e.err))
		}
	}
	if errOld != nil || errNew != nil {
		return nil
	}
	var out []paramChange
	all := map[string]any{}
	maps.Copy(all, oldP)
	maps.Copy(all, newP)
	names := slices.Sorted(maps.Keys(all))
	for _, name := range names {
		ov, inOld := oldP[name]
		nv, inNew := newP[name]
		switch {
		case !inOld:
			out = append(out, paramChange{Instance: newIn.ID, Change: changeAdded, Param: name, New: nv})
		case !inNew:
			out = append(out, paramChange{Instance: newIn.ID, Change: changeRemoved, Param: name, Old: ov})
		case !sameJSON(ov, nv):
			out = append(out, paramChange{Instance: newIn.ID, Change: changeChanged, Param: name, Old: ov, New: nv})
		}
	}
	return out
}

// instanceParams returns an instance's parameters: from the run record, or,
// for a record written before records held them, from the action its key
// names. Both come from JSON, so the two runs' values compare alike.
func instanceParams(store *artifacts.DirStore, in artifacts.RunInstance) (map[string]any, error) {
	if in.Params != nil {
		return in.Params, nil
	}
	if in.Key == "" {
		return nil, fmt.Errorf("the record has no parameters and no cache key (status %s)", in.Status)
	}
	a, err := store.GetAction(in.Key)
	if err != nil {
		return nil, fmt.Errorf("the record has no parameters and its action cannot be read: %w", err)
	}
	if a.Params == nil {
		return map[string]any{}, nil
	}
	return a.Params, nil
}

// sameJSON reports whether two decoded JSON values are equal (maps compare
// by content: encoding/json sorts their keys).
func sameJSON(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

// formatParam renders a parameter value as the pipeline file would spell it
// in flow style: strings bare, lists and maps as JSON.
func formatParam(v any) string {
	if v == nil {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// printDiff renders a diff for people: the two runs, the parameter changes,
// then one block per table with changed rows, then the notes.
func printDiff(w io.Writer, d *runDiff) {
	for _, side := range []struct {
		label string
		run   diffRun
	}{{"old", d.Old}, {"new", d.New}} {
		fmt.Fprintf(w, "%s  %s  %s  %s  %s\n", side.label, side.run.ID, side.run.Pipeline,
			side.run.Started.Local().Format(time.DateTime), side.run.Status)
	}
	fmt.Fprintln(w)
	if len(d.Params) == 0 {
		fmt.Fprintln(w, "params: no changes")
	} else {
		fmt.Fprintf(w, "params: %s\n", countChanges(d.Params))
		t := newTable()
		t.header("instance", "param", "old", "new")
		for _, c := range d.Params {
			param := c.Param
			if param == "" {
				param = "(instance " + c.Change + ")"
			} else if c.Change != changeChanged {
				param += " (" + c.Change + ")"
			}
			t.row(c.Instance, param, formatParam(c.Old), formatParam(c.New))
		}
		t.render(w, "  ")
	}
	fmt.Fprintln(w)
	if len(d.Metrics) == 0 {
		fmt.Fprintln(w, "metrics: no changes")
	}
	for i, tc := range d.Metrics {
		if i > 0 {
			fmt.Fprintln(w)
		}
		printTableChange(w, tc)
	}
	if len(d.Notes) > 0 {
		fmt.Fprintln(w)
	}
	for _, n := range d.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

// countChanges summarises the parameter changes in words.
func countChanges(changes []paramChange) string {
	changed, added, removed := 0, 0, 0
	touched := map[string]bool{}
	for _, c := range changes {
		switch {
		case c.Param == "" && c.Change == changeAdded:
			added++
		case c.Param == "" && c.Change == changeRemoved:
			removed++
		default:
			changed++
			touched[c.Instance] = true
		}
	}
	var parts []string
	if changed > 0 {
		parts = append(parts, fmt.Sprintf("%d changed in %d %s", changed, len(touched), plural(len(touched), "instance")))
	}
	if added > 0 {
		parts = append(parts, fmt.Sprintf("%d %s added", added, plural(added, "instance")))
	}
	if removed > 0 {
		parts = append(parts, fmt.Sprintf("%d %s removed", removed, plural(removed, "instance")))
	}
	return strings.Join(parts, ", ")
}

// plural adds an s to word unless n is 1.
func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
