package main

import (
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

// pgdCrosscheckPython is the interpreter with PyTorch (Debian's
// python3-torch, which CI installs); the python3 on PATH may lack it.
const pgdCrosscheckPython = "/usr/bin/python3"

// pgdCrosscheckScript is the PyTorch PGD reference, relative to this package.
var pgdCrosscheckScript = filepath.Join("..", "..", "bench", "pgd_crosscheck.py")

// pgdCrosscheckPipeline adversarially trains a small MLP on the embedded
// Fashion-MNIST subset and measures its clean and PGD-20 test accuracy.
const pgdCrosscheckPipeline = `name: pgd-crosscheck
seed: 0
stages:
  data:
    uses: load
    with:
      dataset: fashion-mnist-mini
      train: 1000
      val: 200
      test: 500
  train:
    uses: train
    inputs:
      train: data.train
      val: data.val
    with:
      model: mlp
      hidden: [64, 64]
      epochs: 15
      weight_decay: 0
      method: pgd-at
      eps: 0.1
      step: 0.025
      steps: 5
      val_steps: 5
      workers: 2
  eval:
    uses: eval
    inputs:
      models: train.best
      dataset: data.test
    with:
      attacks: [clean, pgd]
      eps: 0.1
      step: 0.025
      steps: 20
      workers: 2
`

// TestPGDMatchesPyTorch is the cross-check the README quotes: a model
// exported with `export --format npz` has, under a PyTorch PGD-20 with the
// same eps, step and steps, a robust accuracy within 1.5 points of ours, and
// the same clean accuracy (the engines' logits agree to 1e-4).
func TestPGDMatchesPyTorch(t *testing.T) {
	requireTorch(t)
	const (
		maxRobustGap = 0.015 // 1.5 points: the random starts differ
		maxCleanGap  = 0.002 // 0.2 points: only ties at float rounding may differ
	)
	dir, file := writePipeline(t, pgdCrosscheckPipeline)
	mustSucceed(t, dir, "run", file)

	ours := evalAccuracies(t, dir)
	out := t.TempDir()
	model := filepath.Join(out, "model.npz")
	data := filepath.Join(out, "test-npy")
	mustSucceed(t, dir, "export", "train.best", "--format", "npz", "-o", model)
	mustSucceed(t, dir, "export", "data.test", "--format", "npy", "-o", data)
	arch := modelArch(t, dir, "train.best")

	torch := runPGDCrosscheck(t, model, arch, data, "--eps", "0.1", "--step", "0.025", "--steps", "20", "--seed", "0")
	t.Logf("clean accuracy: sglr-pipe %.4f, PyTorch %.4f", ours["clean"], torch.CleanAcc)
	t.Logf("PGD-20 accuracy (eps 0.1, step 0.025): sglr-pipe %.4f, PyTorch %.4f (n %d)", ours["pgd"], torch.PGDAcc, torch.N)

	if torch.N != 500 {
		t.Errorf("PyTorch evaluated %d samples, want the 500 of data.test", torch.N)
	}
	checks := []struct {
		name        string
		ours, torch float64
		maxGap      float64
	}{
		{"clean", ours["clean"], torch.CleanAcc, maxCleanGap},
		{"pgd-20", ours["pgd"], torch.PGDAcc, maxRobustGap},
	}
	for _, c := range checks {
		if gap := math.Abs(c.ours - c.torch); gap > c.maxGap {
			t.Errorf("%s accuracy: sglr-pipe %.4f, PyTorch %.4f: gap %.2f points exceeds %.2f",
				c.name, c.ours, c.torch, 100*gap, 100*c.maxGap)
		}
	}
	// The attack must do something, or the comparison proves nothing.
	if ours["pgd"] >= ours["clean"] || torch.PGDAcc >= torch.CleanAcc {
		t.Errorf("PGD-20 does not lower accuracy: sglr-pipe %.4f → %.4f, PyTorch %.4f → %.4f",
			ours["clean"], ours["pgd"], torch.CleanAcc, torch.PGDAcc)
	}
	if ours["clean"] < 0.5 {
		t.Errorf("clean accuracy %.4f: the model did not learn, so the cross-check is weak", ours["clean"])
	}
}

// TestPGDCrosscheckScriptRejectsBadInputs checks that the reference script
// reports a mismatched or missing input with a message, not a traceback.
func TestPGDCrosscheckScriptRejectsBadInputs(t *testing.T) {
	requireTorch(t)
	dir, file := writePipeline(t, `name: tiny
stages:
  data:
    uses: load
    with: {dataset: synthetic, train: 40, val: 10, test: 20, classes: 3, shape: [1, 4, 4]}
  train:
    uses: train
    inputs: {train: data.train, val: data.val}
    with: {model: mlp, hidden: [4], epochs: 1, val_steps: 0, workers: 1}
`)
	mustSucceed(t, dir, "run", file)
	out := t.TempDir()
	model := filepath.Join(out, "model.npz")
	data := filepath.Join(out, "test-npy")
	mustSucceed(t, dir, "export", "train.best", "--format", "npz", "-o", model)
	mustSucceed(t, dir, "export", "data.test", "--format", "npy", "-o", data)
	arch := modelArch(t, dir, "train.best")

	tests := []struct {
		name              string
		model, arch, data string
		want              string // in stderr
	}{
		{"more layers", model, `{"kind":"mlp","input":[1,4,4],"classes":3,"hidden":[4,4]}`, data, "missing ['layers.1.weight'"},
		{"other width", model, `{"kind":"mlp","input":[1,4,4],"classes":3,"hidden":[5]}`, data, "layers.0.weight has shape [4, 16]"},
		{"missing data", model, arch, filepath.Join(out, "nope"), "nope"},
		{"arch not json", model, filepath.Join(out, "no-arch.json"), data, "neither JSON text nor a readable file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(pgdCrosscheckPython, pgdCrosscheckScript, tc.model, tc.arch, tc.data)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 1 {
				t.Fatalf("exit %v, want 1\nstderr: %s", err, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) || strings.Contains(stderr.String(), "Traceback") {
				t.Errorf("stderr %q: want a message mentioning %q and no traceback", stderr.String(), tc.want)
			}
		})
	}
}

