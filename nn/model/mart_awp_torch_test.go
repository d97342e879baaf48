package model

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The PyTorch cross-check of MART and AWP: the Trainer in float32 (1 or 2
// workers) against bench/mart_awp_crosscheck.py in float64 on the same
// weights and batch, with crosscheckTol32. MART: the loss, every weight
// gradient and (BatchNorm, Train mode) the running statistics. AWP: two
// consecutive training steps on one batch, each the reference's proxy step,
// perturbation and SGD step (momentum 0.9, weight decay 5e-4): the losses
// and gradients at the perturbed weights and the whole state after the
// second step. The adversarial inputs are given, so no attack randomness
// enters. It needs /usr/bin/python3 with torch and skips otherwise.

// martAWPTorchCase is one cross-check case.
type martAWPTorchCase struct {
	name    string
	arch    Arch
	obj     Objective
	oneHot  bool
	workers int
	gamma   float64 // AWP when > 0 (two SGD steps), else one loss evaluation
}

// martAWPTorchResult is what the script prints for one case.
type martAWPTorchResult struct {
	Losses []float64              `json:"losses"`
	Grads  []map[string][]float64 `json:"grads"`
	State  map[string][]float64   `json:"state"`
}

// torchObjective names obj for the script.
func torchObjective(obj Objective) string {
	switch obj.Purpose {
	case PurposeTrainTRADES:
		return "trades"
	case PurposeTrainMART:
		return "mart"
	}
	return "ce"
}

// awpTestSGD is torch.optim.SGD (dampening 0, no Nesterov) in float32, as
// nn/optim computes it (nn/optim imports this package, so the test cannot).
type awpTestSGD struct {
	lr, momentum, wd float32
	bufs             [][]float32
}

func (o *awpTestSGD) step(params []*Param, grads [][]float32) {
	if o.bufs == nil {
		o.bufs = make([][]float32, len(params))
	}
	for i, p := range params {
		if p.Buffer || grads[i] == nil {
			continue
		}
		first := o.bufs[i] == nil
		if first {
			o.bufs[i] = make([]float32, len(p.Data))
		}
		for j, w := range p.Data {
			d := grads[i][j] + float32(o.wd*w)
			if first {
				o.bufs[i][j] = d
			} else {
				o.bufs[i][j] = float32(o.momentum*o.bufs[i][j]) + d
			}
			p.Data[j] -= float32(o.lr * o.bufs[i][j])
		}
	}
}

func TestMARTAndAWPMatchPyTorch(t *testing.T) {
	if out, err := exec.Command(torchPython, "-c", "import torch").CombinedOutput(); err != nil {
		t.Skipf("PyTorch cross-check skipped: %s cannot import torch (%v: %s)", torchPython, err, strings.TrimSpace(string(out)))
	}
	script, err := filepath.Abs(filepath.Join("..", "..", "bench", "mart_awp_crosscheck.py"))
	if err != nil {
		t.Fatal(err)
	}
	mlp := Arch{Kind: KindMLP, Input: []int{1, 4, 3}, Classes: 5, Hidden: []int{6, 4}}
	resnet := Arch{Kind: KindPreActResNet18, Input: []int{2, 33, 33}, Classes: 3, Width: 2}
	mart, trades, ce := Objective{Purpose: PurposeTrainMART, Beta: 6}, Objective{Purpose: PurposeTrainTRADES, Beta: 6}, Objective{Purpose: PurposeTrain}
	cases := []martAWPTorchCase{
		{name: "mart mlp hard labels", arch: mlp, obj: mart, oneHot: true, workers: 1},
		{name: "mart mlp soft targets, 2 workers", arch: mlp, obj: mart, workers: 2},
		{name: "mart batchnorm hard labels", arch: resnet, obj: mart, oneHot: true, workers: 1},
		{name: "awp (pgd-at) mlp, 2 workers", arch: mlp, obj: ce, oneHot: true, workers: 2, gamma: 0.01},
		{name: "awp (pgd-at) batchnorm", arch: resnet, obj: ce, oneHot: true, workers: 1, gamma: 0.01},
		{name: "trades-awp batchnorm", arch: resnet, obj: trades, oneHot: true, workers: 1, gamma: 0.005},
		{name: "mart-awp mlp soft targets", arch: mlp, obj: mart, workers: 1, gamma: 0.005},
	}
	const n, lr = 4, 0.1
	var specs []map[string]any
	got := make([]martAWPTorchResult, len(cases))
	for ci, tc := range cases {
		w := crosscheckWeights(t, tc.arch, uint64(ci+1))
		rng := rand.New(rand.NewPCG(31, uint64(ci)))
		x := toFloat32(randomSlice(rng, n*tc.arch.InputSize()))
		xAdv := make([]float32, len(x))
		for j, v := range x {
			xAdv[j] = min(1, max(0, v+float32(0.06*(rng.Float64()-0.5))))
		}
		target := crosscheckTargets(rng, n, tc.arch.Classes)
		if tc.oneHot {
			target = toFloat32(oneHotTargets(rng, n, tc.arch.Classes))
		}
		spec := map[string]any{"arch": tc.arch, "mode": "train", "objective": torchObjective(tc.obj), "beta": tc.obj.Beta,
			"state": stateLists(w), "x": x, "x_adv": xAdv, "target": target}
		xIn := x
		if tc.obj.Purpose == PurposeTrain {
			xIn, spec["x"] = xAdv, xAdv // pgd-at trains on x'
		}
		tr, err := NewTrainer(w, n, tc.workers)
		if err != nil {
			t.Fatal(err)
		}
		steps := 1
		if tc.gamma > 0 {
			steps = 2
			spec["steps"], spec["awp"] = steps, map[string]any{"gamma": tc.gamma, "proxy_lr": AWPProxyLR}
			spec["sgd"] = map[string]any{"lr": lr, "momentum": 0.9, "weight_decay": 5e-4}
		}
		sgd := &awpTestSGD{lr: lr, momentum: 0.9, wd: 5e-4}
		for range steps {
			var loss float64
			if tc.gamma > 0 {
				loss, _, err = tr.StepAWP(tc.obj, xIn, xAdv, target, n, tc.gamma)
			} else {
				loss, _, err = tr.StepObjective(tc.obj, xIn, xAdv, target, n)
			}
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			got[ci].Losses = append(got[ci].Losses, loss)
			grads := map[string][]float64{}
			for i, g := range tr.Grads() {
				if g != nil {
					grads[w.Params[i].Name] = toFloat64s(g)
				}
			}
			got[ci].Grads = append(got[ci].Grads, grads)
			if tc.gamma > 0 {
				sgd.step(tr.Weights().Params, tr.Grads())
			}
		}
		got[ci].State = map[string][]float64{}
		for _, p := range tr.Weights().Params {
			got[ci].State[p.Name] = toFloat64s(p.Data)
		}
		specs = append(specs, spec)
	}
	want := runMARTAWPTorch(t, script, specs)
	if len(want) != len(cases) {
		t.Fatalf("PyTorch returned %d results for %d cases", len(want), len(cases))
	}
	for ci, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { compareMARTAWP(t, got[ci], want[ci]) })
	}
}

