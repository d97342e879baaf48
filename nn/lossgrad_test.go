package nn

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

// Tests of the one-pass loss gradient (PurposeLossGrad nets,
// Evaluator.LossGrad) against the two-pass path it replaces (Logits, then
// LogitsVJP of the loss's upstream) and against finite differences.

// TestNetLossGradMatchesLogitsThenVJP checks that a loss-grad net gives the
// bits of a logits net followed by a VJP net fed the upstream the loss
// computes from those logits, for the cross-entropy and the DLR loss.
func TestNetLossGradMatchesLogitsThenVJP(t *testing.T) {
	cases := []struct {
		name  string
		arch  Arch
		batch int
	}{
		{"mlp", tinyMLP(), 5},
		{"cnn", tinyCNN(), 4},
		{"resnet", tinyResNet(25), 2},
	}
	for _, tc := range cases {
		for _, lossName := range []string{"ce", "dlr"} {
			t.Run(tc.name+" "+lossName, func(t *testing.T) {
				rng := rand.New(rand.NewPCG(5, 1))
				w := randomWeights(t, tc.arch, 4)
				d, k, b := tc.arch.InputSize(), tc.arch.Classes, tc.batch
				labels := make([]int32, b)
				for i := range labels {
					labels[i] = int32(rng.IntN(k))
				}
				order := make([]int, k)
				loss := RowLoss(func(i int, z, up []float32) float64 { return ceRow(z, int(labels[i]), up) })
				if lossName == "dlr" {
					loss = func(i int, z, up []float32) float64 { return dlrRow(z, int(labels[i]), up, order) }
				}
				x := toFloat32(randomSlice(rng, b*d))

				oneNet := newTestNet(t, w, b, PurposeLossGrad)
				logits, grad, losses := make([]float32, b*k), make([]float32, b*d), make([]float64, b)
				if err := oneNet.LossGrad(x, loss, logits, losses, grad); err != nil {
					t.Fatal(err)
				}

				wantLogits, wantGrad, wantLosses, up := make([]float32, b*k), make([]float32, b*d), make([]float64, b), make([]float32, b*k)
				if err := newTestNet(t, w, b, PurposeLogits).Logits(x, wantLogits); err != nil {
					t.Fatal(err)
				}
				for i := range b {
					wantLosses[i] = loss(i, wantLogits[i*k:(i+1)*k], up[i*k:(i+1)*k])
				}
				if err := newTestNet(t, w, b, PurposeVJP).LogitsVJP(x, up, wantGrad); err != nil {
					t.Fatal(err)
				}
				if !sameBits(logits, wantLogits) {
					t.Errorf("logits %v, want %v", logits, wantLogits)
				}
				if !sameBits(grad, wantGrad) {
					t.Errorf("input gradient differs from Logits then LogitsVJP:\n got %v\nwant %v", grad, wantGrad)
				}
				if !slices.Equal(losses, wantLosses) {
					t.Errorf("losses %v, want %v", losses, wantLosses)
				}
			})
		}
	}
}

