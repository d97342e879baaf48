package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/nn/cuda"
	"github.com/sglr-pipe/sglr-pipe/pipeline"
)

// devicePipeline trains one tiny model on the CPU and one with device: cuda,
// which no machine can run yet, and evaluates both.
const devicePipeline = `name: device
seed: 5
matrix:
  device: [cpu, cuda]
stages:
  data:
    uses: load
    with: {dataset: synthetic, train: 60, val: 20, test: 20, classes: 4}
  train:
    uses: train
    inputs: {train: data.train, val: data.val}
    with:
      epochs: 1
      hidden: [8]
      steps: 1
      val_steps: 1
      workers: 1
      device: ${{ matrix.device }}
  eval:
    uses: eval
    inputs: {models: train.best[], dataset: data.test}
    with: {attacks: [clean], workers: 1}
`

// TestDeviceCUDAFailsOnlyThatStage runs a pipeline with a train instance on
// device: cuda: that instance fails with what was looked for (or, on a
// machine with a driver, with the backend not running train yet), the run
// exits 1, the CPU instance is stored as usual, nothing is stored for the
// cuda one, and a rerun fails it again instead of finding it cached.
func TestDeviceCUDAFailsOnlyThatStage(t *testing.T) {
	libs := t.TempDir() // searched first: an empty directory, named in the message
	t.Setenv("SGLR_CUDA_LIBS", libs)
	want := []string{"device cuda:0: no CUDA driver found, so train cannot run on the GPU", filepath.Join(libs, "libcuda.so.1")}
	if _, err := cuda.Find(cuda.Driver); err == nil {
		want = []string{"device cuda:0: a CUDA driver is present, but the CUDA backend does not run train yet"}
	}
	dir, file := writePipeline(t, devicePipeline)

	for i, what := range []string{"first run", "rerun"} {
		_, s, r := runJSON(t, dir, file)
		if r.code != exitFailed {
			t.Fatalf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", what, r.code, exitFailed, r.stdout, r.stderr)
		}
		if s.Failed != 1 || len(s.Failures) != 1 || s.Failures[0].Instance != "train[device=cuda]" {
			t.Fatalf("%s: failures %+v, want train[device=cuda] alone", what, s.Failures)
		}
		for _, w := range want {
			if !strings.Contains(s.Failures[0].Error, w) {
				t.Errorf("%s: the failure lacks %q:\n%s", what, w, s.Failures[0].Error)
			}
		}
		status := map[string]string{}
		for _, in := range s.Instances {
			status[in.ID] = in.Status
		}
		wantStatus := map[string]string{"data": "ran", "train[device=cpu]": "ran", "train[device=cuda]": "failed", "eval": "skipped"}
		if i > 0 {
			wantStatus["data"], wantStatus["train[device=cpu]"] = "cached", "cached"
		}
		for id, st := range wantStatus {
			if status[id] != st {
				t.Errorf("%s: %s is %q, want %q (all: %v)", what, id, status[id], st, status)
			}
		}
	}

	r := sglr(t, dir, "run", file)
	if r.code != exitFailed || !strings.Contains(r.stdout, "FAILED train[device=cuda]") || !strings.Contains(r.stderr, want[0]) {
		t.Errorf("text run: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}

	mustSucceed(t, dir, "cache", "verify")

	// The plan names the cuda instance's key, under which nothing is stored,
	// and keys the two devices apart.
	plan := mustSucceed(t, dir, "plan", file, "--json")
	var entries []pipeline.PlanEntry
	if err := json.Unmarshal([]byte(plan.stdout), &entries); err != nil {
		t.Fatalf("plan --json: %v\n%s", err, plan.stdout)
	}
	keys := map[string]string{}
	for _, e := range entries {
		keys[e.Instance] = e.Key
		switch e.Instance {
		case "train[device=cuda]":
			if e.Action != pipeline.ActionRun {
				t.Errorf("plan: train[device=cuda] would be %s, want run", e.Action)
			}
		case "train[device=cpu]":
			if e.Action != pipeline.ActionCached {
				t.Errorf("plan: train[device=cpu] would be %s, want cached", e.Action)
			}
		}
	}
	k := keys["train[device=cuda]"]
	if len(k) != 64 || k == keys["train[device=cpu]"] {
		t.Fatalf("plan keys: %v", keys)
	}
	if _, err := os.Stat(filepath.Join(dir, ".sglr", "actions", k[:2], k[2:]+".json")); !os.IsNotExist(err) {
		t.Errorf("an action is stored for train[device=cuda] (%s): %v", k, err)
	}
}
