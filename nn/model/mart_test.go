package model

import (
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"
)

// The MART loss: its per-row gradient and the whole nets' gradients against
// central finite differences in float64, its value against a direct
// transcription of the reference's mart_loss, and the order of the running
// statistics updates. The PyTorch cross-check is in mart_awp_torch_test.go.

// oneHotTargets gives each row a one-hot target at a random class.
func oneHotTargets(rng *rand.Rand, rows, k int) []float64 {
	t := make([]float64, rows*k)
	for r := range rows {
		t[r*k+rng.IntN(k)] = 1
	}
	return t
}

func TestMARTRowGradientMatchesFiniteDifferences(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := range 60 {
		k := 2 + trial%5
		z, u := make([]float64, k), make([]float64, k)
		for j := range k {
			z[j], u[j] = 3*rng.NormFloat64(), 3*rng.NormFloat64()
		}
		target := oneHotTargets(rng, 1, k)
		if trial%2 == 1 {
			target = softTargets(rng, 1, k)
		}
		beta := []float64{6, 0, 0.5}[trial%3]
		scratch := make([]float64, 2*k)
		dz, du := make([]float64, k), make([]float64, k)
		martRow(z, u, target, beta, scratch, martRowGrad{dz: dz, du: du})
		for _, in := range []struct {
			name string
			v    []float64
			grad []float64
		}{{"z", z, dz}, {"u", u, du}} {
			for j := range k {
				orig := in.v[j]
				in.v[j] = orig + fdStep
				up := martRow(z, u, target, beta, scratch, martRowGrad{})
				in.v[j] = orig - fdStep
				down := martRow(z, u, target, beta, scratch, martRowGrad{})
				in.v[j] = orig
				fd := (up - down) / (2 * fdStep)
				if d := math.Abs(fd - in.grad[j]); d > fdAbsTol+fdRelTol*math.Max(math.Abs(fd), math.Abs(in.grad[j])) {
					t.Errorf("trial %d (K %d, beta %v): dℓ/d%s[%d] = %.10g, finite difference %.10g", trial, k, beta, in.name, j, in.grad[j], fd)
				}
			}
		}
	}
}

// martReference is the MART loss of [B,K] logits written out as mart_loss
// computes it: probabilities first, then the logs of the guarded
// probabilities, y the target's argmax.
func martReference(clean, adv, target []float64, b, k int, beta float64) float64 {
	var lossAdv, lossRobust float64
	for i := range b {
		z, u, tr := clean[i*k:(i+1)*k], adv[i*k:(i+1)*k], target[i*k:(i+1)*k]
		p, q := softmax64(z), softmax64(u)
		y := 0
		for j := range k {
			if tr[j] > tr[y] {
				y = j
			}
		}
		// new_y: the top class of q, or the runner-up when the top one is y.
		top, second := -1, -1
		for j := range k {
			switch {
			case top < 0 || q[j] > q[top]:
				top, second = j, top
			case second < 0 || q[j] > q[second]:
				second = j
			}
		}
		newY := top
		if top == y {
			newY = second
		}
		ls := logSoftmaxRow(u)
		for j := range k {
			lossAdv -= tr[j] * ls[j]
		}
		lossAdv -= math.Log(1.0001 - q[newY] + 1e-12)
		kl := 0.0
		for j := range k {
			kl += p[j] * (math.Log(p[j]) - math.Log(q[j]+1e-12))
		}
		lossRobust += kl * (1.0000001 - p[y])
	}
	return lossAdv/float64(b) + beta*lossRobust/float64(b)
}

func softmax64(z []float64) []float64 {
	ls := logSoftmaxRow(z)
	for j, v := range ls {
		ls[j] = math.Exp(v)
	}
	return ls
}

func TestMARTLossValue(t *testing.T) {
	arch := tinyMLP()
	const b, beta = 4, 6.0
	k := arch.Classes
	w := randomWeights(t, arch, 9)
	rng := rand.New(rand.NewPCG(5, 6))
	x := randomSlice(rng, b*arch.InputSize())
	xAdv := randomSlice(rng, len(x))
	logitsNet, err := NewNet(w, b, PurposeLogits, NetOptions{Dtype: tensor.Float64})
	if err != nil {
		t.Fatal(err)
	}
	clean, adv := make([]float64, b*k), make([]float64, b*k)
	if err := netLogits(logitsNet, x, clean); err != nil {
		t.Fatal(err)
	}
	if err := netLogits(logitsNet, xAdv, adv); err != nil {
		t.Fatal(err)
	}
	n, err := NewNet(w, b, PurposeTrainMART, NetOptions{Dtype: tensor.Float64})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		target []float64
	}{{"one-hot", oneHotTargets(rng, b, k)}, {"soft", softTargets(rng, b, k)}} {
		got, err := netTrainStepMART(n, x, xAdv, tc.target, nil, beta)
		if err != nil {
			t.Fatal(err)
		}
		want := martReference(clean, adv, tc.target, b, k, beta)
		if math.Abs(got-want) > 1e-12*math.Max(1, math.Abs(want)) {
			t.Errorf("%s targets: MART loss %.15g, reference %.15g", tc.name, got, want)
		}
	}
}

