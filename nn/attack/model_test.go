package attack

import (
	"testing"

	"github.com/sglr-pipe/sglr-pipe/nn/model"
	"github.com/sglr-pipe/sglr-pipe/nn/optim"
)

// Tests of the attacks on the real model core (model.Evaluator).

// TestSquareGridOfAnEvaluatorIsTheArchInput checks that Square places its
// squares on the C×H×W grid an Evaluator reports.
func TestSquareGridOfAnEvaluatorIsTheArchInput(t *testing.T) {
	arch := model.Arch{Kind: model.KindCNN, Input: []int{2, 7, 6}, Classes: 3, Channels: []int{3, 2}, Hidden: []int{4}}
	w, err := model.Init(arch, 1)
	if err != nil {
		t.Fatal(err)
	}
	e, err := model.NewEvaluator(w, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if sq, err := squareShape(e, arch.InputSize()); err != nil || sq != [3]int{2, 7, 6} {
		t.Errorf("square grid %v, %v; want [2 7 6]", sq, err)
	}
}

// TestEvalAttacksOnATrainedGorgoniaMLP runs every attack of Names
// through Run on an Evaluator over a briefly trained MLP and checks
// AutoAttack ≤ APGD-CE ≤ PGD-20 ≤ FGSM ≤ clean.
func TestEvalAttacksOnATrainedGorgoniaMLP(t *testing.T) {
	const n, eps = 64, 0.1
	x, labels := attackBlobs(7, attackN, attackD, attackK)
	w := trainGorgoniaMLP(t, x, labels, attackN, attackD, attackK)
	e, err := model.NewEvaluator(w, 32, 2)
	if err != nil {
		t.Fatal(err)
	}
	evalCheckOrdering(t, e, x[:n*attackD], labels[:n], n, eps, Spec{Queries: 500})
}

// trainGorgoniaMLP trains a one-hidden-layer MLP with full-batch SGD on the
// n samples x and checks it learnt them.
func trainGorgoniaMLP(t *testing.T, x []float32, labels []int32, n, d, k int) *model.Weights {
	t.Helper()
	w, err := model.Init(model.Arch{Kind: model.KindMLP, Input: []int{1, 1, d}, Classes: k, Hidden: []int{16}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	net, err := model.NewNet(w, n, model.PurposeTrain, model.NetOptions{Mode: model.Train})
	if err != nil {
		t.Fatal(err)
	}
	onehot := make([]float32, n*k)
	for i, y := range labels {
		onehot[i*k+int(y)] = 1
	}
	opt := optim.NewSGD(w.Params, 0.9, 0, false)
	for step := range 60 {
		if _, err := net.TrainStep(x, onehot, nil); err != nil {
			t.Fatalf("train step %d: %v", step, err)
		}
		opt.Step(w.Params, net.Grads(), 0.1)
		if err := net.SetWeights(w); err != nil {
			t.Fatal(err)
		}
	}
	e, err := model.NewEvaluator(w, n, 1)
	if err != nil {
		t.Fatal(err)
	}
	if acc, err := RobustAccuracy(e, x, labels, n); err != nil || acc < 0.9 {
		t.Fatalf("clean accuracy of the trained MLP is %.3f (%v), want >= 0.9", acc, err)
	}
	return w
}