// TestNetLossGradMatchesFiniteDifferences checks, in float64, the losses
// and the input gradient of a loss-grad net for a loss that is not linear in
// the logits, ℓ(z) = log Σ exp z − z_y + 0.1·Σ z², against the loss
// recomputed from a logits net and its central differences.
func TestNetLossGradMatchesFiniteDifferences(t *testing.T) {
	cases := []struct {
		name   string
		arch   Arch
		batch  int
		coords int
	}{
		{"mlp", tinyMLP(), 3, 27},
		{"cnn", tinyCNN(), 2, 30},
		{"resnet", tinyResNet(25), 2, 6},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(8, 3))
			w := randomWeights(t, tc.arch, 6)
			opts := NetOptions{Dtype: tensor.Float64}
			net, err := NewNet(w, tc.batch, PurposeLossGrad, opts)
			if err != nil {
				t.Fatal(err)
			}
			forward, err := NewNet(w, tc.batch, PurposeLogits, opts)
			if err != nil {
				t.Fatal(err)
			}
			k := tc.arch.Classes
			labels := make([]int, tc.batch)
			for i := range labels {
				labels[i] = rng.IntN(k)
			}
			rowLoss := func(i int, z []float64) float64 {
				l := logSumExp64(z) - z[labels[i]]
				for _, v := range z {
					l += 0.1 * v * v
				}
				return l
			}
			loss := func(i int, z, up []float64) float64 {
				lse := logSumExp64(z)
				for j, v := range z {
					up[j] = math.Exp(v-lse) + 0.2*v
				}
				up[labels[i]]--
				return rowLoss(i, z)
			}
			x := randomSlice(rng, tc.batch*tc.arch.InputSize())
			logits, grad, losses := make([]float64, tc.batch*k), make([]float64, len(x)), make([]float64, tc.batch)
			call := lossCall[float64]{loss: loss, rows: tc.batch, losses: losses}
			if err := netLossGrad(net, x, call, logits, grad); err != nil {
				t.Fatal(err)
			}
			want := make([]float64, len(logits))
			total := func() float64 {
				if err := netLogits(forward, x, want); err != nil {
					t.Fatal(err)
				}
				s := 0.0
				for i := range tc.batch {
					s += rowLoss(i, want[i*k:(i+1)*k])
				}
				return s
			}
			total()
			if !slices.Equal(logits, want) {
				t.Errorf("logits %v, a logits net gives %v", logits, want)
			}
			for i, l := range losses {
				if w := rowLoss(i, want[i*k:(i+1)*k]); l != w {
					t.Errorf("loss of sample %d is %v, want %v", i, l, w)
				}
			}
			gradientCheck(t, net, total, map[string][]float64{"x": x}, map[string][]float64{"x": grad}, tc.coords, rng)
		})
	}
}

// TestEvaluatorLossGradMatchesTwoPasses checks Evaluator.LossGrad against
// its own Logits and LogitsVJP on call sizes that exercise every chunk shape
// (padded chunks included): same bits, and the loss called exactly once per
// sample.
func TestEvaluatorLossGradMatchesTwoPasses(t *testing.T) {
	cases := []struct {
		name              string
		arch              Arch
		batch, workers    int
		sizes             []int
		wantPaddedChunks  bool
		wantSeveralChunks bool
	}{
		{"cnn batch 256, 2 workers", tinyCNN(), 256, 2, []int{1, 15, 17, 117, 300}, true, true},
		{"mlp batch 3, 3 workers", tinyMLP(), 3, 3, []int{2, 7, 9}, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := randomWeights(t, tc.arch, 11)
			e, err := NewEvaluator(w, tc.batch, tc.workers)
			if err != nil {
				t.Fatal(err)
			}
			d, k := tc.arch.InputSize(), tc.arch.Classes
			for _, n := range tc.sizes {
				rng := rand.New(rand.NewPCG(uint64(n), 5))
				x := toFloat32(randomSlice(rng, n*d))
				labels := make([]int32, n)
				for i := range labels {
					labels[i] = int32(rng.IntN(k))
				}
				calls := make([]int, n) // serialised by LossGrad, so no race
				loss := func(i int, z, up []float32) float64 {
					calls[i]++
					return cwRow(z, int(labels[i]), 2, up)
				}
				logits, grad, losses := make([]float32, n*k), make([]float32, n*d), make([]float64, n)
				if err := e.LossGrad(x, n, loss, logits, losses, grad); err != nil {
					t.Fatal(err)
				}
				for i, c := range calls {
					if c != 1 {
						t.Fatalf("n %d: loss called %d times on sample %d, want once", n, c, i)
					}
				}
				wantLogits, wantGrad, up := make([]float32, n*k), make([]float32, n*d), make([]float32, n*k)
				if err := e.Logits(x, n, wantLogits); err != nil {
					t.Fatal(err)
				}
				for i := range n {
					if l := cwRow(wantLogits[i*k:(i+1)*k], int(labels[i]), 2, up[i*k:(i+1)*k]); l != losses[i] {
						t.Errorf("n %d: loss of sample %d is %v, want %v", n, i, losses[i], l)
					}
				}
				if err := e.LogitsVJP(x, n, up, wantGrad); err != nil {
					t.Fatal(err)
				}
				if !sameBits(logits, wantLogits) || !sameBits(grad, wantGrad) {
					t.Errorf("n %d: logits or gradient differ from Logits then LogitsVJP", n)
				}
			}
			for _, wk := range e.workers {
				if kept := netsKept(wk, PurposeLossGrad); kept > maxChunkNets {
					t.Errorf("a worker keeps %d %s nets, bound %d", kept, PurposeLossGrad, maxChunkNets)
				}
			}
		})
	}
}