func TestMARTGradientsMatchFiniteDifferences(t *testing.T) {
	cases := []struct {
		name   string
		arch   Arch
		batch  int
		mode   Mode
		soft   bool
		coords int
		heavy  bool
	}{
		{"mlp train mode one-hot", tinyMLP(), 3, Train, false, 40, false},
		{"mlp train mode soft", tinyMLP(), 3, Train, true, 40, false},
		{"cnn eval mode", tinyCNN(), 2, Eval, false, 30, false},
		{"resnet train mode", tinyResNet(25), 2, Train, true, 4, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.heavy && testing.Short() {
				t.Skip("heavy case skipped in -short mode")
			}
			rng := rand.New(rand.NewPCG(13, 14))
			w := randomWeights(t, tc.arch, 3)
			n, err := NewNet(w, tc.batch, PurposeTrainMART, NetOptions{Mode: tc.mode, Dtype: tensor.Float64, withInputGrads: true})
			if err != nil {
				t.Fatal(err)
			}
			x := randomSlice(rng, tc.batch*tc.arch.InputSize())
			xAdv := randomSlice(rng, len(x))
			target := oneHotTargets(rng, tc.batch, tc.arch.Classes)
			if tc.soft {
				target = softTargets(rng, tc.batch, tc.arch.Classes)
			}
			run := func() float64 {
				l, err := netTrainStepMART(n, x, xAdv, target, nil, 6)
				if err != nil {
					t.Fatal(err)
				}
				return l
			}
			run()
			inputs := map[string][]float64{"x": x, "x_adv": xAdv}
			grads := map[string][]float64{"x": readValue(n.xGradValue()), "x_adv": readValue(n.xAdvGradValue())}
			gradientCheck(t, n, run, inputs, grads, tc.coords, rng)
		})
	}
}

// TestMARTRunningStatsAreCleanThenAdversarial checks that a Train-mode MART
// step leaves the running statistics that model(x) followed by model(x_adv)
// in model.train() leave, the order of mart_loss.
func TestMARTRunningStatsAreCleanThenAdversarial(t *testing.T) {
	arch := tinyResNet(25)
	const b = 3
	w := randomWeights(t, arch, 4)
	rng := rand.New(rand.NewPCG(7, 8))
	x := toFloat32(randomSlice(rng, b*arch.InputSize()))
	xAdv := toFloat32(randomSlice(rng, len(x)))
	target := toFloat32(softTargets(rng, b, arch.Classes))
	mart, err := NewNet(w, b, PurposeTrainMART, NetOptions{Mode: Train})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mart.TrainStepMART(x, xAdv, target, nil, 6); err != nil {
		t.Fatal(err)
	}
	passes, err := NewNet(w, b, PurposeLogits, NetOptions{Mode: Train})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, b*arch.Classes)
	for _, in := range [][]float32{x, xAdv} {
		if err := passes.Logits(in, out); err != nil {
			t.Fatal(err)
		}
	}
	got, want := mart.Weights(), passes.Weights()
	for i, p := range want.Params {
		if !p.Buffer {
			continue
		}
		for j, v := range p.Data {
			if g := got.Params[i].Data[j]; math.Abs(float64(g-v)) > 1e-6*(1+math.Abs(float64(v))) {
				t.Fatalf("%s[%d] = %v after the MART step, %v after model(x), model(x_adv)", p.Name, j, g, v)
			}
		}
	}
}

func TestMARTRejectsBadUse(t *testing.T) {
	arch := tinyMLP()
	w := randomWeights(t, arch, 1)
	n, err := NewNet(w, 2, PurposeTrainMART, NetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d, k := arch.InputSize(), arch.Classes
	x, target := make([]float32, 2*d), make([]float32, 2*k)
	for _, tc := range []struct {
		name string
		run  func() error
	}{
		{"short x_adv", func() error { _, err := n.TrainStepMART(x, x[:d], target, nil, 6); return err }},
		{"negative beta", func() error { _, err := n.TrainStepMART(x, x, target, nil, -1); return err }},
		{"NaN beta", func() error { _, err := n.TrainStepMART(x, x, target, nil, math.NaN()); return err }},
		{"TRADES step on a MART net", func() error { _, err := n.TrainStepTRADES(x, x, target, nil, 6); return err }},
		{"MART step on a TRADES net", func() error {
			tr, err := NewNet(w, 2, PurposeTrainTRADES, NetOptions{})
			if err != nil {
				return nil
			}
			_, err = tr.TrainStepMART(x, x, target, nil, 6)
			return err
		}},
		{"trainer MART step with short x_adv", func() error {
			tr, err := NewTrainer(w, 2, 1)
			if err != nil {
				return nil
			}
			_, _, err = tr.StepMART(x, x[:d], target, 2, 6)
			return err
		}},
	} {
		if err := tc.run(); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}
