package main

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

var updateRuns = flag.Bool("update-runs", false, "rewrite the golden files in testdata/runs")

// compareRunsGolden compares got with testdata/runs/NAME.golden, rewriting
// it with -update-runs.
func compareRunsGolden(t *testing.T, name, got string) {
	t.Helper()
	golden := filepath.Join("testdata", "runs", name+".golden")
	if *updateRuns {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden (run with -update-runs): %v", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (rerun with -update-runs after checking):\n--- got\n%s\n--- want\n%s", golden, got, want)
	}
}

// utc makes the binary print times in UTC, so that goldens hold on any machine.
var utc = []string{"TZ=UTC"}

// handmadeRun is a run record with n instances of each status given.
func handmadeRun(id, name string, started time.Time, took time.Duration, status string, counts map[string]int) *artifacts.Run {
	r := &artifacts.Run{ID: id, Name: name, Pipeline: "/work/examples/" + name + ".yaml",
		Started: started, Finished: started.Add(took), Status: status}
	for _, st := range []string{"ran", "cached", "failed", "skipped", "cancelled"} {
		for i := 0; i < counts[st]; i++ {
			r.Instances = append(r.Instances, artifacts.RunInstance{ID: st + string(rune('a'+i)), Stage: st, Status: st})
		}
	}
	return r
}

// handmadeStore writes run records of two pipelines, one of them in the same
// second as another, one cancelled, and an unreadable record.
func handmadeStore(t *testing.T) (dir, root string) {
	t.Helper()
	dir = t.TempDir()
	store, err := artifacts.OpenDir(filepath.Join(dir, ".sglr"))
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	for _, r := range []*artifacts.Run{
		handmadeRun("20261126T090000Z-aaaaaa", "quickstart", base, 19300*time.Millisecond, "ok", map[string]int{"ran": 8}),
		handmadeRun("20261126T091500Z-bbbbbb", "quickstart", base.Add(15*time.Minute), 10*time.Millisecond, "ok", map[string]int{"cached": 8}),
		handmadeRun("20261126T100000Z-cccccc", "noise", base.Add(time.Hour), 65*time.Second, "failed",
			map[string]int{"ran": 3, "cached": 1, "failed": 1, "skipped": 2}),
		handmadeRun("20261126T100000Z-000000", "noise", base.Add(time.Hour+500*time.Millisecond), 2*time.Second, "cancelled",
			map[string]int{"ran": 1, "cancelled": 2}),
	} {
		if err := store.PutRun(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(store.Root(), "runs", "20261126T080000Z-dddddd.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, store.Root()
}

func TestRunsListing(t *testing.T) {
	dir, root := handmadeStore(t)
	tests := []struct {
		golden string
		args   []string
	}{
		{"runs", nil},
		{"runs_limit", []string{"-n", "2"}},
		{"runs_pipeline", []string{"--pipeline", "quickstart"}},
		{"runs_pipeline_file", []string{"--pipeline", "/work/examples/noise.yaml", "-n", "0"}},
		{"runs_json", []string{"--json", "-n", "2"}},
	}
	for _, tc := range tests {
		t.Run(tc.golden, func(t *testing.T) {
			r := sglrEnv(t, dir, utc, append([]string{"runs"}, tc.args...)...)
			if r.code != 0 {
				t.Fatalf("exit %d\n%s", r.code, r.stderr)
			}
			compareRunsGolden(t, tc.golden, "stdout:\n"+r.stdout+"stderr:\n"+strings.ReplaceAll(r.stderr, root, "STORE"))
		})
	}
	t.Run("usage", func(t *testing.T) {
		for _, args := range [][]string{{"runs", "-n", "-1"}, {"runs", "extra"}, {"runs", "--store", filepath.Join(dir, "none")}} {
			if r := sglr(t, dir, args...); r.code != exitUsage {
				t.Errorf("%v: exit %d, want 2\n%s", args, r.code, r.stderr)
			}
		}
	})
	t.Run("empty store", func(t *testing.T) {
		empty := t.TempDir()
		if _, err := artifacts.OpenDir(filepath.Join(empty, ".sglr")); err != nil {
			t.Fatal(err)
		}
		if r := mustSucceed(t, empty, "runs"); r.stdout != "no runs recorded\n" {
			t.Errorf("runs of an empty store: %q", r.stdout)
		}
	})
}

// secondRunSets changes one parameter of a shared instance (data's train
// size) and one matrix value (noise 0.3 becomes 0.5) of smallPipeline.
var secondRunSets = []string{"--set", "stages.data.with.train=200", "--set", "matrix.noise=[0.1,0.5]"}

// normaliseRuns replaces run ids and times in diff's output by placeholders.
func normaliseRuns(s string, ids map[string]string) string {
	for id, name := range ids {
		s = strings.ReplaceAll(s, id, name)
	}
	s = regexp.MustCompile(`\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?`).ReplaceAllString(s, "TIME")
	return s
}

func TestDiffTwoRuns(t *testing.T) {
	dir, file := writePipeline(t, smallPipeline)
	_, first, r := runJSON(t, dir, file)
	if r.code != 0 {
		t.Fatalf("first run: exit %d\n%s", r.code, r.stderr)
	}
	_, second, r := runJSON(t, dir, append([]string{file}, secondRunSets...)...)
	if r.code != 0 {
		t.Fatalf("second run: exit %d\n%s", r.code, r.stderr)
	}
	ids := map[string]string{first.RunID: "OLD-RUN-ID", second.RunID: "NEW-RUN-ID", dir: "DIR"}

	text := mustSucceed(t, dir, "diff", "latest~1", "latest")
	compareRunsGolden(t, "diff", normaliseRuns(text.stdout, ids))
	js := mustSucceed(t, dir, "diff", "--json", first.RunID, second.RunID)
	compareRunsGolden(t, "diff_json", normaliseRuns(js.stdout, ids))
	var decoded runDiff
	if err := json.Unmarshal([]byte(js.stdout), &decoded); err != nil {
		t.Fatalf("diff --json is not JSON: %v", err)
	}

	// The same pair named other ways gives the same diff.
	_, random, _ := strings.Cut(first.RunID, "-")
	for _, args := range [][]string{
		{"diff"}, {"diff", "latest"}, {"diff", second.RunID},
		{"diff", first.RunID[:len(first.RunID)-2], "latest"}, {"diff", random, "latest"},
		{"diff", "--pipeline", "small", "latest~1", "latest~0"},
	} {
		if r := mustSucceed(t, dir, args...); r.stdout != text.stdout {
			t.Errorf("%v differs from diff latest~1 latest:\n%s", args, r.stdout)
		}
	}

	// A run record from before records held params is compared through its actions.
	stripParams(t, filepath.Join(dir, ".sglr", "runs", first.RunID+".json"))
	if r := mustSucceed(t, dir, "diff", "latest~1", "latest"); r.stdout != text.stdout {
		t.Errorf("diff against a record without params:\n%s\nwant:\n%s", r.stdout, text.stdout)
	}

	// A run against itself has nothing to show.
	same := mustSucceed(t, dir, "diff", "latest", "latest")
	if !strings.Contains(same.stdout, "params: no changes") || !strings.Contains(same.stdout, "metrics: no changes") {
		t.Errorf("diff latest latest:\n%s", same.stdout)
	}
}

// stripParams rewrites a run record as an older sglr-pipe wrote it: without
// the instances' params.
func stripParams(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatal(err)
	}
	for _, in := range rec["instances"].([]any) {
		delete(in.(map[string]any), "params")
	}
	out, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDiffUsageErrors(t *testing.T) {
	dir, file := writePipeline(t, smallPipeline)
	mustSucceed(t, dir, "run", file)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"diff"}, "nothing to compare it with"},
		{[]string{"diff", "latest~1", "latest"}, "holds only 1 runs"},
		{[]string{"diff", "latest~x", "latest"}, "want latest~N"},
		{[]string{"diff", "latest~-1", "latest"}, "want latest~N"},
		{[]string{"diff", "nosuchrun", "latest"}, `no run "nosuchrun"`},
		{[]string{"diff", "../x", "latest"}, "not a path"},
		{[]string{"diff", "--pipeline", "other", "latest"}, `no runs recorded in store`},
		{[]string{"diff", "a", "b", "c"}, "accepts at most 2 arg"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := sglr(t, dir, tc.args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, want 2 with %q in stderr:\n%s", r.code, tc.want, r.stderr)
			}
		})
	}
}