// compareMARTAWP compares one case's results with PyTorch's.
func compareMARTAWP(t *testing.T, got, want martAWPTorchResult) {
	if len(want.Losses) != len(got.Losses) || len(want.Grads) != len(got.Grads) {
		t.Fatalf("PyTorch ran %d steps, we ran %d", len(want.Losses), len(got.Losses))
	}
	for s := range got.Losses {
		compareArrays(t, "loss", []float64{got.Losses[s]}, []float64{want.Losses[s]}, crosscheckTol32)
		if len(want.Grads[s]) != len(got.Grads[s]) {
			t.Errorf("step %d: PyTorch has %d gradients, we have %d", s+1, len(want.Grads[s]), len(got.Grads[s]))
		}
		for name, g := range got.Grads[s] {
			compareArrays(t, "grad."+name, g, want.Grads[s][name], crosscheckTol32)
		}
	}
	for name, v := range got.State {
		ref, ok := want.State[name]
		if !ok {
			t.Errorf("PyTorch has no state entry %s", name)
			continue
		}
		compareArrays(t, "state."+name, v, ref, crosscheckTol32)
	}
}

// stateLists is w's state_dict as the script reads it.
func stateLists(w *Weights) map[string][]float32 {
	out := map[string][]float32{}
	for _, p := range w.Params {
		out[p.Name] = p.Data
	}
	return out
}

// runMARTAWPTorch runs the script on the cases in one Python process.
func runMARTAWPTorch(t *testing.T, script string, specs []map[string]any) []martAWPTorchResult {
	t.Helper()
	in, err := json.Marshal(specs)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(torchPython, script)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bench/mart_awp_crosscheck.py: %v\n%s", err, stderr.Bytes())
	}
	var res []martAWPTorchResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("bench/mart_awp_crosscheck.py output: %v", err)
	}
	for _, r := range res {
		for _, l := range r.Losses {
			if math.IsNaN(l) {
				t.Fatal("PyTorch loss is NaN")
			}
		}
	}
	return res
}
