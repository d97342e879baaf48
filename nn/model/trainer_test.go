package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/nn/internal/vec"
)

// TestTrainerWorkersAgree runs the same step with 1 and 2 workers on models
// without BatchNorm: loss, logits and gradients must agree up to rounding.
func TestTrainerWorkersAgree(t *testing.T) {
	cases := []struct {
		name   string
		arch   Arch
		n      int
		trades bool
	}{
		{"mlp even split", tinyMLP(), 6, false},
		{"cnn odd split", tinyCNN(), 5, false},
		{"cnn TRADES", tinyCNN(), 5, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(4, 4))
			w := randomWeights(t, tc.arch, 6)
			x := toFloat32(randomSlice(rng, tc.n*tc.arch.InputSize()))
			xAdv := toFloat32(randomSlice(rng, len(x)))
			target := toFloat32(softTargets(rng, tc.n, tc.arch.Classes))
			type result struct {
				loss   float64
				logits []float32
				grads  [][]float32
			}
			run := func(workers int) result {
				tr, err := NewTrainer(w, 8, workers)
				if err != nil {
					t.Fatal(err)
				}
				var loss float64
				var logits []float32
				if tc.trades {
					loss, logits, err = tr.StepTRADES(x, xAdv, target, tc.n, 2)
				} else {
					loss, logits, err = tr.Step(x, target, tc.n)
				}
				if err != nil {
					t.Fatal(err)
				}
				r := result{loss: loss, logits: append([]float32(nil), logits...)}
				for _, g := range tr.Grads() {
					r.grads = append(r.grads, append([]float32(nil), g...))
				}
				return r
			}
			one, two := run(1), run(2)
			if math.Abs(one.loss-two.loss) > 1e-5*math.Max(1, one.loss) {
				t.Errorf("loss: 1 worker %g, 2 workers %g", one.loss, two.loss)
			}
			closeSlices(t, "logits", two.logits, one.logits, 1e-5)
			for i := range one.grads {
				closeSlices(t, w.Params[i].Name, two.grads[i], one.grads[i], 1e-5)
			}
		})
	}
}

