package attack

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/nn/model"
	"github.com/sglr-pipe/sglr-pipe/nn/optim"
)

// Tests of the attacks' one-pass loss gradient (a LossGrader such as
// model.Evaluator) against the two-pass fallback (Logits, then LogitsVJP of
// the loss's upstream).

// TestEvalAttacksOnePassMatchTwoPasses runs the attacks that differentiate
// their own losses (APGD-CE, APGD-T, CW∞, FAB-T and AutoAttack) on an
// model.Evaluator over a trained MLP and a trained CNN twice with the same seed:
// through LossGrad and through the two-pass fallback. The adversarial
// examples, robust accuracies and FAB distances must be identical, and the
// one-pass runs must take fewer forward passes.
func TestEvalAttacksOnePassMatchTwoPasses(t *testing.T) {
	x, labels := attackBlobs(7, attackN, attackD, attackK)
	const n = 60
	x, labels = x[:n*attackD], labels[:n]
	models := []struct {
		name string
		arch model.Arch
	}{
		{"mlp", model.Arch{Kind: model.KindMLP, Input: []int{1, 1, attackD}, Classes: attackK, Hidden: []int{16}}},
		{"cnn", model.Arch{Kind: model.KindCNN, Input: []int{1, 4, 6}, Classes: attackK, Channels: []int{4}, Hidden: []int{8}}},
	}
	type attack struct {
		name string
		eps  float64
		run  func(m GradModel, out []float32) ([]float64, error)
		// fusedChecks: FAB with few points goes whole iterations without
		// pulling a point back, and then checks the new iterate with a
		// LossGrad pass; after a wrong guess it computes the gradient again,
		// so the run makes more LossGrad calls than the two-pass run makes
		// LogitsVJP calls (one per iteration).
		fusedChecks bool
	}
	attacks := []attack{
		{"apgd-ce", 0.08, func(m GradModel, out []float32) ([]float64, error) {
			return nil, APGD{Eps: 0.08, Steps: 20, Loss: APGDCE}.Run(m, x, labels, n, evalRNG(3), out)
		}, false},
		{"apgd-t", 0.08, func(m GradModel, out []float32) ([]float64, error) {
			return nil, APGD{Eps: 0.08, Steps: 20, Loss: APGDTargetedDLR, Targets: 2}.Run(m, x, labels, n, evalRNG(3), out)
		}, false},
		{"cw", 0.08, func(m GradModel, out []float32) ([]float64, error) {
			return nil, CW{Eps: 0.08, Step: 0.02, Steps: 10, Restarts: 2, Kappa: 50}.Run(m, x, labels, n, evalRNG(3), out)
		}, false},
		{"fab-t", 0.08, func(m GradModel, out []float32) ([]float64, error) {
			return FAB{Eps: 0.08, Steps: 30, Targets: 2, Restarts: 2}.Run(m, x, labels, n, evalRNG(3), out)
		}, false},
		{"fab-t min-norm", 0.08, func(m GradModel, out []float32) ([]float64, error) {
			return FAB{Eps: 0.08, Steps: 30, Targets: 2, MinNorm: true}.Run(m, x, labels, n, evalRNG(3), out)
		}, false},
		{"fab-t one point at a time", 0.08, func(m GradModel, out []float32) ([]float64, error) {
			copy(out, x)
			var dist []float64
			for i := range 20 {
				di, err := FAB{Eps: 0.08, Steps: 20, Targets: 2}.Run(m, x[i*attackD:(i+1)*attackD], labels[i:i+1], 1, nil, out[i*attackD:(i+1)*attackD])
				if err != nil {
					return nil, err
				}
				dist = append(dist, di...)
			}
			return dist, nil
		}, true},
		{"autoattack", 0.06, func(m GradModel, out []float32) ([]float64, error) {
			rep, err := AutoAttackConfig{Eps: 0.06, Steps: 10, Targets: 2, Queries: 50}.Run(m, x, labels, n, evalRNG(3), out)
			if err != nil {
				return nil, err
			}
			accs := []float64{rep.CleanAcc, rep.RobustAcc}
			for _, s := range rep.Steps {
				accs = append(accs, s.RobustAcc, float64(s.Broken))
			}
			return accs, nil
		}, false},
	}
	for _, mc := range models {
		w := trainBlobNet(t, mc.arch, x, labels, n)
		e, err := model.NewEvaluator(w, 16, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range attacks {
			t.Run(mc.name+" "+a.name, func(t *testing.T) {
				var onePass, twoPass passCounts
				one, two := make([]float32, len(x)), make([]float32, len(x))
				gotOut, err := a.run(&countedLossGrader{countedModel{e, &onePass}}, one)
				if err != nil {
					t.Fatal(err)
				}
				wantOut, err := a.run(&countedModel{e, &twoPass}, two)
				if err != nil {
					t.Fatal(err)
				}
				if onePass.vjp != 0 || twoPass.lossGrad != 0 {
					t.Fatalf("one-pass run made %d LogitsVJP calls, two-pass run %d LossGrad calls; want 0", onePass.vjp, twoPass.lossGrad)
				}
				if !sameBits(one, two) {
					t.Error("adversarial examples differ between the one-pass and the two-pass runs")
				}
				if !slices.Equal(gotOut, wantOut) {
					t.Errorf("one-pass run returned %v, two-pass run %v", gotOut, wantOut)
				}
				accOne, err := RobustAccuracy(e, one, labels, n)
				if err != nil {
					t.Fatal(err)
				}
				accTwo, err := RobustAccuracy(e, two, labels, n)
				if err != nil {
					t.Fatal(err)
				}
				clean, err := RobustAccuracy(e, x, labels, n)
				if err != nil {
					t.Fatal(err)
				}
				if accOne != accTwo {
					t.Errorf("robust accuracy %v one-pass, %v two-pass", accOne, accTwo)
				}
				if accOne >= clean && a.name != "fab-t min-norm" {
					t.Errorf("robust accuracy %v, clean %v: the attack broke nothing, so the comparison is weak", accOne, clean)
				}
				passesOne, passesTwo := onePass.logits+onePass.lossGrad, twoPass.logits+twoPass.vjp
				t.Logf("robust accuracy %.3f (clean %.3f); forward passes: %d one-pass (%d LossGrad), %d two-pass (%d LogitsVJP)",
					accOne, clean, passesOne, onePass.lossGrad, passesTwo, twoPass.vjp)
				if a.fusedChecks && onePass.lossGrad <= twoPass.vjp {
					t.Errorf("%d LossGrad calls for %d iterations: FAB never checked an iterate with LossGrad", onePass.lossGrad, twoPass.vjp)
				}
				if passesTwo-passesOne < twoPass.vjp/2 {
					t.Errorf("one-pass run took %d forward passes, two-pass %d: want at least %d fewer", passesOne, passesTwo, twoPass.vjp/2)
				}
			})
		}
	}
}

// TestLossGradAllocatesNoMoreThanTwoPasses measures the heap allocations of
// one loss-gradient evaluation of the attacks (evalBuffers.lossGrad) on an
// model.Evaluator, through LossGrad and through the two-pass fallback, once the
// graphs are compiled: the one-pass path must not allocate more.
func TestLossGradAllocatesNoMoreThanTwoPasses(t *testing.T) {
	for _, arch := range []model.Arch{tinyMLP(), tinyCNN()} {
		t.Run(string(arch.Kind), func(t *testing.T) {
			w, err := model.Init(arch, 5)
			if err != nil {
				t.Fatal(err)
			}
			e, err := model.NewEvaluator(w, 16, 2)
			if err != nil {
				t.Fatal(err)
			}
			const n = 40 // a full chunk and a padded one per worker call
			d, k := arch.InputSize(), arch.Classes
			rng := rand.New(rand.NewPCG(1, 2))
			x := uniformInputs(rng, n*d)
			order := make([]int, k)
			loss := model.RowLoss(func(i int, z, up []float32) float64 { return dlrRow(z, i%k, up, order) })
			var buf evalBuffers
			buf.size(n, d, k)
			measure := func(m GradModel) float64 {
				step := func() {
					if err := buf.lossGrad(m, x, n, d, k, loss); err != nil {
						t.Fatal(err)
					}
				}
				step() // compiles the graphs
				return testing.AllocsPerRun(20, step)
			}
			one := measure(e)
			two := measure(twoPassModel{e})
			t.Logf("allocations per loss gradient: %.0f one pass, %.0f two passes", one, two)
			if one > two {
				t.Errorf("one pass allocates %.0f objects per call, two passes %.0f", one, two)
			}
		})
	}
}

// trainBlobNet trains arch (input size attackD, attackK classes) with
// full-batch SGD on the n samples x and checks it learnt most of them.
func trainBlobNet(t *testing.T, arch model.Arch, x []float32, labels []int32, n int) *model.Weights {
	t.Helper()
	w, err := model.Init(arch, 1)
	if err != nil {
		t.Fatal(err)
	}
	net, err := model.NewNet(w, n, model.PurposeTrain, model.NetOptions{Mode: model.Train})
	if err != nil {
		t.Fatal(err)
	}
	k := arch.Classes
	onehot := make([]float32, n*k)
	for i, y := range labels {
		onehot[i*k+int(y)] = 1
	}
	opt := optim.NewSGD(w.Params, 0.9, 0, false)
	for step := range 80 {
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
	if acc, err := RobustAccuracy(e, x, labels, n); err != nil || acc < 0.8 {
		t.Fatalf("clean accuracy of the trained %s is %.3f (%v), want >= 0.8", arch.Kind, acc, err)
	}
	return w
}

// twoPassModel hides the LossGrad of the model it wraps, so the attacks take
// the two-pass path (Logits, then LogitsVJP).
type twoPassModel struct{ GradModel }

// passCounts counts a model's calls by kind.
type passCounts struct{ logits, vjp, lossGrad int }

// countedModel is a GradModel (and InputShaper) that forwards to an
// model.Evaluator and counts the Logits and LogitsVJP calls.
type countedModel struct {
	e *model.Evaluator
	c *passCounts
}

// Classes is the model.Evaluator's.
func (m *countedModel) Classes() int { return m.e.Classes() }

// InputSize is the model.Evaluator's.
func (m *countedModel) InputSize() int { return m.e.InputSize() }

// InputShape is the model.Evaluator's, so that Square places its squares alike.
func (m *countedModel) InputShape() []int { return m.e.InputShape() }

// Logits counts the call and forwards it.

func (m *countedModel) Logits(x []float32, n int, out []float32) error {
	m.c.logits++
	return m.e.Logits(x, n, out)
}

// InputGrad forwards the call (uncounted: no attack here uses it).
func (m *countedModel) InputGrad(x []float32, n int, target, grad []float32) (float64, error) {
	return m.e.InputGrad(x, n, target, grad)
}

// LogitsVJP counts the call and forwards it.
func (m *countedModel) LogitsVJP(x []float32, n int, upstream, grad []float32) error {
	m.c.vjp++
	return m.e.LogitsVJP(x, n, upstream, grad)
}

// countedLossGrader is countedModel with the model.Evaluator's LossGrad, counted.
type countedLossGrader struct{ countedModel }

// LossGrad counts the call and forwards it.
func (m *countedLossGrader) LossGrad(x []float32, n int, loss model.RowLoss, logits []float32, losses []float64, grad []float32) error {
	m.c.lossGrad++
	return m.e.LossGrad(x, n, loss, logits, losses, grad)
}

// BenchmarkEvalLossGrad times one loss gradient of the evaluation attacks
// (evalBuffers.lossGrad, the targeted DLR loss of APGD-T) on a model.Evaluator
// over the quickstart MLP 784-128-128-10 for 456 points (what FAB-T and
// APGD-T attack in bench/autoattack.sh), batch 256 on 2 workers, through
// LossGrad and through the two-pass fallback.
//
//	go test ./nn/attack -run '^$' -bench EvalLossGrad -count 5
func BenchmarkEvalLossGrad(b *testing.B) {
	arch := model.Arch{Kind: model.KindMLP, Input: []int{1, 28, 28}, Classes: 10, Hidden: []int{128, 128}}
	w, err := model.Init(arch, 1)
	if err != nil {
		b.Fatal(err)
	}
	e, err := model.NewEvaluator(w, 256, 2)
	if err != nil {
		b.Fatal(err)
	}
	const n = 456
	d, k := arch.InputSize(), arch.Classes
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, n*d)
	for i := range x {
		x[i] = rng.Float32()
	}
	order := make([]int, k)
	loss := model.RowLoss(func(i int, z, up []float32) float64 { return dlrTargetedRow(z, i%k, (i+1)%k, up, order) })
	for _, bc := range []struct {
		name string
		m    GradModel
	}{{"one-pass", e}, {"two-pass", twoPassModel{e}}} {
		b.Run(bc.name, func(b *testing.B) {
			var buf evalBuffers
			buf.size(n, d, k)
			for b.Loop() {
				if err := buf.lossGrad(bc.m, x, n, d, k, loss); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// tinyMLP and tinyCNN are the small architectures of the loss-gradient tests.
func tinyMLP() model.Arch {
	return model.Arch{Kind: model.KindMLP, Input: []int{1, 3, 3}, Classes: 3, Hidden: []int{5, 4}}
}

func tinyCNN() model.Arch {
	return model.Arch{Kind: model.KindCNN, Input: []int{2, 7, 6}, Classes: 3, Channels: []int{3, 2}, Hidden: []int{4}}
}

// uniformInputs is n values drawn uniformly from [0,1).
func uniformInputs(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.Float64())
	}
	return x
}

// sameBits reports whether a and b hold the same float32 bits.
func sameBits(a, b []float32) bool {
	return slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
}
