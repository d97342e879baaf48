package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

// digestOf is a made-up digest that names its letter, for readable cases.
func digestOf(c byte) artifacts.Digest { return artifacts.Digest(strings.Repeat(string(c), 64)) }

// refStore holds three runs, oldest first: everything ran; then only the
// noisy instances (train skipped, a new noise rate); then a run whose train
// failed and that has two instances of stage eval.
func refStore(t *testing.T) *artifacts.DirStore {
	t.Helper()
	store, err := artifacts.OpenDir(filepath.Join(t.TempDir(), ".sglr"))
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	in := func(id, stage, status string, outs map[string]artifacts.Digest) artifacts.RunInstance {
		return artifacts.RunInstance{ID: id, Stage: stage, Status: status, Outputs: outs}
	}
	runs := []*artifacts.Run{
		{ID: "20261126T090000Z-aaaaaa", Started: base, Instances: []artifacts.RunInstance{
			in("noisy[noise=0.2]", "noisy", "ran", map[string]artifacts.Digest{"dataset": digestOf('1')}),
			in("train", "train", "ran", map[string]artifacts.Digest{"best": digestOf('2'), "final": digestOf('3')}),
			in("eval", "eval", "ran", map[string]artifacts.Digest{"metrics": digestOf('4')}),
		}},
		{ID: "20261126T091000Z-bbbbbb", Started: base.Add(10 * time.Minute), Instances: []artifacts.RunInstance{
			in("noisy[noise=0.2]", "noisy", "cached", map[string]artifacts.Digest{"dataset": digestOf('1')}),
			in("noisy[noise=0.4]", "noisy", "ran", map[string]artifacts.Digest{"dataset": digestOf('5')}),
			in("train", "train", "skipped", nil),
		}},
		{ID: "20261126T092000Z-cccccc", Started: base.Add(20 * time.Minute), Instances: []artifacts.RunInstance{
			in("train", "train", "failed", nil),
			in("eval[split=a]", "eval", "skipped", nil),
			in("eval[split=b]", "eval", "skipped", nil),
			in("lonely", "lonely", "cancelled", nil),
		}},
	}
	for _, r := range runs {
		if err := store.PutRun(r); err != nil {
			t.Fatal(err)
		}
	}
	return store
}

func TestOutputRefsResolveInTheNewestRunThatProducedThem(t *testing.T) {
	store := refStore(t)
	tests := []struct {
		ref     string
		digest  artifacts.Digest
		run     string
		wantErr string
	}{
		{ref: "train.best", digest: digestOf('2'), run: "20261126T090000Z-aaaaaa"}, // failed, then skipped: the first run's
		{ref: "noisy[noise=0.4].dataset", digest: digestOf('5'), run: "20261126T091000Z-bbbbbb"},
		{ref: "noisy[noise=0.2].dataset", digest: digestOf('1'), run: "20261126T091000Z-bbbbbb"}, // cached counts as produced
		{ref: "train.nosuchport", wantErr: `train has no output "nosuchport" in run 20261126T090000Z-aaaaaa (outputs: best, final)`},
		{ref: "noisy.dataset", wantErr: `stage "noisy" has 2 instances in run 20261126T091000Z-bbbbbb`},
		{ref: "eval.metrics", wantErr: `stage "eval" has 2 instances in run 20261126T092000Z-cccccc`},
		{ref: "lonely.out", wantErr: "no run produced lonely: in run 20261126T092000Z-cccccc it was cancelled"},
		{ref: "ghost.out", wantErr: `no run has an instance "ghost" (the latest run 20261126T092000Z-cccccc has: train, eval[split=a]`},
	}
	for _, tc := range tests {
		t.Run(tc.ref, func(t *testing.T) {
			ref, err := resolveRef(store, tc.ref)
			if tc.wantErr != "" {
				if _, isRef := err.(*refError); !isRef || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v (%T), want a refError with %q", err, err, tc.wantErr)
				}
				return
			}
			if err != nil || ref.digest != tc.digest || ref.runID != tc.run {
				t.Fatalf("resolveRef = %+v, %v; want %s from run %s", ref, err, tc.digest[:4], tc.run)
			}
		})
	}
}