// TestTrainerAveragesRunningStats checks that BatchNorm running statistics
// end up as the sub-batch-weighted mean of the replicas' updates.
func TestTrainerAveragesRunningStats(t *testing.T) {
	arch := tinyResNet(25)
	rng := rand.New(rand.NewPCG(9, 9))
	w := randomWeights(t, arch, 2)
	const n = 5
	x := toFloat32(randomSlice(rng, n*arch.InputSize()))
	target := toFloat32(softTargets(rng, n, arch.Classes))
	tr, err := NewTrainer(w, n, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := tr.Step(x, target, n); err != nil {
		t.Fatal(err)
	}
	// The replicas ran on samples [0,3) and [3,5).
	d, k := arch.InputSize(), arch.Classes
	want := make(map[string][]float64)
	for _, part := range []struct{ lo, hi int }{{0, 3}, {3, 5}} {
		net, err := NewNet(w, part.hi-part.lo, PurposeTrain, NetOptions{Mode: Train})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := net.TrainStep(x[part.lo*d:part.hi*d], target[part.lo*k:part.hi*k], nil); err != nil {
			t.Fatal(err)
		}
		share := float64(part.hi-part.lo) / n
		for _, p := range net.Weights().Params {
			if p.Buffer {
				acc := want[p.Name]
				if acc == nil {
					acc = make([]float64, len(p.Data))
				}
				for j, v := range p.Data {
					if p.Shape == nil || len(p.Shape) == 0 {
						acc[j] = float64(v)
					} else {
						acc[j] += share * float64(v)
					}
				}
				want[p.Name] = acc
			}
		}
	}
	for _, p := range tr.Weights().Params {
		if !p.Buffer {
			continue
		}
		for j, v := range p.Data {
			if math.Abs(float64(v)-want[p.Name][j]) > 1e-5 {
				t.Fatalf("%s[%d] = %g, want %g", p.Name, j, v, want[p.Name][j])
			}
		}
	}
}

func TestTrainerRejectsBadInput(t *testing.T) {
	w, err := Init(tinyMLP(), 0)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTrainer(w, 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	d, k := w.Arch.InputSize(), w.Arch.Classes
	cases := []struct {
		name string
		do   func() error
		want string
	}{
		{"too many samples", func() error { _, _, err := tr.Step(make([]float32, 5*d), make([]float32, 5*k), 5); return err }, "5 samples, want 1 to 4"},
		{"zero samples", func() error { _, _, err := tr.Step(nil, nil, 0); return err }, "0 samples, want 1 to 4"},
		{"short targets", func() error { _, _, err := tr.Step(make([]float32, 2*d), make([]float32, k), 2); return err },
			fmt.Sprintf("inputs have %d values, targets %d (and x_adv 0)", 2*d, k)},
		{"short x_adv", func() error {
			_, _, err := tr.StepTRADES(make([]float32, 2*d), make([]float32, d), make([]float32, 2*k), 2, 1)
			return err
		}, fmt.Sprintf("(and x_adv %d)", d)},
		{"zero workers", func() error { _, err := NewTrainer(w, 4, 0); return err }, "workers must be positive, got 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.do(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// tradesTorchScript computes the TRADES objective with soft targets in
// PyTorch, float64, for each case of a JSON list on stdin (an MLP's weights
// by state_dict name, x, x_adv [B,D], target [B,K], beta):
// mean_i −Σ_k T·log softmax(f(x)) + beta·KL(softmax f(x) ‖ softmax f(x_adv))
// with F.kl_div's batchmean, the form of the TRADES reference. It prints,
// per case, the loss and the gradient of every parameter as JSON.
const tradesTorchScript = `
import json, sys
import torch
import torch.nn.functional as F
torch.set_default_dtype(torch.float64)
results = []
for spec in json.load(sys.stdin):
    w = {k: torch.tensor(v, requires_grad=True) for k, v in spec["weights"].items()}
    def forward(x):
        out = x
        for i in range(spec["layers"]):
            out = F.relu(F.linear(out, w["layers.%d.weight" % i], w["layers.%d.bias" % i]))
        return F.linear(out, w["head.weight"], w["head.bias"])
    x, x_adv, target = (torch.tensor(spec[k]) for k in ("x", "x_adv", "target"))
    logits, logits_adv = forward(x), forward(x_adv)
    natural = (-target * F.log_softmax(logits, dim=1)).sum(1).mean()
    robust = F.kl_div(F.log_softmax(logits_adv, dim=1), F.softmax(logits, dim=1), reduction="batchmean")
    loss = natural + spec["beta"] * robust
    loss.backward()
    results.append({"loss": loss.item(), "grads": {k: v.grad.flatten().tolist() for k, v in w.items()}})
json.dump(results, sys.stdout)
`

// TestTrainerTRADESMatchesPyTorch checks Trainer.StepTRADES with soft
// targets (the TRADES+SGLR step: CE(f(x), S) + β·KL(p(x) ‖ p(x'))), split
// over 1 and 2 workers in float32, against PyTorch in float64 on the same
// MLP weights and batch: the loss and every weight gradient. The target rows
// are random distributions or, in one case, the softmax of the model's own
// clean logits (the SGLR fixed point, where the natural term's gradient
// vanishes and only the KL term's is left). It needs /usr/bin/python3 with
// torch and skips otherwise.
func TestTrainerTRADESMatchesPyTorch(t *testing.T) {
	if out, err := exec.Command(torchPython, "-c", "import torch").CombinedOutput(); err != nil {
		t.Skipf("PyTorch cross-check skipped: %s cannot import torch (%v: %s)", torchPython, err, strings.TrimSpace(string(out)))
	}
	arch := Arch{Kind: KindMLP, Input: []int{1, 4, 3}, Classes: 5, Hidden: []int{6, 4}}
	const n, beta = 5, 6.0
	type result struct {
		loss  float64
		grads [][]float32
	}
	cases := []struct {
		name     string
		selfSoft bool // targets = softmax of the model's clean logits
		workers  int
		got      result
	}{
		{name: "random soft targets, 1 worker", workers: 1},
		{name: "random soft targets, 2 workers", workers: 2},
		{name: "own clean predictions as targets, 2 workers", selfSoft: true, workers: 2},
	}
	w := randomWeights(t, arch, 5)
	var specs []map[string]any
	for i := range cases {
		tc := &cases[i]
		rng := rand.New(rand.NewPCG(21, uint64(i)))
		x := toFloat32(randomSlice(rng, n*arch.InputSize()))
		xAdv := make([]float32, len(x))
		for j, v := range x {
			xAdv[j] = v + float32(0.2*(rng.Float64()-0.5))
		}
		target := toFloat32(softTargets(rng, n, arch.Classes))
		if tc.selfSoft {
			ev, err := NewEvaluator(w, n, 1)
			if err != nil {
				t.Fatal(err)
			}
			logits := make([]float32, n*arch.Classes)
			if err := ev.Logits(x, n, logits); err != nil {
				t.Fatal(err)
			}
			for i := range n {
				k := arch.Classes
				vec.Softmax(logits[i*k:(i+1)*k], target[i*k:(i+1)*k])
			}
		}
		tr, err := NewTrainer(w, n, tc.workers)
		if err != nil {
			t.Fatal(err)
		}
		loss, _, err := tr.StepTRADES(x, xAdv, target, n, beta)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		tc.got.loss = loss
		for _, g := range tr.Grads() {
			tc.got.grads = append(tc.got.grads, append([]float32(nil), g...))
		}
		specs = append(specs, tradesTorchSpec(w, x, xAdv, target, n, beta))
	}
	want := tradesTorch(t, specs)
	if len(want) != len(cases) {
		t.Fatalf("PyTorch returned %d results for %d cases", len(want), len(cases))
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ref := want[i]
			if d := math.Abs(tc.got.loss - ref.Loss); d > crosscheckTol32*math.Max(1, math.Abs(ref.Loss)) {
				t.Errorf("loss %.7g, PyTorch %.7g", tc.got.loss, ref.Loss)
			}
			for pi, p := range w.Params {
				refGrad, ok := ref.Grads[p.Name]
				if !ok || len(refGrad) != len(tc.got.grads[pi]) {
					t.Fatalf("PyTorch gradient of %s has %d values, want %d", p.Name, len(refGrad), len(tc.got.grads[pi]))
				}
				scale := 0.0
				for _, v := range refGrad {
					scale = math.Max(scale, math.Abs(v))
				}
				for j, g := range tc.got.grads[pi] {
					if d := math.Abs(float64(g) - refGrad[j]); d > crosscheckTol32*(math.Abs(refGrad[j])+scale) {
						t.Fatalf("d loss/d %s[%d] = %.7g, PyTorch %.7g", p.Name, j, g, refGrad[j])
					}
				}
			}
		})
	}
}

// tradesTorchResult is what tradesTorchScript prints for one case.
type tradesTorchResult struct {
	Loss  float64              `json:"loss"`
	Grads map[string][]float64 `json:"grads"`
}

// tradesTorchSpec is one case of tradesTorchScript's input: the MLP weights
// w and the batch.
func tradesTorchSpec(w *Weights, x, xAdv, target []float32, n int, beta float64) map[string]any {
	d, k := w.Arch.InputSize(), w.Arch.Classes
	weights := map[string]any{}
	for _, p := range w.Params {
		if len(p.Shape) == 2 {
			weights[p.Name] = matrixRows(p.Data, p.Shape[0], p.Shape[1])
		} else {
			weights[p.Name] = p.Data
		}
	}
	return map[string]any{
		"weights": weights, "layers": len(w.Arch.Hidden), "beta": beta,
		"x": matrixRows(x, n, d), "x_adv": matrixRows(xAdv, n, d), "target": matrixRows(target, n, k),
	}
}

// tradesTorch runs tradesTorchScript on the cases in one Python process.
func tradesTorch(t *testing.T, specs []map[string]any) []tradesTorchResult {
	t.Helper()
	in, err := json.Marshal(specs)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(torchPython, "-c", tradesTorchScript)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("PyTorch TRADES reference: %v\n%s", err, stderr.Bytes())
	}
	var res []tradesTorchResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("PyTorch TRADES reference output %q: %v", out, err)
	}
	return res
}

// matrixRows splits a row-major [r,c] slice into its rows.
func matrixRows(v []float32, r, c int) [][]float32 {
	out := make([][]float32, r)
	for i := range out {
		out[i] = v[i*c : (i+1)*c]
	}
	return out
}
