package model

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

// Tests of the logits vector-Jacobian product (PurposeVJP nets and
// Evaluator.LogitsVJP).

func TestLogitsVJPMatchesFiniteDifferences(t *testing.T) {
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
			rng := rand.New(rand.NewPCG(3, 9))
			w := randomWeights(t, tc.arch, 6)
			vjp, err := NewNet(w, tc.batch, PurposeVJP, NetOptions{Dtype: tensor.Float64})
			if err != nil {
				t.Fatal(err)
			}
			forward, err := NewNet(w, tc.batch, PurposeLogits, NetOptions{Dtype: tensor.Float64})
			if err != nil {
				t.Fatal(err)
			}
			x := randomSlice(rng, tc.batch*tc.arch.InputSize())
			// Signed upstream, so the check does not rely on a sum-to-one row.
			upstream := randomSlice(rng, tc.batch*tc.arch.Classes)
			for i := range upstream {
				upstream[i] = 2*upstream[i] - 1
			}
			grad := make([]float64, len(x))
			if err := netLogitsVJP(vjp, x, upstream, grad); err != nil {
				t.Fatal(err)
			}
			logits := make([]float64, len(upstream))
			loss := func() float64 {
				if err := netLogits(forward, x, logits); err != nil {
					t.Fatal(err)
				}
				s := 0.0
				for i, z := range logits {
					s += z * upstream[i]
				}
				return s
			}
			gradientCheck(t, vjp, loss, map[string][]float64{"x": x}, map[string][]float64{"x": grad}, tc.coords, rng)
		})
	}
}

// TestLogitsVJPOfSoftmaxMinusTargetIsInputGrad checks the chain rule: the
// cross-entropy's gradient with respect to the logits is softmax − T, so its
// vector-Jacobian product is the input gradient of the InputGrad net.
func TestLogitsVJPOfSoftmaxMinusTargetIsInputGrad(t *testing.T) {
	cases := []struct {
		name   string
		arch   Arch
		batch  int
		oneHot bool
	}{
		{"mlp one-hot", tinyMLP(), 4, true},
		{"mlp soft targets", tinyMLP(), 3, false},
		{"cnn one-hot", tinyCNN(), 3, true},
		{"resnet one-hot", tinyResNet(25), 2, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(11, 2))
			w := randomWeights(t, tc.arch, 8)
			opts := NetOptions{Dtype: tensor.Float64}
			forward, err := NewNet(w, tc.batch, PurposeLogits, opts)
			if err != nil {
				t.Fatal(err)
			}
			ce, err := NewNet(w, tc.batch, PurposeInputGrad, opts)
			if err != nil {
				t.Fatal(err)
			}
			vjp, err := NewNet(w, tc.batch, PurposeVJP, opts)
			if err != nil {
				t.Fatal(err)
			}
			k := tc.arch.Classes
			x := randomSlice(rng, tc.batch*tc.arch.InputSize())
			target := softTargets(rng, tc.batch, k)
			if tc.oneHot {
				clear(target)
				for i := range tc.batch {
					target[i*k+rng.IntN(k)] = 1
				}
			}
			want := make([]float64, len(x))
			if _, err := netInputGrad(ce, x, target, want); err != nil {
				t.Fatal(err)
			}
			logits := make([]float64, tc.batch*k)
			if err := netLogits(forward, x, logits); err != nil {
				t.Fatal(err)
			}
			upstream := make([]float64, len(logits))
			for i := range tc.batch {
				logp := logSoftmaxRow(logits[i*k : (i+1)*k])
				for j := range k {
					upstream[i*k+j] = math.Exp(logp[j]) - target[i*k+j]
				}
			}
			got := make([]float64, len(x))
			if err := netLogitsVJP(vjp, x, upstream, got); err != nil {
				t.Fatal(err)
			}
			for i := range got {
				if math.Abs(got[i]-want[i]) > 1e-10*math.Max(1, math.Abs(want[i])) {
					t.Fatalf("grad[%d]: VJP of softmax − target %.12g, InputGrad %.12g", i, got[i], want[i])
				}
			}
		})
	}
}

