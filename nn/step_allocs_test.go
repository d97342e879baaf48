package nn

import (
	"math/rand/v2"
	"testing"
)

// TestTrainingStepAllocations measures the heap allocations of one PGD-10
// adversarial training step (the step bench/trainstep times: PGD-10 in Eval
// mode over two workers, a Train-mode forward/backward, an SGD update, the
// weights pushed back to the evaluator) once the graphs are compiled, and
// fails above a generous bound, so that per-pass garbage cannot come back
// unnoticed. What is left is mostly gorgonia's TapeMachine (a few objects
// per instruction per run) and the conv bias, still a gorgonia op. Before
// our own conv, ReLU, BatchNorm, pooling and softmax-loss ops and the
// allocation-free Linear op the MLP step allocated about 15 000 objects and
// the cnn step (batch 8) about 26 000; measured after them: about 1 900 and
// 6 500.
func TestTrainingStepAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("runs full training steps")
	}
	cases := []struct {
		name     string
		arch     Arch
		batch    int
		maxSteps float64
	}{
		{name: "mlp 784-256-256-10", arch: Arch{Kind: KindMLP, Input: []int{1, 28, 28}, Classes: 10, Hidden: []int{256, 256}},
			batch: 128, maxSteps: 3000},
		{name: "cnn 1x28x28", arch: Arch{Kind: KindCNN, Input: []int{1, 28, 28}, Classes: 10, Channels: []int{32, 64}, Hidden: []int{128}},
			batch: 8, maxSteps: 10000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			step := newAllocStepper(t, tc.arch, tc.batch, 2)
			step() // compiles the graphs, sizes the buffers
			allocs := testing.AllocsPerRun(1, step)
			t.Logf("%s, batch %d: %.0f allocations per PGD-10 training step", tc.name, tc.batch, allocs)
			if allocs > tc.maxSteps {
				t.Errorf("%.0f allocations per step, want at most %.0f", allocs, tc.maxSteps)
			}
		})
	}
}

// newAllocStepper returns one adversarial training step of arch at the
// given batch over workers, on random data, failing t on error.
func newAllocStepper(t *testing.T, arch Arch, batch, workers int) func() {
	t.Helper()
	w, err := Init(arch, 3)
	if err != nil {
		t.Fatal(err)
	}
	trainer, err := NewTrainer(w, batch, workers)
	if err != nil {
		t.Fatal(err)
	}
	eval, err := NewEvaluator(w, (batch+workers-1)/workers, workers)
	if err != nil {
		t.Fatal(err)
	}
	sgd := NewSGD(trainer.Weights().Params, 0.9, 5e-4, false)
	rng := rand.New(rand.NewPCG(3, 4))
	d, k := arch.InputSize(), arch.Classes
	x, xAdv := make([]float32, batch*d), make([]float32, batch*d)
	targets, labels := make([]float32, batch*k), make([]int32, batch)
	for i := range x {
		x[i] = rng.Float32()
	}
	for i := range labels {
		labels[i] = int32(rng.IntN(k))
		targets[i*k+int(labels[i])] = 1
	}
	var attacker Attacker
	cfg := PGD{Eps: 8.0 / 255, Step: 2.0 / 255, Steps: 10, RandomStart: true, Restarts: 1}
	return func() {
		if err := attacker.PGD(eval, x, labels, batch, cfg, rng, xAdv); err != nil {
			t.Fatal(err)
		}
		if _, _, err := trainer.Step(xAdv, targets, batch); err != nil {
			t.Fatal(err)
		}
		sgd.Step(trainer.Weights().Params, trainer.Grads(), 0.01)
		if err := eval.SetWeights(trainer.Weights()); err != nil {
			t.Fatal(err)
		}
	}
}