// TestLossGradRejectsBadUse checks that misuse is an error, not a panic.
func TestLossGradRejectsBadUse(t *testing.T) {
	arch := tinyMLP()
	w := randomWeights(t, arch, 2)
	d, k := arch.InputSize(), arch.Classes
	const b = 2
	x, grad, logits, losses := make([]float32, b*d), make([]float32, b*d), make([]float32, b*k), make([]float64, b)
	ce := RowLoss(func(i int, z, up []float32) float64 { return ceRow(z, 0, up) })
	lossNet := newTestNet(t, w, b, PurposeLossGrad)
	f64Net, err := NewNet(w, b, PurposeLossGrad, NetOptions{Dtype: tensor.Float64})
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEvaluator(w, 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		run  func() error
		want string
	}{
		{"vjp net", func() error { return newTestNet(t, w, b, PurposeVJP).LossGrad(x, ce, logits, losses, grad) }, "needs a loss-grad net"},
		{"nil loss", func() error { return lossNet.LossGrad(x, nil, logits, losses, grad) }, "loss is nil"},
		{"short x", func() error { return lossNet.LossGrad(x[1:], ce, logits, losses, grad) }, "x has"},
		{"short logits", func() error { return lossNet.LossGrad(x, ce, logits[1:], losses, grad) }, "logits has"},
		{"short losses", func() error { return lossNet.LossGrad(x, ce, logits, losses[1:], grad) }, "losses has"},
		{"short grad", func() error { return lossNet.LossGrad(x, ce, logits, losses, grad[1:]) }, "grad has"},
		{"logits of a loss-grad net", func() error { return lossNet.Logits(x, logits) }, "no loss bound"},
		{"float32 loss on a float64 net", func() error { return f64Net.LossGrad(x, ce, logits, losses, grad) }, "computes in float64"},
		{"train mode", func() error {
			_, err := NewNet(w, b, PurposeLossGrad, NetOptions{Mode: Train})
			return err
		}, "Eval mode only"},
		{"evaluator nil loss", func() error { return e.LossGrad(x, b, nil, logits, losses, grad) }, "loss is nil"},
		{"evaluator short losses", func() error { return e.LossGrad(x, b, ce, logits, losses[1:], grad) }, "losses has"},
		{"evaluator short logits", func() error { return e.LossGrad(x, b, ce, logits[1:], losses, grad) }, "logits has"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	// A failed run leaves the net usable.
	if err := lossNet.LossGrad(x, ce, logits, losses, grad); err != nil {
		t.Errorf("after the errors: %v", err)
	}
}

// TestEvalAttacksOnePassMatchTwoPasses runs the attacks that differentiate
// their own losses (APGD-CE, APGD-T, CW∞, FAB-T and AutoAttack) on an
// Evaluator over a trained MLP and a trained CNN twice with the same seed:
// through LossGrad and through the two-pass fallback. The adversarial
// examples, robust accuracies and FAB distances must be identical, and the
// one-pass runs must take fewer forward passes.
func TestEvalAttacksOnePassMatchTwoPasses(t *testing.T) {
	x, labels := attackBlobs(7, attackN, attackD, attackK)
	const n = 60
	x, labels = x[:n*attackD], labels[:n]
	models := []struct {
		name string
		arch Arch
	}{
		{"mlp", Arch{Kind: KindMLP, Input: []int{1, 1, attackD}, Classes: attackK, Hidden: []int{16}}},
		{"cnn", Arch{Kind: KindCNN, Input: []int{1, 4, 6}, Classes: attackK, Channels: []int{4}, Hidden: []int{8}}},
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
		e, err := NewEvaluator(w, 16, 2)
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
// Evaluator, through LossGrad and through the two-pass fallback, once the
// graphs are compiled: the one-pass path must not allocate more.
func TestLossGradAllocatesNoMoreThanTwoPasses(t *testing.T) {
	for _, arch := range []Arch{tinyMLP(), tinyCNN()} {
		t.Run(string(arch.Kind), func(t *testing.T) {
			w := randomWeights(t, arch, 5)
			e, err := NewEvaluator(w, 16, 2)
			if err != nil {
				t.Fatal(err)
			}
			const n = 40 // a full chunk and a padded one per worker call
			d, k := arch.InputSize(), arch.Classes
			rng := rand.New(rand.NewPCG(1, 2))
			x := toFloat32(randomSlice(rng, n*d))
			order := make([]int, k)
			loss := RowLoss(func(i int, z, up []float32) float64 { return dlrRow(z, i%k, up, order) })
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

// newTestNet compiles a float32 Eval-mode net of w for purpose.
func newTestNet(t *testing.T, w *Weights, batch int, purpose Purpose) *Net {
	t.Helper()
	n, err := NewNet(w, batch, purpose, NetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// logSumExp64 is log Σ exp z.
func logSumExp64(z []float64) float64 {
	m := slices.Max(z)
	s := 0.0
	for _, v := range z {
		s += math.Exp(v - m)
	}
	return m + math.Log(s)
}

// trainBlobNet trains arch (input size attackD, attackK classes) with
// full-batch SGD on the n samples x and checks it learnt most of them.
func trainBlobNet(t *testing.T, arch Arch, x []float32, labels []int32, n int) *Weights {
	t.Helper()
	w, err := Init(arch, 1)
	if err != nil {
		t.Fatal(err)
	}
	net, err := NewNet(w, n, PurposeTrain, NetOptions{Mode: Train})
	if err != nil {
		t.Fatal(err)
	}
	k := arch.Classes
	onehot := make([]float32, n*k)
	for i, y := range labels {
		onehot[i*k+int(y)] = 1
	}
	opt := NewSGD(w.Params, 0.9, 0, false)
	for step := range 80 {
		if _, err := net.TrainStep(x, onehot, nil); err != nil {
			t.Fatalf("train step %d: %v", step, err)
		}
		opt.Step(w.Params, net.Grads(), 0.1)
		if err := net.SetWeights(w); err != nil {
			t.Fatal(err)
		}
	}
	e, err := NewEvaluator(w, n, 1)
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
// Evaluator and counts the Logits and LogitsVJP calls.
type countedModel struct {
	e *Evaluator
	c *passCounts
}

// Classes is the Evaluator's.
func (m *countedModel) Classes() int { return m.e.Classes() }

// InputSize is the Evaluator's.
func (m *countedModel) InputSize() int { return m.e.InputSize() }

// InputShape is the Evaluator's, so that Square places its squares alike.
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

// countedLossGrader is countedModel with the Evaluator's LossGrad, counted.
type countedLossGrader struct{ countedModel }

// LossGrad counts the call and forwards it.
func (m *countedLossGrader) LossGrad(x []float32, n int, loss RowLoss, logits []float32, losses []float64, grad []float32) error {
	m.c.lossGrad++
	return m.e.LossGrad(x, n, loss, logits, losses, grad)
}

// BenchmarkEvalLossGrad times one loss gradient of the evaluation attacks
// (evalBuffers.lossGrad, the targeted DLR loss of APGD-T) on an Evaluator
// over the quickstart MLP 784-128-128-10 for 456 points (what FAB-T and
// APGD-T attack in bench/autoattack.sh), batch 256 on 2 workers, through
// LossGrad and through the two-pass fallback.
//
//	go test ./nn/ -run '^$' -bench EvalLossGrad -count 5
func BenchmarkEvalLossGrad(b *testing.B) {
	arch := Arch{Kind: KindMLP, Input: []int{1, 28, 28}, Classes: 10, Hidden: []int{128, 128}}
	w, err := Init(arch, 1)
	if err != nil {
		b.Fatal(err)
	}
	e, err := NewEvaluator(w, 256, 2)
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
	loss := RowLoss(func(i int, z, up []float32) float64 { return dlrTargetedRow(z, i%k, (i+1)%k, up, order) })
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
