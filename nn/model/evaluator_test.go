package model

import (
	"math"
	"math/rand/v2"
	"testing"
)

// perSampleReference computes logits and input gradients one sample at a
// time with batch-1 Nets, the ground truth for the chunked Evaluator.
func perSampleReference(t *testing.T, w *Weights, x, target []float32, n int) (logits, grad []float32, loss float64) {
	t.Helper()
	d, k := w.Arch.InputSize(), w.Arch.Classes
	ln, err := NewNet(w, 1, PurposeLogits, NetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gn, err := NewNet(w, 1, PurposeInputGrad, NetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	logits, grad = make([]float32, n*k), make([]float32, n*d)
	for i := range n {
		if err := ln.Logits(x[i*d:(i+1)*d], logits[i*k:(i+1)*k]); err != nil {
			t.Fatal(err)
		}
		l, err := gn.InputGrad(x[i*d:(i+1)*d], target[i*k:(i+1)*k], grad[i*d:(i+1)*d])
		if err != nil {
			t.Fatal(err)
		}
		loss += l
	}
	return logits, grad, loss
}

func closeSlices(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if d := math.Abs(float64(got[i] - want[i])); d > tol*math.Max(1, math.Abs(float64(want[i]))) {
			t.Fatalf("%s[%d] = %g, want %g", what, i, got[i], want[i])
		}
	}
}

func TestEvaluatorMatchesPerSampleNets(t *testing.T) {
	cases := []struct {
		name             string
		arch             Arch
		n, batch, worker int
	}{
		{"cnn n not a multiple of batch", tinyCNN(), 7, 3, 2},
		{"cnn more workers than chunks", tinyCNN(), 2, 4, 3},
		{"mlp exact multiple", tinyMLP(), 6, 2, 2},
		{"resnet eval mode", tinyResNet(25), 3, 2, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, 8))
			w := randomWeights(t, tc.arch, 5)
			x := toFloat32(randomSlice(rng, tc.n*tc.arch.InputSize()))
			target := toFloat32(softTargets(rng, tc.n, tc.arch.Classes))
			wantLogits, wantGrad, wantLoss := perSampleReference(t, w, x, target, tc.n)

			e, err := NewEvaluator(w, tc.batch, tc.worker)
			if err != nil {
				t.Fatal(err)
			}
			m := e
			logits := make([]float32, tc.n*m.Classes())
			if err := m.Logits(x, tc.n, logits); err != nil {
				t.Fatal(err)
			}
			closeSlices(t, "logits", logits, wantLogits, 1e-4)
			grad := make([]float32, tc.n*m.InputSize())
			loss, err := m.InputGrad(x, tc.n, target, grad)
			if err != nil {
				t.Fatal(err)
			}
			closeSlices(t, "grad", grad, wantGrad, 1e-4)
			if math.Abs(loss-wantLoss) > 1e-4*math.Max(1, wantLoss) {
				t.Errorf("loss %g, want %g", loss, wantLoss)
			}
		})
	}
}

func TestEvaluatorSetWeights(t *testing.T) {
	arch := tinyCNN()
	rng := rand.New(rand.NewPCG(1, 1))
	w1, w2 := randomWeights(t, arch, 1), randomWeights(t, arch, 2)
	x := toFloat32(randomSlice(rng, 5*arch.InputSize()))
	e, err := NewEvaluator(w1, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, 5*arch.Classes)
	if err := e.Logits(x, 5, out); err != nil {
		t.Fatal(err)
	}
	if err := e.SetWeights(w2); err != nil {
		t.Fatal(err)
	}
	if err := e.Logits(x, 5, out); err != nil {
		t.Fatal(err)
	}
	want, _, _ := perSampleReference(t, w2, x, make([]float32, 5*arch.Classes), 5)
	closeSlices(t, "logits after SetWeights", out, want, 1e-4)

	other, err := Init(tinyMLP(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SetWeights(other); err == nil {
		t.Error("SetWeights accepted weights of another architecture")
	}
	if err := e.Logits(x, 4, out); err == nil {
		t.Error("Logits accepted x of the wrong length")
	}
	if _, err := e.InputGrad(x, 5, out[:3], make([]float32, len(x))); err == nil {
		t.Error("InputGrad accepted targets of the wrong length")
	}
	if _, err := NewEvaluator(w1, 0, 1); err == nil {
		t.Error("NewEvaluator accepted batch 0")
	}
	if _, err := NewEvaluator(w1, 1, 0); err == nil {
		t.Error("NewEvaluator accepted 0 workers")
	}
}
