package model

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/nn/internal/vec"
	"gorgonia.org/tensor"
)

// Tests of the one-pass loss gradient (PurposeLossGrad nets,
// Evaluator.LossGrad) against the two-pass path (Logits, then LogitsVJP of
// the loss's upstream) and against finite differences.

// TestNetLossGradMatchesLogitsThenVJP checks that a loss-grad net gives the
// bits of a logits net followed by a VJP net fed the upstream the loss
// computes from those logits, for two losses.
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
		for _, lossName := range []string{"lse", "squared"} {
			t.Run(tc.name+" "+lossName, func(t *testing.T) {
				rng := rand.New(rand.NewPCG(5, 1))
				w := randomWeights(t, tc.arch, 4)
				d, k, b := tc.arch.InputSize(), tc.arch.Classes, tc.batch
				labels := make([]int32, b)
				for i := range labels {
					labels[i] = int32(rng.IntN(k))
				}
				loss := RowLoss(func(i int, z, up []float32) float64 { return testLSE(z, up) })
				if lossName == "squared" {
					loss = func(i int, z, up []float32) float64 { return testSquared(z, int(labels[i]), up) }
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
					return testSquared(z, int(labels[i]), up)
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
					if l := testSquared(wantLogits[i*k:(i+1)*k], int(labels[i]), up[i*k:(i+1)*k]); l != losses[i] {
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
	ce := RowLoss(func(i int, z, up []float32) float64 { return testLSE(z, up) })
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

// Logits counts the call and forwards it.

// testLSE is the loss log Σ exp z; up receives its gradient softmax(z).
func testLSE(z, up []float32) float64 {
	vec.Softmax(z, up)
	return vec.LogSumExp(z)
}

// testSquared is the loss ½·Σ_j (z_j − [j = y])²; up receives its gradient.
func testSquared(z []float32, y int, up []float32) float64 {
	loss := 0.0
	for j, v := range z {
		if j == y {
			v--
		}
		up[j] = v
		loss += 0.5 * float64(v) * float64(v)
	}
	return loss
}
