package main

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

// runFilter narrows the runs a command looks at to one pipeline: its name
// as the run recorded it, or its file. The zero filter takes every run.
type runFilter struct {
	pipeline string
}

// matches reports whether r belongs to the filter's pipeline: the pipeline
// name equals the filter, or the recorded file does (as given, or after
// making the filter absolute).
func (f runFilter) matches(r *artifacts.Run) bool {
	if f.pipeline == "" {
		return true
	}
	if r.Name == f.pipeline || r.Pipeline == f.pipeline {
		return true
	}
	abs, err := filepath.Abs(f.pipeline)
	return err == nil && r.Pipeline == abs
}

// samePipeline is the filter for the runs of r's own pipeline file (or, for
// a record without one, its name).
func samePipeline(r *artifacts.Run) runFilter {
	if r.Pipeline != "" {
		return runFilter{pipeline: r.Pipeline}
	}
	return runFilter{pipeline: r.Name}
}

// isLatestSpec reports whether spec is "latest" or "latest~N" (with any N,
// so that a malformed N is reported as such rather than as an unknown ref).
func isLatestSpec(spec string) bool {
	return spec == "latest" || strings.HasPrefix(spec, "latest~")
}

// findRun resolves a RUN argument among the runs the filter takes:
//
//	latest, latest~N        the newest run, or the one N runs before it
//	RUN-ID                  a run id as `run` prints it
//	PREFIX                  a unique prefix of a run id ("20261126T1104")
//	SUFFIX                  a unique prefix of the random part after the dash ("3fa9c1")
//
// A spec that names no run, or several, is a *refError (a usage mistake).
func findRun(store *artifacts.DirStore, spec string, filter runFilter) (*artifacts.Run, error) {
	if err := checkRunArg(spec); err != nil {
		return nil, &refError{msg: err.Error()}
	}
	if isLatestSpec(spec) {
		return nthLatestRun(store, spec, filter)
	}
	ids, err := store.ListRuns()
	if err != nil {
		return nil, err
	}
	var matches []string
	for _, id := range ids {
		if id == spec {
			matches = []string{id}
			break
		}
		_, random, _ := strings.Cut(id, "-")
		if strings.HasPrefix(id, spec) || (random != "" && strings.HasPrefix(random, spec)) {
			matches = append(matches, id)
		}
	}
	kept := matches
	if filter.pipeline != "" {
		// Only a filter needs the records read before one is chosen.
		kept = nil
		for _, id := range matches {
			r, err := store.GetRun(id)
			if err != nil {
				return nil, err
			}
			if filter.matches(r) {
				kept = append(kept, id)
			}
		}
	}
	switch len(kept) {
	case 1:
		return store.GetRun(kept[0])
	case 0:
		return nil, &refError{msg: fmt.Sprintf("no run %q in store %s%s (list them with 'sglr-pipe runs')", spec, store.Root(), filter.describe())}
	default:
		shown := make([]string, 0, 5)
		for i, id := range kept {
			if i == 5 {
				shown = append(shown, "…")
				break
			}
			shown = append(shown, id)
		}
		return nil, &refError{ambiguous: true, msg: fmt.Sprintf("run %q is ambiguous: %d runs match (%s); give more of the id", spec, len(kept), strings.Join(shown, ", "))}
	}
}

// describe names the filter in an error message ("" for none).
func (f runFilter) describe() string {
	if f.pipeline == "" {
		return ""
	}
	return fmt.Sprintf(" for pipeline %q", f.pipeline)
}

// nthLatestRun resolves latest and latest~N: the run N places before the
// newest one the filter takes (unreadable records count when there is no
// filter, and naming one is an error; with a filter they cannot be told
// apart and are passed over).
func nthLatestRun(store *artifacts.DirStore, spec string, filter runFilter) (*artifacts.Run, error) {
	n := 0
	if rest, ok := strings.CutPrefix(spec, "latest~"); ok {
		v, err := strconv.Atoi(rest)
		if err != nil || v < 0 {
			return nil, &refError{msg: fmt.Sprintf("%q: want latest~N with N a whole number of runs back, e.g. latest~1", spec)}
		}
		n = v
	}
	runs, err := store.RunsNewestFirst()
	if err != nil {
		return nil, err
	}
	seen := 0
	for e := range runs {
		if e.Err != nil {
			if filter.pipeline != "" {
				continue
			}
			if seen == n {
				return nil, fmt.Errorf("%s is run %s: %w", spec, e.ID, e.Err)
			}
			seen++
			continue
		}
		if !filter.matches(e.Run) {
			continue
		}
		if seen == n {
			return e.Run, nil
		}
		seen++
	}
	if seen == 0 {
		return nil, &refError{msg: fmt.Sprintf("%s: no runs recorded in store %s%s", spec, store.Root(), filter.describe())}
	}
	return nil, &refError{msg: fmt.Sprintf("%s: store %s holds only %d runs%s", spec, store.Root(), seen, filter.describe())}
}

// previousRun returns the newest run of r's pipeline that started before r,
// or an error wrapping artifacts.ErrNotFound when r is its pipeline's first.
func previousRun(store *artifacts.DirStore, r *artifacts.Run) (*artifacts.Run, error) {
	runs, err := store.RunsNewestFirst()
	if err != nil {
		return nil, err
	}
	filter := samePipeline(r)
	passed := false
	for e := range runs {
		if e.Err != nil {
			continue
		}
		if e.Run.ID == r.ID {
			passed = true
			continue
		}
		if passed && filter.matches(e.Run) {
			return e.Run, nil
		}
	}
	return nil, fmt.Errorf("run %s is the first run of pipeline %s: %w", r.ID, r.Name, artifacts.ErrNotFound)
}
