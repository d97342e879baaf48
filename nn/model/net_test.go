package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Finite-difference checks of whole networks and of the losses, in float64.

const (
	fdStep   = 1e-6
	fdRelTol = 1e-5
	fdAbsTol = 1e-7
)

func tinyMLP() Arch {
	return Arch{Kind: KindMLP, Input: []int{1, 3, 3}, Classes: 3, Hidden: []int{5, 4}}
}

func tinyCNN() Arch {
	return Arch{Kind: KindCNN, Input: []int{2, 7, 6}, Classes: 3, Channels: []int{3, 2}, Hidden: []int{4}}
}

func tinyResNet(side int) Arch {
	return Arch{Kind: KindPreActResNet18, Input: []int{2, side, side}, Classes: 3, Width: 1}
}

// randomWeights initialises arch and gives BatchNorm layers non-trivial
// affine parameters and running statistics, so Eval-mode BatchNorm is tested
// away from the identity. It draws Kaiming-normal weights, so that the
// numeric tests keep the weights (and tolerances) they were written with
// before InitPyTorch became the default.
func randomWeights(t *testing.T, arch Arch, seed uint64) *Weights {
	t.Helper()
	w, err := InitWith(arch, seed, InitKaimingNormal)
	if err != nil {
		t.Fatalf("init %s: %v", arch.Kind, err)
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	specs, _ := paramSpecs(arch)
	for i, s := range specs {
		d := w.Params[i].Data
		for j := range d {
			switch s.role {
			case roleZeros, roleBias, roleRunningMean:
				d[j] = float32(rng.NormFloat64() * 0.1)
			case roleOnes:
				d[j] = float32(1 + rng.NormFloat64()*0.1)
			case roleRunningVar:
				d[j] = float32(0.5 + rng.Float64())
			}
		}
	}
	return w
}

func randomSlice(rng *rand.Rand, n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = rng.Float64()
	}
	return s
}

// softTargets gives each row a random distribution (not one-hot).
func softTargets(rng *rand.Rand, rows, k int) []float64 {
	s := randomSlice(rng, rows*k)
	for r := range rows {
		sum := 0.0
		for _, v := range s[r*k : (r+1)*k] {
			sum += v
		}
		for j := range k {
			s[r*k+j] /= sum
		}
	}
	return s
}

// netLossFunc runs the net's loss at the current weights and inputs.
type netLossFunc func() float64

// gradientCheck compares the graph's gradients with central differences at
// up to coords coordinates of every trainable tensor and of each input slice.
func gradientCheck(t *testing.T, n *Net, loss netLossFunc, inputs map[string][]float64, inputGrads map[string][]float64, coords int, rng *rand.Rand) {
	t.Helper()
	analytic := make([][]float64, len(n.specs))
	for i := range n.specs {
		if g := n.gradValue(i); g != nil {
			analytic[i] = make([]float64, n.specs[i].numel())
			copyFromValue(analytic[i], g)
		}
	}
	check := func(what string, data []float64, want []float64) {
		idx := sampleIndices(rng, len(data), coords)
		for _, j := range idx {
			orig := data[j]
			data[j] = orig + fdStep
			up := loss()
			data[j] = orig - fdStep
			down := loss()
			data[j] = orig
			fd := (up - down) / (2 * fdStep)
			if d := math.Abs(fd - want[j]); d > fdAbsTol+fdRelTol*math.Max(math.Abs(fd), math.Abs(want[j])) {
				t.Errorf("%s[%d]: analytic %.10g, finite difference %.10g", what, j, want[j], fd)
			}
		}
	}
	for i, s := range n.specs {
		if analytic[i] == nil {
			continue
		}
		check(s.name, n.values[i].Data().([]float64), analytic[i])
	}
	for name, in := range inputs {
		check(name, in, inputGrads[name])
	}
}

