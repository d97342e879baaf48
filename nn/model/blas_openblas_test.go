//go:build openblas

package model

import (
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas/gonum"
	"gonum.org/v1/netlib/blas/netlib"
	G "gorgonia.org/gorgonia"
)

// blasAgreementTol bounds |openblas − pure Go| relative to max(1, |pure Go|):
// the two BLAS libraries sum in different orders, nothing more.
const blasAgreementTol = 1e-5

// TestOpenBLASAgreesWithPureGo runs the same nets on OpenBLAS and on gonum's
// pure-Go BLAS (what the default build uses) and compares logits, input
// gradients and parameter gradients. It switches the process-wide BLAS, so it
// must not run in parallel with other tests.
func TestOpenBLASAgreesWithPureGo(t *testing.T) {
	t.Cleanup(func() { G.Use(netlib.Implementation{}) })
	cases := []struct {
		name  string
		arch  Arch
		batch int
	}{
		{"mlp 784-256-256-10", Arch{Kind: KindMLP, Input: []int{1, 28, 28}, Classes: 10, Hidden: []int{256, 256}}, 16},
		{"cnn 3x12x12", Arch{Kind: KindCNN, Input: []int{3, 12, 12}, Classes: 10, Channels: []int{8, 16}, Hidden: []int{32}}, 8},
		{"preact-resnet18 width 2", tinyResNet(28), 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := randomWeights(t, c.arch, 3)
			rng := rand.New(rand.NewPCG(11, 13))
			x := toFloat32(randomSlice(rng, c.batch*c.arch.InputSize()))
			target := toFloat32(softTargets(rng, c.batch, c.arch.Classes))

			G.Use(netlib.Implementation{})
			fast := blasOutputs(t, w, c.batch, x, target)
			G.Use(gonum.Implementation{})
			pure := blasOutputs(t, w, c.batch, x, target)
			G.Use(netlib.Implementation{})

			closeSlices(t, "logits", fast.logits, pure.logits, blasAgreementTol)
			closeSlices(t, "input gradient", fast.inputGrad, pure.inputGrad, blasAgreementTol)
			closeSlices(t, "train logits", fast.trainLogits, pure.trainLogits, blasAgreementTol)
			for i := range pure.grads {
				if pure.grads[i] != nil {
					closeSlices(t, w.Params[i].Name+" gradient", fast.grads[i], pure.grads[i], blasAgreementTol)
				}
			}
		})
	}
}

// blasRun is what one BLAS computes for a model and a batch.
type blasRun struct {
	logits, inputGrad, trainLogits []float32
	grads                          [][]float32
}

// blasOutputs builds fresh nets (Eval logits, Eval input gradient, Train
// step) on the BLAS currently installed and returns their outputs.
func blasOutputs(t *testing.T, w *Weights, batch int, x, target []float32) blasRun {
	t.Helper()
	k, d := w.Arch.Classes, w.Arch.InputSize()
	r := blasRun{logits: make([]float32, batch*k), inputGrad: make([]float32, batch*d), trainLogits: make([]float32, batch*k)}
	logitsNet, err := NewNet(w, batch, PurposeLogits, NetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := logitsNet.Logits(x, r.logits); err != nil {
		t.Fatal(err)
	}
	gradNet, err := NewNet(w, batch, PurposeInputGrad, NetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gradNet.InputGrad(x, target, r.inputGrad); err != nil {
		t.Fatal(err)
	}
	trainNet, err := NewNet(w, batch, PurposeTrain, NetOptions{Mode: Train})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := trainNet.TrainStep(x, target, r.trainLogits); err != nil {
		t.Fatal(err)
	}
	for _, g := range trainNet.Grads() {
		r.grads = append(r.grads, append([]float32(nil), g...))
	}
	return r
}