// TestDiffNotesWhatItCannotCompare diffs a full run with one of a single
// target (stats skipped), and an old-format record whose actions are gone.
func TestDiffNotesWhatItCannotCompare(t *testing.T) {
	dir, file := writePipeline(t, smallPipeline)
	_, first, r := runJSON(t, dir, file)
	if r.code != 0 {
		t.Fatalf("run: exit %d\n%s", r.code, r.stderr)
	}
	mustSucceed(t, dir, "run", file, "noisy")
	d := mustSucceed(t, dir, "diff")
	for _, want := range []string{"params: no changes", "metrics: no changes",
		"note: stats.table not compared: only the old run produced it (skipped in the new one)"} {
		if !strings.Contains(d.stdout, want) {
			t.Errorf("diff lacks %q:\n%s", want, d.stdout)
		}
	}
	stripParams(t, filepath.Join(dir, ".sglr", "runs", first.RunID+".json"))
	if err := os.RemoveAll(filepath.Join(dir, ".sglr", "actions")); err != nil {
		t.Fatal(err)
	}
	d = mustSucceed(t, dir, "diff")
	if want := "note: parameters of data in run " + first.RunID + " not compared: the record has no parameters and its action cannot be read"; !strings.Contains(d.stdout, want) {
		t.Errorf("diff lacks %q:\n%s", want, d.stdout)
	}
}