// sampleIndices returns all of 0..n-1 when n <= k, else k distinct random ones.
func sampleIndices(rng *rand.Rand, n, k int) []int {
	if n <= k {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	return rng.Perm(n)[:k]
}

func TestTrainGradientsMatchFiniteDifferences(t *testing.T) {
	cases := []struct {
		name   string
		arch   Arch
		batch  int
		mode   Mode
		trades bool
		coords int
		heavy  bool
	}{
		{"mlp soft CE", tinyMLP(), 3, Train, false, 40, false},
		{"mlp TRADES", tinyMLP(), 3, Train, true, 40, false},
		{"cnn soft CE", tinyCNN(), 2, Eval, false, 30, false},
		{"cnn TRADES", tinyCNN(), 2, Eval, true, 30, false},
		{"resnet train mode", tinyResNet(25), 2, Train, false, 4, false},
		{"resnet eval mode", tinyResNet(25), 2, Eval, false, 4, true},
		{"resnet TRADES train mode, sliced pool", tinyResNet(33), 2, Train, true, 3, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.heavy && testing.Short() {
				t.Skip("heavy case skipped in -short mode")
			}
			rng := rand.New(rand.NewPCG(11, 12))
			w := randomWeights(t, tc.arch, 3)
			purpose := PurposeTrain
			if tc.trades {
				purpose = PurposeTrainTRADES
			}
			n, err := NewNet(w, tc.batch, purpose, NetOptions{Mode: tc.mode, Dtype: tensor.Float64, withInputGrads: true})
			if err != nil {
				t.Fatal(err)
			}
			x := randomSlice(rng, tc.batch*tc.arch.InputSize())
			xAdv := randomSlice(rng, len(x))
			target := softTargets(rng, tc.batch, tc.arch.Classes)
			const beta = 3.0
			run := func() float64 {
				var adv []float64
				if tc.trades {
					adv = xAdv
				}
				l, err := netTrainStep(n, x, adv, target, nil, beta)
				if err != nil {
					t.Fatal(err)
				}
				return l
			}
			run()
			inputs := map[string][]float64{"x": x}
			grads := map[string][]float64{"x": readValue(n.xGradValue())}
			if tc.trades {
				inputs["x_adv"] = xAdv
				grads["x_adv"] = readValue(n.xAdvGradValue())
			}
			gradientCheck(t, n, run, inputs, grads, tc.coords, rng)
		})
	}
}

func TestInputGradientMatchesFiniteDifferences(t *testing.T) {
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
			rng := rand.New(rand.NewPCG(5, 6))
			w := randomWeights(t, tc.arch, 4)
			n, err := NewNet(w, tc.batch, PurposeInputGrad, NetOptions{Dtype: tensor.Float64})
			if err != nil {
				t.Fatal(err)
			}
			x := randomSlice(rng, tc.batch*tc.arch.InputSize())
			target := softTargets(rng, tc.batch, tc.arch.Classes)
			grad := make([]float64, len(x))
			scratch := make([]float64, len(x))
			if _, err := netInputGrad(n, x, target, grad); err != nil {
				t.Fatal(err)
			}
			loss := func() float64 {
				l, err := netInputGrad(n, x, target, scratch)
				if err != nil {
					t.Fatal(err)
				}
				return l
			}
			gradientCheck(t, n, loss, map[string][]float64{"x": x}, map[string][]float64{"x": grad}, tc.coords, rng)
		})
	}
}

