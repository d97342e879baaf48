package model

import (
	"math"
	"math/rand/v2"
	"testing"
)

// AWP: the rescaled direction on a case computed by hand, and Trainer.StepAWP
// against the same algorithm spelled out with plain steps, bit for bit. The
// PyTorch cross-check of a whole AWP training step is in
// mart_awp_torch_test.go.

func TestAWPDirectionByHand(t *testing.T) {
	w := &Weights{Params: []*Param{
		{Name: "layers.0.weight", Shape: []int{2, 2}, Data: []float32{3, 0, 0, 4}},      // ‖w‖ = 5
		{Name: "layers.0.bias", Shape: []int{2}, Data: []float32{1, 1}},                 // 1-D: left alone
		{Name: "bn1.weight", Shape: []int{2}, Data: []float32{1, 2}},                    // 1-D: left alone
		{Name: "bn1.running_var", Shape: []int{2}, Data: []float32{1, 1}, Buffer: true}, // buffer
		{Name: "conv1.weight", Shape: []int{1, 1, 1, 2}, Data: []float32{0.6, 0.8}},     // ‖w‖ = 1
		{Name: "table", Shape: []int{1, 2}, Data: []float32{1, 1}},                      // no "weight" in the name
		{Name: "head.weight", Shape: []int{1, 2}, Data: []float32{2, 0}},                // zero gradient
	}}
	grads := [][]float32{{1, 1, 1, 1}, {5, 5}, {5, 5}, nil, {0, -2}, {3, 3}, {0, 0}}
	v := make([][]float32, len(w.Params))
	for i, p := range w.Params {
		v[i] = make([]float32, len(p.Data))
	}
	if err := AWPDirection(w, grads, AWPProxyLR, v); err != nil {
		t.Fatal(err)
	}
	// d = 0.01·g; v = ‖w‖/‖d‖·d: ‖d‖ = 0.02 → 5/0.02·0.01 = 2.5 each; the
	// conv's d = (0, −0.02) → v = (0, −1); a zero gradient gives v = 0.
	want := [][]float32{{2.5, 2.5, 2.5, 2.5}, {0, 0}, {0, 0}, {0, 0}, {0, -1}, {0, 0}, {0, 0}}
	for i, p := range w.Params {
		for j := range v[i] {
			if math.Abs(float64(v[i][j]-want[i][j])) > 1e-6 {
				t.Errorf("%s: direction %v, want %v", p.Name, v[i], want[i])
				break
			}
		}
	}
	// The norm of each direction is the norm of its tensor.
	if err := AWPDirection(w, grads, 0.1, v); err != nil {
		t.Fatal(err)
	}
	if math.Abs(float64(v[0][0])-2.5) > 1e-6 {
		t.Errorf("proxy learning rate 0.1 changed the direction to %v: the rescaling should cancel it", v[0])
	}
	if err := AWPDirection(w, grads[:3], AWPProxyLR, v); err == nil {
		t.Error("AWPDirection accepted too few gradients")
	}
	if err := AWPDirection(w, grads, 0, v); err == nil {
		t.Error("AWPDirection accepted a zero proxy learning rate")
	}
}

// awpCase is one Trainer.StepAWP comparison.
type awpCase struct {
	name    string
	arch    Arch
	obj     Objective
	workers int
}

