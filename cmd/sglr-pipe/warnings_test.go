package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/stages"
)

// TestRunSummaryPrintsStageWarnings checks that the warnings a stage
// reported (eval's sanity checks) reach the summary of every run that ran or
// reused the instance, and nothing else's.
func TestRunSummaryPrintsStageWarnings(t *testing.T) {
	store, err := artifacts.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	key := strings.Repeat("ab", 32)
	if err := store.PutAction(&artifacts.Action{Key: key, Instance: "eval", Stage: "eval",
		Summary: map[string]any{stages.SummaryWarnings: []string{"best: 3 of 100 samples have an input gradient of exactly zero"}}}); err != nil {
		t.Fatal(err)
	}
	run := &artifacts.Run{ID: "r", Status: "ok", Instances: []artifacts.RunInstance{
		{ID: "eval", Key: key, Status: "cached"},
		{ID: "other", Key: strings.Repeat("cd", 32), Status: "ran"}, // no action: no warning, no failure
		{ID: "failed", Key: key, Status: "failed"},
	}}
	s := summarise(run, 0)
	s.Warnings = stageWarnings(store, run)
	var out bytes.Buffer
	printSummary(&out, s, store.Root())
	want := "WARNING eval: best: 3 of 100 samples have an input gradient of exactly zero\n"
	if !strings.HasSuffix(out.String(), want) || strings.Count(out.String(), "WARNING") != 1 {
		t.Errorf("summary:\n%s\nwant it to end with %q", out.String(), want)
	}
}