func TestEvaluatorLogitsVJPMatchesPerSampleNets(t *testing.T) {
	cases := []struct {
		name             string
		arch             Arch
		n, batch, worker int
	}{
		{"cnn n not a multiple of batch", tinyCNN(), 7, 3, 2},
		{"cnn more workers than chunks", tinyCNN(), 2, 4, 3},
		{"mlp exact multiple", tinyMLP(), 6, 2, 2},
		{"mlp n below batch", tinyMLP(), 3, 8, 1},
		{"resnet eval mode", tinyResNet(25), 5, 2, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(4, 4))
			w := randomWeights(t, tc.arch, 3)
			d, k := tc.arch.InputSize(), tc.arch.Classes
			x := toFloat32(randomSlice(rng, tc.n*d))
			upstream := toFloat32(randomSlice(rng, tc.n*k))
			for i := range upstream {
				upstream[i] = 2*upstream[i] - 1
			}
			ref, err := NewNet(w, 1, PurposeVJP, NetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			want := make([]float32, tc.n*d)
			for i := range tc.n {
				if err := ref.LogitsVJP(x[i*d:(i+1)*d], upstream[i*k:(i+1)*k], want[i*d:(i+1)*d]); err != nil {
					t.Fatal(err)
				}
			}

			e, err := NewEvaluator(w, tc.batch, tc.worker)
			if err != nil {
				t.Fatal(err)
			}
			m := e
			grad := make([]float32, tc.n*d)
			if err := m.LogitsVJP(x, tc.n, upstream, grad); err != nil {
				t.Fatal(err)
			}
			closeSlices(t, "vjp", grad, want, 1e-4)

			// The same product through the cross-entropy: upstream
			// softmax − onehot gives the Evaluator's InputGrad.
			logits := make([]float32, tc.n*k)
			if err := m.Logits(x, tc.n, logits); err != nil {
				t.Fatal(err)
			}
			target := make([]float32, tc.n*k)
			ceUp := make([]float32, tc.n*k)
			for i := range tc.n {
				target[i*k+i%k] = 1
				logp := logSoftmaxRow(toFloat64s(logits[i*k : (i+1)*k]))
				for j := range k {
					ceUp[i*k+j] = float32(math.Exp(logp[j])) - target[i*k+j]
				}
			}
			ceGrad := make([]float32, tc.n*d)
			if _, err := m.InputGrad(x, tc.n, target, ceGrad); err != nil {
				t.Fatal(err)
			}
			if err := m.LogitsVJP(x, tc.n, ceUp, grad); err != nil {
				t.Fatal(err)
			}
			closeSlices(t, "vjp of softmax − onehot", grad, ceGrad, 1e-4)
		})
	}
}

func TestEvaluatorLogitsVJPFollowsSetWeights(t *testing.T) {
	arch := tinyMLP()
	rng := rand.New(rand.NewPCG(2, 5))
	w1, w2 := randomWeights(t, arch, 1), randomWeights(t, arch, 2)
	const n = 5
	d, k := arch.InputSize(), arch.Classes
	x := toFloat32(randomSlice(rng, n*d))
	upstream := toFloat32(randomSlice(rng, n*k))
	e, err := NewEvaluator(w1, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	before := make([]float32, n*d)
	if err := e.LogitsVJP(x, n, upstream, before); err != nil {
		t.Fatal(err)
	}
	if err := e.SetWeights(w2); err != nil {
		t.Fatal(err)
	}
	after := make([]float32, n*d)
	if err := e.LogitsVJP(x, n, upstream, after); err != nil {
		t.Fatal(err)
	}
	ref, err := NewEvaluator(w2, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]float32, n*d)
	if err := ref.LogitsVJP(x, n, upstream, want); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(after, want) {
		t.Error("LogitsVJP after SetWeights differs from a fresh Evaluator on the new weights")
	}
	if slices.Equal(before, after) {
		t.Error("LogitsVJP did not change with the weights")
	}
}

func TestLogitsVJPRejectsBadUse(t *testing.T) {
	arch := tinyCNN()
	w := randomWeights(t, arch, 1)
	d, k := arch.InputSize(), arch.Classes
	e, err := NewEvaluator(w, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	logitsNet, err := NewNet(w, 1, PurposeLogits, NetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	x, up, grad := make([]float32, 3*d), make([]float32, 3*k), make([]float32, 3*d)
	for _, tc := range []struct {
		name string
		run  func() error
		want string
	}{
		{"short upstream", func() error { return e.LogitsVJP(x, 3, up[:k], grad) }, "upstream has"},
		{"short grad", func() error { return e.LogitsVJP(x, 3, up, grad[:d]) }, "grad has"},
		{"short x", func() error { return e.LogitsVJP(x[:d], 3, up, grad) }, "x has"},
		{"negative n", func() error { return e.LogitsVJP(nil, -1, nil, nil) }, "negative"},
		{"logits net", func() error { return logitsNet.LogitsVJP(x[:d], up[:k], grad[:d]) }, "needs a vjp net"},
		{"train mode", func() error { _, err := NewNet(w, 1, PurposeVJP, NetOptions{Mode: Train}); return err }, "Eval mode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	if err := e.LogitsVJP(nil, 0, nil, nil); err != nil {
		t.Errorf("zero samples: %v", err)
	}
}

func TestEvaluatorInputShapeIsTheArchInput(t *testing.T) {
	arch := tinyCNN()
	e, err := NewEvaluator(randomWeights(t, arch, 1), 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	shape := e.InputShape()
	if !slices.Equal(shape, arch.Input) {
		t.Fatalf("InputShape %v, want %v", shape, arch.Input)
	}
	shape[0] = 99
	if got := e.InputShape(); !slices.Equal(got, arch.Input) {
		t.Errorf("changing the returned shape changed the Evaluator's to %v", got)
	}
}