func TestTrainerStepAWPIsTheSpelledOutAlgorithm(t *testing.T) {
	const n, gamma = 4, 0.01
	for _, tc := range []awpCase{
		{"pgd-at mlp, 2 workers", tinyMLP(), Objective{Purpose: PurposeTrain}, 2},
		{"trades resnet", tinyResNet(25), Objective{Purpose: PurposeTrainTRADES, Beta: 6}, 1},
		{"mart resnet, 2 workers", tinyResNet(25), Objective{Purpose: PurposeTrainMART, Beta: 6}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := randomWeights(t, tc.arch, 21)
			rng := rand.New(rand.NewPCG(22, 23))
			x := toFloat32(randomSlice(rng, n*tc.arch.InputSize()))
			xAdv := toFloat32(randomSlice(rng, len(x)))
			target := toFloat32(softTargets(rng, n, tc.arch.Classes))
			step := func(start *Weights) (*Trainer, float64) {
				tr, err := NewTrainer(start, n, tc.workers)
				if err != nil {
					t.Fatal(err)
				}
				loss, _, err := tr.StepObjective(tc.obj, x, xAdv, target, n)
				if err != nil {
					t.Fatal(err)
				}
				return tr, loss
			}
			// Spelled out: the gradient at w, the direction, a plain step at
			// w + γ·v.
			proxy, _ := step(w)
			v := make([][]float32, len(w.Params))
			for i, p := range w.Params {
				v[i] = make([]float32, len(p.Data))
			}
			if err := AWPDirection(w, proxy.Grads(), AWPProxyLR, v); err != nil {
				t.Fatal(err)
			}
			perturbed := w.Clone()
			moved := 0
			for i, p := range perturbed.Params {
				if AWPPerturbed(p) {
					moved++
					for j := range p.Data {
						p.Data[j] += float32(float32(gamma) * v[i][j])
					}
				}
			}
			if moved == 0 {
				t.Fatal("no tensor is perturbed")
			}
			want, wantLoss := step(perturbed)

			got, err := NewTrainer(w, n, tc.workers)
			if err != nil {
				t.Fatal(err)
			}
			loss, _, err := got.StepAWP(tc.obj, x, xAdv, target, n, gamma)
			if err != nil {
				t.Fatal(err)
			}
			if loss != wantLoss {
				t.Errorf("loss %v, plain step at the perturbed weights %v", loss, wantLoss)
			}
			for i, p := range got.Weights().Params {
				ref := want.Weights().Params[i].Data // buffers: updated once, at w + γ·v
				if !p.Buffer {
					ref = w.Params[i].Data // weights: restored bit for bit
				}
				for j, x := range p.Data {
					if math.Float32bits(x) != math.Float32bits(ref[j]) {
						t.Fatalf("%s[%d] = %v after the AWP step, want %v", p.Name, j, x, ref[j])
					}
				}
				if g := got.Grads()[i]; g != nil {
					for j, x := range g {
						if math.Float32bits(x) != math.Float32bits(want.Grads()[i][j]) {
							t.Fatalf("grad %s[%d] = %v, at the perturbed weights %v", p.Name, j, x, want.Grads()[i][j])
						}
					}
				}
			}
		})
	}
}

func TestTrainerStepAWPZeroGammaAndErrors(t *testing.T) {
	arch := tinyMLP()
	const n = 3
	w := randomWeights(t, arch, 2)
	rng := rand.New(rand.NewPCG(1, 2))
	x := toFloat32(randomSlice(rng, n*arch.InputSize()))
	target := toFloat32(softTargets(rng, n, arch.Classes))
	obj := Objective{Purpose: PurposeTrain}
	plain, err := NewTrainer(w, n, 1)
	if err != nil {
		t.Fatal(err)
	}
	wantLoss, _, err := plain.StepObjective(obj, x, nil, target, n)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTrainer(w, n, 1)
	if err != nil {
		t.Fatal(err)
	}
	if loss, _, err := tr.StepAWP(obj, x, nil, target, n, 0); err != nil || loss != wantLoss {
		t.Errorf("gamma 0: loss %v (%v), plain step %v", loss, err, wantLoss)
	}
	for _, gamma := range []float64{-0.01, math.NaN(), math.Inf(1)} {
		if _, _, err := tr.StepAWP(obj, x, nil, target, n, gamma); err == nil {
			t.Errorf("gamma %v accepted", gamma)
		}
	}
	if _, _, err := tr.StepAWP(Objective{Purpose: PurposeTrainTRADES, Beta: 6}, x, x[:1], target, n, 0.01); err == nil {
		t.Error("a short x_adv was accepted")
	}
	if _, _, err := tr.StepAWP(Objective{Purpose: PurposeLogits}, x, nil, target, n, 0.01); err == nil {
		t.Error("a logits purpose was accepted as an objective")
	}
	for i, p := range tr.Weights().Params {
		for j, v := range p.Data {
			if math.Float32bits(v) != math.Float32bits(w.Params[i].Data[j]) {
				t.Fatalf("%s[%d] changed to %v after failed AWP steps (was %v)", p.Name, j, v, w.Params[i].Data[j])
			}
		}
	}
}
