package artifacts

import (
	"encoding/json"
	"fmt"
	"iter"
	"slices"
	"strings"
)

// RunEntry is one run record as RunsNewestFirst yields it: its id and the
// record, or the error that kept it from being read (Run is nil then).
type RunEntry struct {
	ID  string
	Run *Run
	Err error
}

// RunsNewestFirst lists the store's runs and returns an iterator over their
// records, newest first. Records are read lazily, so a caller that stops
// early (the newest N, the newest run holding an instance) reads only what
// it needs. Ids sort by the second they started in; runs that share a
// second are ordered by their recorded start time, newest first, and a
// record that cannot be read comes after the readable ones of its second.
// An unreadable record is yielded with its error rather than ending the
// iteration, so one bad file does not hide every other run.
func (s *DirStore) RunsNewestFirst() (iter.Seq[RunEntry], error) {
	ids, err := s.ListRuns()
	if err != nil {
		return nil, err
	}
	return func(yield func(RunEntry) bool) {
		for end := len(ids); end > 0; {
			prefix := runIDSecond(ids[end-1])
			start := end - 1
			for start > 0 && runIDSecond(ids[start-1]) == prefix {
				start--
			}
			for _, e := range s.readRunGroup(ids[start:end]) {
				if !yield(e) {
					return
				}
			}
			end = start
		}
	}, nil
}

// readRunGroup reads the records of runs that started in the same second and
// orders them newest first (see RunsNewestFirst).
func (s *DirStore) readRunGroup(ids []string) []RunEntry {
	group := make([]RunEntry, 0, len(ids))
	for _, id := range ids {
		r, err := s.GetRun(id)
		group = append(group, RunEntry{ID: id, Run: r, Err: err})
	}
	slices.SortStableFunc(group, func(a, b RunEntry) int {
		switch {
		case a.Run == nil && b.Run == nil:
			return strings.Compare(b.ID, a.ID)
		case a.Run == nil:
			return 1
		case b.Run == nil:
			return -1
		}
		if c := b.Run.Started.Compare(a.Run.Started); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	return group
}

// runIDSecond is the time part of a run id made by NewRunID (everything
// before the first dash); ids that share it started in the same second.
func runIDSecond(id string) string {
	prefix, _, _ := strings.Cut(id, "-")
	return prefix
}

// marshalRun encodes a run record for PutRun. A parameter value JSON cannot
// hold (an infinite float given to a parameter without a range) must not
// cost the whole record: such an instance is stored without its Params, as
// records written before that field existed are, and readers fall back to
// its action.
func marshalRun(r *Run) ([]byte, error) {
	data, err := json.MarshalIndent(r, "", "  ")
	if err == nil {
		return data, nil
	}
	cp := *r
	cp.Instances = slices.Clone(r.Instances)
	dropped := 0
	for i := range cp.Instances {
		if _, perr := json.Marshal(cp.Instances[i].Params); perr != nil {
			cp.Instances[i].Params = nil
			dropped++
		}
	}
	if dropped == 0 {
		return nil, err
	}
	data, err2 := json.MarshalIndent(&cp, "", "  ")
	if err2 != nil {
		return nil, fmt.Errorf("%w (also without the params of %d instances: %v)", err, dropped, err2)
	}
	return data, nil
}
