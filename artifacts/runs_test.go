package artifacts

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRunsNewestFirst(t *testing.T) {
	base := time.Date(2026, 11, 26, 11, 4, 5, 0, time.UTC)
	type rec struct {
		id      string
		started time.Time
		raw     string // written as is instead of a record
	}
	tests := []struct {
		name string
		runs []rec
		stop int // stop after this many entries (0: all)
		want []string
	}{
		{name: "no runs", want: nil},
		{
			name: "by second, newest first",
			runs: []rec{
				{id: "20261126T110405Z-aaaaaa", started: base},
				{id: "20261126T120405Z-bbbbbb", started: base.Add(time.Hour)},
				{id: "20261126T110406Z-cccccc", started: base.Add(time.Second)},
			},
			want: []string{"20261126T120405Z-bbbbbb", "20261126T110406Z-cccccc", "20261126T110405Z-aaaaaa"},
		},
		{
			name: "one second ordered by start time, not by the random part",
			runs: []rec{
				{id: "20261126T110405Z-ffffff", started: base.Add(100 * time.Millisecond)},
				{id: "20261126T110405Z-000000", started: base.Add(900 * time.Millisecond)},
				{id: "20261126T110405Z-888888", started: base.Add(500 * time.Millisecond)},
			},
			want: []string{"20261126T110405Z-000000", "20261126T110405Z-888888", "20261126T110405Z-ffffff"},
		},
		{
			name: "an unreadable record follows the readable ones of its second",
			runs: []rec{
				{id: "20261126T110405Z-000000", raw: "{not json"},
				{id: "20261126T110405Z-111111", started: base},
				{id: "20261126T110404Z-222222", started: base.Add(-time.Second)},
			},
			want: []string{"20261126T110405Z-111111", "20261126T110405Z-000000!", "20261126T110404Z-222222"},
		},
		{
			name: "stopping early",
			runs: []rec{
				{id: "20261126T110405Z-aaaaaa", started: base},
				{id: "20261126T110406Z-bbbbbb", started: base.Add(time.Second)},
			},
			stop: 1,
			want: []string{"20261126T110406Z-bbbbbb"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openTestStore(t)
			for _, r := range tc.runs {
				if r.raw != "" {
					writeRaw(t, filepath.Join(s.Root(), "runs", r.id+".json"), r.raw)
					continue
				}
				if err := s.PutRun(&Run{ID: r.id, Name: "p", Started: r.started, Status: "ok"}); err != nil {
					t.Fatal(err)
				}
			}
			runs, err := s.RunsNewestFirst()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for e := range runs {
				switch {
				case e.Err != nil && e.Run == nil && errors.Is(e.Err, ErrCorrupt):
					got = append(got, e.ID+"!")
				case e.Err == nil && e.Run != nil && e.Run.ID == e.ID:
					got = append(got, e.ID)
				default:
					t.Fatalf("entry %+v has neither a record nor a corrupt-record error", e)
				}
				if tc.stop > 0 && len(got) == tc.stop {
					break
				}
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRunsNewestFirstWithoutRunsDir(t *testing.T) {
	s := openTestStore(t)
	if err := os.RemoveAll(filepath.Join(s.Root(), "runs")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RunsNewestFirst(); err == nil {
		t.Error("a store without runs/ listed its runs")
	}
}

func TestRunRecordParams(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]any
		want   map[string]any // as read back (nil: stored without params)
	}{
		{name: "kept", params: map[string]any{"rate": 0.2, "kind": "symmetric", "hidden": []any{int64(8)}},
			want: map[string]any{"rate": 0.2, "kind": "symmetric", "hidden": []any{8.0}}},
		{name: "a value JSON cannot hold drops only that instance's params", params: map[string]any{"r": math.Inf(1)}},
		{name: "none", params: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openTestStore(t)
			r := &Run{ID: NewRunID(time.Now()), Instances: []RunInstance{
				{ID: "a", Params: tc.params},
				{ID: "b", Params: map[string]any{"k": "v"}},
			}}
			if err := s.PutRun(r); err != nil {
				t.Fatalf("PutRun: %v", err)
			}
			got, err := s.GetRun(r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if a, b := jsonOf(t, got.Instances[0].Params), jsonOf(t, tc.want); a != b {
				t.Errorf("params of a read back as %s, want %s", a, b)
			}
			if got.Instances[1].Params["k"] != "v" {
				t.Errorf("params of b read back as %v", got.Instances[1].Params)
			}
			if r.Instances[0].Params == nil && tc.params != nil {
				t.Error("PutRun changed the caller's record")
			}
		})
	}
}

// TestOldRunRecordsStillRead reads a record written before instances had
// params: it decodes, with nil Params.
func TestOldRunRecordsStillRead(t *testing.T) {
	s := openTestStore(t)
	id := "20250101T000000Z-abcdef"
	writeRaw(t, filepath.Join(s.Root(), "runs", id+".json"), `{"id": "`+id+`", "pipeline": "/p.yaml", "name": "p",
  "started": "2025-01-01T00:00:00Z", "finished": "2025-01-01T00:00:01Z", "status": "ok",
  "instances": [{"id": "data", "stage": "data", "uses": "load", "key": "k", "status": "ran", "seconds": 1}]}`)
	r, err := s.GetRun("latest")
	if err != nil || r.ID != id || len(r.Instances) != 1 || r.Instances[0].Params != nil {
		t.Fatalf("GetRun(latest) = %+v, %v", r, err)
	}
}

// jsonOf renders v as JSON for comparisons.
func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
