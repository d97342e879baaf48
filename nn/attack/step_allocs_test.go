package attack

import (
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/nn/model"
	"github.com/sglr-pipe/sglr-pipe/nn/optim"
)

// TestTrainingStepAllocations measures the heap allocations of one PGD-10
// adversarial training step (the step bench/trainstep times: PGD-10 in Eval
// mode over two workers, a Train-mode forward/backward, an SGD update, the
// weights pushed back to the evaluator) once the graphs are compiled, and
// fails above a generous bound, so that per-pass garbage cannot come back
// unnoticed, and bounds the bytes, which is what the garbage collector pays
// for. What is left is gorgonia's TapeMachine (a few small objects per
// instruction per run). Before our own conv, ReLU, BatchNorm, pooling and
// softmax-loss ops and the allocation-free Linear op the MLP step allocated
// about 15 000 objects and the cnn step (batch 8) about 26 000; after them
// about 1 900 and 6 500, and 2 400 once the conv bias was our own op too.
func TestTrainingStepAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("runs full training steps")
	}
	cases := []struct {
		name     string
		arch     model.Arch
		batch    int
		maxSteps float64
	}{
		{name: "mlp 784-256-256-10", arch: model.Arch{Kind: model.KindMLP, Input: []int{1, 28, 28}, Classes: 10, Hidden: []int{256, 256}},
			batch: 128, maxSteps: 3000},
		{name: "cnn 1x28x28", arch: model.Arch{Kind: model.KindCNN, Input: []int{1, 28, 28}, Classes: 10, Channels: []int{32, 64}, Hidden: []int{128}},
			batch: 8, maxSteps: 4000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			step := newAllocStepper(t, tc.arch, tc.batch, 2)
			step() // compiles the graphs, sizes the buffers
			allocs := testing.AllocsPerRun(1, step)
			bytes := bytesPerRun(5, step)
			t.Logf("%s, batch %d: %.0f allocations, %.1f KB per PGD-10 training step", tc.name, tc.batch, allocs, bytes/1024)
			if allocs > tc.maxSteps {
				t.Errorf("%.0f allocations per step, want at most %.0f", allocs, tc.maxSteps)
			}
			// One activation tensor of the MLP is 128 KB, its input batch
			// 400 KB: more than the bound means some pass allocates its
			// tensors again.
			if bytes > maxBytesPerStep {
				t.Errorf("%.0f bytes allocated per step, want at most %d", bytes, maxBytesPerStep)
			}
		})
	}
}

// maxBytesPerStep bounds the heap bytes one training step may allocate once
// the graphs are compiled: gorgonia's small per-instruction objects fit
// (60–320 KB measured, varying with what its pools kept across GCs); one
// activation tensor re-allocated in each of the step's 11 passes does not.
// gorgonia's own broadcast of the conv bias did: 15 MB per cnn step.
const maxBytesPerStep = 1 << 20

// bytesPerRun is the mean number of heap bytes one call of f allocates.
func bytesPerRun(runs int, f func()) float64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return float64(after.TotalAlloc-before.TotalAlloc) / float64(runs)
}

// newAllocStepper returns one adversarial training step of arch at the
// given batch over workers, on random data, failing t on error.
func newAllocStepper(t *testing.T, arch model.Arch, batch, workers int) func() {
	t.Helper()
	w, err := model.Init(arch, 3)
	if err != nil {
		t.Fatal(err)
	}
	trainer, err := model.NewTrainer(w, batch, workers)
	if err != nil {
		t.Fatal(err)
	}
	eval, err := model.NewEvaluator(w, (batch+workers-1)/workers, workers)
	if err != nil {
		t.Fatal(err)
	}
	sgd := optim.NewSGD(trainer.Weights().Params, 0.9, 5e-4, false)
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