// pgdCrosscheckResult is the JSON line bench/pgd_crosscheck.py prints.
type pgdCrosscheckResult struct {
	CleanAcc float64 `json:"clean_acc"`
	PGDAcc   float64 `json:"pgd20_acc"`
	N        int     `json:"n"`
}

// requireTorch skips the test unless pgdCrosscheckPython imports torch.
func requireTorch(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("PyTorch cross-check skipped in -short mode")
	}
	out, err := exec.Command(pgdCrosscheckPython, "-c", "import torch, numpy").CombinedOutput()
	if err != nil {
		t.Skipf("PyTorch cross-check skipped: %s cannot import torch and numpy (%v: %s); install python3-torch",
			pgdCrosscheckPython, err, strings.TrimSpace(string(out)))
	}
}

// evalAccuracies reads eval.metrics of the latest run in dir's store as
// attack → accuracy (one model only).
func evalAccuracies(t *testing.T, dir string) map[string]float64 {
	t.Helper()
	r := mustSucceed(t, dir, "export", "eval.metrics", "--format", "csv")
	rows, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	if err != nil || len(rows) < 2 {
		t.Fatalf("eval.metrics as CSV (%v):\n%s", err, r.stdout)
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	attackCol, okAttack := col["attack"]
	accCol, okAcc := col["accuracy"]
	if !okAttack || !okAcc {
		t.Fatalf("eval.metrics lacks the attack or accuracy column: header %v", rows[0])
	}
	acc := map[string]float64{}
	for _, row := range rows[1:] {
		v, err := strconv.ParseFloat(row[accCol], 64)
		if err != nil {
			t.Fatalf("eval.metrics row %v: accuracy: %v", row, err)
		}
		if _, dup := acc[row[attackCol]]; dup {
			t.Fatalf("eval.metrics has two %s rows: want one model", row[attackCol])
		}
		acc[row[attackCol]] = v
	}
	for _, attack := range []string{"clean", "pgd"} {
		if _, ok := acc[attack]; !ok {
			t.Fatalf("eval.metrics has no %s row:\n%s", attack, r.stdout)
		}
	}
	return acc
}

// modelArch returns the architecture spec JSON (artifacts.MetaArch) of the
// model ref.
func modelArch(t *testing.T, dir, ref string) string {
	t.Helper()
	r := mustSucceed(t, dir, "show", ref, "--json", "--head", "0")
	var shown struct {
		Kind string            `json:"kind"`
		Meta map[string]string `json:"meta"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &shown); err != nil {
		t.Fatalf("show %s --json: %v", ref, err)
	}
	arch := shown.Meta[artifacts.MetaArch]
	if shown.Kind != artifacts.KindModel || arch == "" {
		t.Fatalf("show %s: kind %q, sglr.arch %q: want a model with its architecture", ref, shown.Kind, arch)
	}
	return arch
}

// runPGDCrosscheck runs the PyTorch reference and decodes its result.
func runPGDCrosscheck(t *testing.T, model, arch, data string, flags ...string) pgdCrosscheckResult {
	t.Helper()
	args := append([]string{pgdCrosscheckScript, model, arch, data}, flags...)
	cmd := exec.Command(pgdCrosscheckPython, args...)
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=2")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\nstderr:\n%s", pgdCrosscheckPython, strings.Join(args, " "), err, stderr.String())
	}
	var res pgdCrosscheckResult
	if err := json.Unmarshal(stdout, &res); err != nil {
		t.Fatalf("pgd_crosscheck.py printed %q: %v", stdout, err)
	}
	return res
}