func TestRunRefs(t *testing.T) {
	store := refStore(t)
	tests := []struct {
		spec    string
		filter  string
		want    string
		wantErr string
	}{
		{spec: "latest", want: "20261126T092000Z-cccccc"},
		{spec: "latest~0", want: "20261126T092000Z-cccccc"},
		{spec: "latest~2", want: "20261126T090000Z-aaaaaa"},
		{spec: "latest~3", wantErr: "holds only 3 runs"},
		{spec: "latest~", wantErr: "want latest~N"},
		{spec: "20261126T090000Z-aaaaaa", want: "20261126T090000Z-aaaaaa"},
		{spec: "20261126T0910", want: "20261126T091000Z-bbbbbb"},
		{spec: "ccc", want: "20261126T092000Z-cccccc"},
		{spec: "20261126", wantErr: "ambiguous: 3 runs match"},
		{spec: "zzz", wantErr: `no run "zzz"`},
		{spec: "latest", filter: "other", wantErr: `no runs recorded in store`},
	}
	for _, tc := range tests {
		t.Run(tc.spec+" "+tc.filter, func(t *testing.T) {
			r, err := findRun(store, tc.spec, runFilter{pipeline: tc.filter})
			if tc.wantErr != "" {
				if _, isRef := err.(*refError); !isRef || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want a refError with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || r.ID != tc.want {
				t.Fatalf("findRun = %v, %v; want %s", r, err, tc.want)
			}
		})
	}
	// A hex-only run id prefix that matches several runs says so, rather than
	// that no object has that digest prefix.
	if _, err := resolveRef(store, "20261126"); err == nil || !strings.Contains(err.Error(), "3 runs match") {
		t.Errorf("resolveRef(20261126) = %v, want the runs' ambiguity", err)
	}
	// show takes the same run refs; a hex run suffix is a run when no object matches.
	for spec, want := range map[string]string{"latest~1": "20261126T091000Z-bbbbbb", "aaaaaa": "20261126T090000Z-aaaaaa"} {
		ref, err := resolveRef(store, spec)
		if err != nil || ref.run == nil || ref.run.ID != want {
			t.Errorf("resolveRef(%s) = %+v, %v; want run %s", spec, ref, err, want)
		}
	}
}

// TestShowAfterARunOfOneTarget is the user's case: after `run FILE noisy`
// the report stages are skipped in the latest run, and their outputs still
// resolve, from the run that produced them.
func TestShowAfterARunOfOneTarget(t *testing.T) {
	dir, file := writePipeline(t, smallPipeline)
	_, full, r := runJSON(t, dir, file)
	if r.code != 0 {
		t.Fatalf("run: exit %d\n%s", r.code, r.stderr)
	}
	_, partial, r := runJSON(t, dir, file, "noisy", "--set", "matrix.noise=[0.1,0.4]")
	if r.code != 0 || instanceStatus(partial, "stats") != "skipped" {
		t.Fatalf("run noisy: exit %d, stats %s\n%s", r.code, instanceStatus(partial, "stats"), r.stderr)
	}
	for _, tc := range []struct{ ref, run string }{
		{"stats.table", full.RunID},
		{"noisy[noise=0.4].dataset", partial.RunID},
		{"noisy[noise=0.3].dataset", full.RunID},
	} {
		out := mustSucceed(t, dir, "show", tc.ref, "--json")
		var shown shownArtifact
		if err := json.Unmarshal([]byte(out.stdout), &shown); err != nil {
			t.Fatal(err)
		}
		if shown.Run != tc.run || shown.Digest != outputsOf(map[bool]runSummary{true: full, false: partial}[tc.run == full.RunID])[tc.ref] {
			t.Errorf("show %s: run %s digest %s; want run %s", tc.ref, shown.Run, shown.Digest, tc.run)
		}
		text := mustSucceed(t, dir, "show", tc.ref)
		if !strings.Contains(text.stdout, "(run "+tc.run+")") {
			t.Errorf("show %s does not name run %s:\n%s", tc.ref, tc.run, text.stdout)
		}
	}
}