// TestLossValues checks the loss formulas against a direct computation from
// the logits: soft-target CE (summed for attacks, averaged for training) and
// the TRADES objective.
func TestLossValues(t *testing.T) {
	arch := tinyMLP()
	const batch = 4
	rng := rand.New(rand.NewPCG(1, 2))
	w := randomWeights(t, arch, 9)
	x := randomSlice(rng, batch*arch.InputSize())
	xAdv := randomSlice(rng, len(x))
	target := softTargets(rng, batch, arch.Classes)
	logitsOf := func(in []float64) []float64 {
		n, err := NewNet(w, batch, PurposeLogits, NetOptions{Dtype: tensor.Float64})
		if err != nil {
			t.Fatal(err)
		}
		out := make([]float64, batch*arch.Classes)
		if err := netLogits(n, in, out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	clean, adv := logitsOf(x), logitsOf(xAdv)
	ceSum, klSum := 0.0, 0.0
	for i := range batch {
		lp := logSoftmaxRow(clean[i*arch.Classes : (i+1)*arch.Classes])
		lq := logSoftmaxRow(adv[i*arch.Classes : (i+1)*arch.Classes])
		for k := range arch.Classes {
			ceSum -= target[i*arch.Classes+k] * lp[k]
			klSum += math.Exp(lp[k]) * (lp[k] - lq[k])
		}
	}
	const beta = 6.0

	attack, err := NewNet(w, batch, PurposeInputGrad, NetOptions{Dtype: tensor.Float64})
	if err != nil {
		t.Fatal(err)
	}
	gotAttack, err := netInputGrad(attack, x, target, make([]float64, len(x)))
	if err != nil {
		t.Fatal(err)
	}
	train, err := NewNet(w, batch, PurposeTrain, NetOptions{Dtype: tensor.Float64})
	if err != nil {
		t.Fatal(err)
	}
	gotTrain, err := netTrainStep(train, x, nil, target, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	trades, err := NewNet(w, batch, PurposeTrainTRADES, NetOptions{Dtype: tensor.Float64})
	if err != nil {
		t.Fatal(err)
	}
	gotTrades, err := netTrainStep(trades, x, xAdv, target, nil, beta)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"attack soft CE sum", gotAttack, ceSum},
		{"train soft CE mean", gotTrain, ceSum / batch},
		{"TRADES", gotTrades, ceSum/batch + beta*klSum/batch},
	} {
		if math.Abs(c.got-c.want) > 1e-12*math.Max(1, math.Abs(c.want)) {
			t.Errorf("%s = %.15g, want %.15g", c.name, c.got, c.want)
		}
	}
}

// TestGradientsDoNotAccumulate runs the same training pass twice: gorgonia
// must not add the second pass's gradients to the first.
func TestGradientsDoNotAccumulate(t *testing.T) {
	arch := tinyCNN()
	rng := rand.New(rand.NewPCG(3, 3))
	w := randomWeights(t, arch, 2)
	n, err := NewNet(w, 2, PurposeTrain, NetOptions{Mode: Eval})
	if err != nil {
		t.Fatal(err)
	}
	x := toFloat32(randomSlice(rng, 2*arch.InputSize()))
	target := toFloat32(softTargets(rng, 2, arch.Classes))
	var first [][]float32
	for pass := range 3 {
		if _, err := n.TrainStep(x, target, nil); err != nil {
			t.Fatal(err)
		}
		g := n.Grads()
		if pass == 0 {
			first = make([][]float32, len(g))
			for i := range g {
				first[i] = append([]float32(nil), g[i]...)
			}
			continue
		}
		for i := range g {
			for j := range g[i] {
				if g[i][j] != first[i][j] {
					t.Fatalf("pass %d: grad %s[%d] = %g, first pass %g", pass, n.specs[i].name, j, g[i][j], first[i][j])
				}
			}
		}
	}
}

func TestNetRejectsBadUse(t *testing.T) {
	w, err := Init(tinyMLP(), 1)
	if err != nil {
		t.Fatal(err)
	}
	other, err := Init(tinyCNN(), 1)
	if err != nil {
		t.Fatal(err)
	}
	logits, err := NewNet(w, 2, PurposeLogits, NetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		do   func() error
		want string
	}{
		{"zero batch", func() error { _, err := NewNet(w, 0, PurposeLogits, NetOptions{}); return err }, "batch size must be positive, got 0"},
		{"input grad in train mode", func() error { _, err := NewNet(w, 1, PurposeInputGrad, NetOptions{Mode: Train}); return err },
			"input gradients are computed in Eval mode only"},
		{"bad dtype", func() error { _, err := NewNet(w, 1, PurposeLogits, NetOptions{Dtype: tensor.Int}); return err }, "dtype must be float32 or float64"},
		{"unknown purpose", func() error { _, err := NewNet(w, 1, Purpose(99), NetOptions{}); return err }, "unknown purpose 99"},
		{"short input", func() error { return logits.Logits(make([]float32, 3), make([]float32, 6)) }, "x has 3 values, want 18"},
		{"short output", func() error { return logits.Logits(make([]float32, 18), make([]float32, 5)) }, "logits has 5 values, want 6"},
		{"wrong purpose", func() error { _, err := logits.TrainStep(make([]float32, 18), make([]float32, 6), nil); return err },
			"needs a train net, this one is logits"},
		{"weights of another arch", func() error { return logits.SetWeights(other) }, "weights have 8 tensors, the net has 6"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.do(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestWeightsRoundTrip(t *testing.T) {
	arch := tinyResNet(25)
	w := randomWeights(t, arch, 8)
	n, err := NewNet(w, 1, PurposeLogits, NetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := n.Weights()
	for i, p := range w.Params {
		q := got.Params[i]
		if q.Name != p.Name || q.Buffer != p.Buffer || fmt.Sprint(q.Shape) != fmt.Sprint(p.Shape) {
			t.Fatalf("param %d: got %s%v buffer=%v, want %s%v buffer=%v", i, q.Name, q.Shape, q.Buffer, p.Name, p.Shape, p.Buffer)
		}
		for j := range p.Data {
			if q.Data[j] != p.Data[j] {
				t.Fatalf("%s[%d] = %g, want %g", p.Name, j, q.Data[j], p.Data[j])
			}
		}
	}
}

func logSoftmaxRow(z []float64) []float64 {
	m := math.Inf(-1)
	for _, v := range z {
		m = math.Max(m, v)
	}
	s := 0.0
	for _, v := range z {
		s += math.Exp(v - m)
	}
	out := make([]float64, len(z))
	for i, v := range z {
		out[i] = v - m - math.Log(s)
	}
	return out
}

// readValue copies a graph value after a run.
func readValue(v G.Value) []float64 {
	out := make([]float64, v.Shape().TotalSize())
	copyFromValue(out, v)
	return out
}

func toFloat32(s []float64) []float32 {
	out := make([]float32, len(s))
	for i, v := range s {
		out[i] = float32(v)
	}
	return out
}

// TestRunningStatsUpdateByHand checks PyTorch's BatchNorm2d running update
// (momentum 0.1, unbiased variance, num_batches_tracked) on the first
// BatchNorm of a ResNet whose conv1 is the identity, so that layer1.0.bn1
// sees the input itself. The TRADES step updates with the clean, adversarial
// and clean statistics in turn.
func TestRunningStatsUpdateByHand(t *testing.T) {
	arch := Arch{Kind: KindPreActResNet18, Input: []int{1, 25, 25}, Classes: 2, Width: 1}
	w, err := Init(arch, 0)
	if err != nil {
		t.Fatal(err)
	}
	conv1 := w.Params[0]
	clear(conv1.Data)
	conv1.Data[4] = 1 // centre of the 3x3 kernel
	const batch = 2
	rng := rand.New(rand.NewPCG(2, 2))
	d := arch.InputSize()
	stats := func(x []float32) (mean, unbiasedVar float64) {
		for _, v := range x {
			mean += float64(v)
		}
		mean /= float64(len(x))
		for _, v := range x {
			unbiasedVar += (float64(v) - mean) * (float64(v) - mean)
		}
		return mean, unbiasedVar / float64(len(x)-1)
	}
	bn1 := func(n *Net) (mean, variance, count float32) {
		p := n.Weights().Params
		if p[1].Name != "layer1.0.bn1.weight" {
			t.Fatalf("unexpected layout: %s", p[1].Name)
		}
		return p[3].Data[0], p[4].Data[0], p[5].Data[0]
	}
	near := func(what string, got float32, want float64) {
		if math.Abs(float64(got)-want) > 1e-5 {
			t.Errorf("%s = %.7g, want %.7g", what, got, want)
		}
	}

	t.Run("two forward passes", func(t *testing.T) {
		n, err := NewNet(w, batch, PurposeLogits, NetOptions{Mode: Train})
		if err != nil {
			t.Fatal(err)
		}
		rm, rv := 0.0, 1.0
		out := make([]float32, batch*arch.Classes)
		for pass := range 2 {
			x := toFloat32(randomSlice(rng, batch*d))
			for i := range x {
				x[i] = x[i]*float32(pass+1) + float32(pass)
			}
			if err := n.Logits(x, out); err != nil {
				t.Fatal(err)
			}
			mu, v := stats(x)
			rm = 0.9*rm + 0.1*mu
			rv = 0.9*rv + 0.1*v
			m, vv, c := bn1(n)
			near("running_mean", m, rm)
			near("running_var", vv, rv)
			near("num_batches_tracked", c, float64(pass+1))
		}
	})
	t.Run("TRADES step", func(t *testing.T) {
		n, err := NewNet(w, batch, PurposeTrainTRADES, NetOptions{Mode: Train})
		if err != nil {
			t.Fatal(err)
		}
		x := toFloat32(randomSlice(rng, batch*d))
		xAdv := toFloat32(randomSlice(rng, batch*d))
		for i := range xAdv {
			xAdv[i] = 2*xAdv[i] - 0.3
		}
		target := []float32{1, 0, 0, 1}
		if _, err := n.TrainStepTRADES(x, xAdv, target, nil, 6); err != nil {
			t.Fatal(err)
		}
		muC, vC := stats(x)
		muA, vA := stats(xAdv)
		rm, rv := 0.0, 1.0
		for _, s := range [][2]float64{{muC, vC}, {muA, vA}, {muC, vC}} {
			rm = 0.9*rm + 0.1*s[0]
			rv = 0.9*rv + 0.1*s[1]
		}
		m, vv, c := bn1(n)
		near("running_mean", m, rm)
		near("running_var", vv, rv)
		near("num_batches_tracked", c, 3)
	})
	t.Run("eval mode leaves buffers alone", func(t *testing.T) {
		n, err := NewNet(w, batch, PurposeTrain, NetOptions{Mode: Eval})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.TrainStep(toFloat32(randomSlice(rng, batch*d)), []float32{1, 0, 0, 1}, nil); err != nil {
			t.Fatal(err)
		}
		m, vv, c := bn1(n)
		near("running_mean", m, 0)
		near("running_var", vv, 1)
		near("num_batches_tracked", c, 0)
	})
}

// tinyResidual is a residual kind at its smallest width (1 channel per
// ResNet stage unit, widen 1).
func tinyResidual(kind string, side int) Arch {
	a := Arch{Kind: kind, Input: []int{2, side, side}, Classes: 3, Width: 1}
	if residualKinds[kind].wide {
		a.Width, a.Widen = 0, 1
	}
	return a
}
