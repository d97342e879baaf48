package main

import (
	"bufio"
	"encoding/json"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/pipeline"
)

// resumePipeline trains for ${{ vars.epochs }} epochs with explicit
// milestones, so that raising epochs keeps the learning rates of the epochs
// already done and may resume.
const resumePipeline = `name: resume
seed: 3
vars:
  epochs: 20
stages:
  data:
    uses: load
    with:
      dataset: synthetic
      train: 3000
      val: 200
      test: 50
      classes: 4
      shape: [1, 12, 12]
  fit:
    uses: train
    inputs:
      train: data.train
      val: data.val
    with:
      epochs: ${{ vars.epochs }}
      milestones: [10, 15]
      hidden: [64]
      batch: 64
      steps: 3
      val_steps: 3
      eps: 0.1
      step: 0.04
      labels: sglr
      warmup: 5
      workers: 1
      checkpoint_every: 1
`

// TestKilledTrainingResumesToTheSameDigests SIGKILLs a 20-epoch training at
// a random epoch, reruns it, and checks that it resumed and produced the
// digests of an uninterrupted run in another store.
func TestKilledTrainingResumesToTheSameDigests(t *testing.T) {
	if testing.Short() {
		t.Skip("trains twice for 20 epochs")
	}
	cleanDir, cleanFile := writePipeline(t, resumePipeline)
	_, want, r := runJSON(t, cleanDir, cleanFile)
	if r.code != 0 {
		t.Fatalf("uninterrupted run: exit %d\n%s", r.code, r.stderr)
	}

	dir, file := writePipeline(t, resumePipeline)
	killAt := 2 + rand.IntN(16) // epochs 2..17
	reached := killTrainingAt(t, dir, file, killAt)
	t.Logf("killed at epoch %d (aimed at %d)", reached, killAt)

	events, got, r := runJSON(t, dir, file)
	if r.code != 0 {
		t.Fatalf("rerun after the kill: exit %d\n%s", r.code, r.stderr)
	}
	if diff := compareOutputs(outputsOf(want), outputsOf(got)); diff != "" {
		t.Errorf("the resumed run's outputs differ from the uninterrupted run's:\n%s", diff)
	}
	resumed := ""
	for _, e := range events {
		if e.Instance == "fit" && e.Kind == pipeline.EventStart {
			resumed = e.Message
		}
	}
	if !strings.Contains(resumed, "resume from epoch") {
		t.Errorf("fit started with %q, want it to say it resumes", resumed)
	}

	// Raising epochs resumes from the finished 20-epoch run, and plan says so.
	r = mustSucceed(t, dir, "plan", "--set", "vars.epochs=24", file)
	if !strings.Contains(r.stdout, "resume from epoch 20") {
		t.Errorf("plan with 24 epochs does not say it resumes from epoch 20:\n%s", r.stdout)
	}
	// gc keeps checkpoints unless told to delete them.
	mustSucceed(t, dir, "cache", "gc", "--grace", "0")
	if r = mustSucceed(t, dir, "plan", "--set", "vars.epochs=24", file); !strings.Contains(r.stdout, "resume from epoch 20") {
		t.Errorf("plain gc deleted the checkpoints:\n%s", r.stdout)
	}
	if r = mustSucceed(t, dir, "cache", "gc", "--checkpoints"); !strings.Contains(r.stdout, "removed every checkpoint") {
		t.Errorf("gc --checkpoints says:\n%s", r.stdout)
	}
	if r = mustSucceed(t, dir, "plan", "--set", "vars.epochs=24", file); strings.Contains(r.stdout, "resume") {
		t.Errorf("plan still resumes after gc --checkpoints:\n%s", r.stdout)
	}

	// How often checkpoints are saved is not part of the key.
	every := strings.Replace(resumePipeline, "checkpoint_every: 1", "checkpoint_every: 5", 1)
	if err := os.WriteFile(file, []byte(every), 0o644); err != nil {
		t.Fatal(err)
	}
	if r = mustSucceed(t, dir, "plan", file); strings.Contains(r.stdout, " run ") {
		t.Errorf("plan after changing checkpoint_every runs something:\n%s", r.stdout)
	}
}

// killTrainingAt starts `run --json` on file and SIGKILLs it once instance
// fit has finished at least epoch epochs, returning the epoch it saw. It
// fails t if the run ends first.
func killTrainingAt(t *testing.T, dir, file string, epoch int) int64 {
	t.Helper()
	e, ok := killRunWhen(t, dir, []string{file}, 2*time.Minute, func(e pipeline.Event) bool {
		return e.Instance == "fit" && e.Kind == pipeline.EventProgress && e.Done >= int64(epoch) && e.Done < e.Total
	})
	if !ok {
		t.Fatalf("training did not reach epoch %d before it ended", epoch)
	}
	ckpts, _ := filepath.Glob(filepath.Join(dir, ".sglr", "checkpoints", "*", "*.ckpt"))
	if len(ckpts) == 0 {
		t.Fatal("no checkpoint after the kill")
	}
	return e.Done
}

// killRunWhen starts `run --json ARGS...` in dir and SIGKILLs it at the
// first event that until accepts, or after timeout. It returns that event,
// and false when none came (the run ended or timed out first).
func killRunWhen(t *testing.T, dir string, args []string, timeout time.Duration, until func(pipeline.Event) bool) (pipeline.Event, bool) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"run", "--json"}, args...)...)
	cmd.Dir = dir
	cmd.Env = testEnv()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	seen := make(chan pipeline.Event, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var e pipeline.Event
			if json.Unmarshal(sc.Bytes(), &e) == nil && until(e) {
				seen <- e
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout) // keep the pipe flowing until the kill
		close(seen)
	}()
	var e pipeline.Event
	ok := false
	select {
	case e, ok = <-seen:
	case <-time.After(timeout):
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	return e, ok
}

// compareOutputs lists the outputs whose digests differ, or "".
func compareOutputs(want, got map[string]artifacts.Digest) string {
	var b strings.Builder
	for k, w := range want {
		if got[k] != w {
			b.WriteString("  " + k + ": " + string(got[k]) + ", uninterrupted " + string(w) + "\n")
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			b.WriteString("  " + k + ": only in the resumed run\n")
		}
	}
	return b.String()
}
