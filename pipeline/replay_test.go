package pipeline

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestReplay(t *testing.T) {
	yaml := matrixYAML + "  clock:\n    uses: clock\n"
	ts := newTestStages("v1")
	store := openStore(t)
	p := mustLoad(t, writeFile(t, t.TempDir(), "m.yaml", yaml), ts)
	run := mustRun(t, p, Options{Store: store})
	ctx := context.Background()

	tests := []struct {
		name      string
		runID     string
		instance  string
		identical bool
		wantErr   string
	}{
		{"single instance by id", run.ID, "s[scale=2.5]", true, ""},
		{"gathered inputs keep their tags", "latest", "g", true, ""},
		{"a stage that reads the clock differs", "latest", "clock", false, ""},
		{"decl with several instances", "latest", "s", false, `stage "s" has 2 instances`},
		{"unknown instance", "latest", "nope", false, `has no instance "nope"`},
		{"unknown run", "20000101T000000Z-000000", "g", false, "not found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Replay(ctx, store, ts.resolver(), tc.runID, tc.instance, nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Identical() != tc.identical || len(res.Outputs) != 1 {
				t.Fatalf("result %+v, identical want %v", res, tc.identical)
			}
			if !store.Has(res.Outputs[0].Replayed) {
				t.Errorf("replayed output %s not stored", res.Outputs[0].Replayed)
			}
		})
	}

	// With an input gone from the store, replay says so.
	c := instanceOf(t, run, "c[scale=2.5]")
	if err := store.RemoveObject(c.Outputs["table"]); err != nil {
		t.Fatal(err)
	}
	_, err := Replay(ctx, store, ts.resolver(), run.ID, "s[scale=2.5]", nil)
	if err == nil || !strings.Contains(err.Error(), "no longer in the store") {
		t.Fatalf("err = %v, want the missing input named", err)
	}
	// A stage whose version moved on cannot be replayed against old records.
	_, err = Replay(ctx, store, newTestStages("v2").resolver(), run.ID, "c[scale=1.5]", nil)
	if err == nil || !strings.Contains(err.Error(), "now version v2") {
		t.Fatalf("err = %v, want a version mismatch", err)
	}
}

func TestProgressIsThrottled(t *testing.T) {
	var events []Event
	sink := &eventSink{fn: func(e Event) { events = append(events, e) }}
	p := newInstanceProgress(sink, "x")
	p.Start(100000, "images")
	start := time.Now()
	for i := 0; i < 100000; i++ {
		p.Add(1)
		p.Status("working")
	}
	elapsed := time.Since(start)
	limit := 2*(int(elapsed/progressInterval)+1) + 2 // progress and status, plus start and the final event
	if len(events) > limit {
		t.Errorf("%d events in %v, want at most %d", len(events), elapsed, limit)
	}
	last := events[len(events)-1]
	for i := len(events) - 1; last.Kind != EventProgress; i-- {
		last = events[i]
	}
	if last.Done != 100000 || last.Total != 100000 || last.Unit != "images" {
		t.Errorf("last progress event %+v, want 100000/100000 images", last)
	}
}
