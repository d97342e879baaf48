package optim

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/nn/metric"
)

func closeTo(got []float32, want []float64, tol float64) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if math.Abs(float64(got[i])-want[i]) > tol {
			return false
		}
	}
	return true
}

func TestOneHotAndSmooth(t *testing.T) {
	tests := []struct {
		name   string
		labels []int32
		k      int
		eps    float64
		want   []float64
	}{
		{"one-hot", []int32{2, 0}, 3, 0, []float64{0, 0, 1, 1, 0, 0}},
		{"smooth 0.1 over 4", []int32{1}, 4, 0.1, []float64{0.025, 0.925, 0.025, 0.025}},
		{"smooth 0.3 over 2", []int32{0, 1}, 2, 0.3, []float64{0.85, 0.15, 0.15, 0.85}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := make([]float32, len(tc.labels)*tc.k)
			if tc.eps == 0 {
				OneHot(tc.labels, tc.k, out)
			} else {
				Smooth(tc.labels, tc.k, tc.eps, out)
			}
			if !closeTo(out, tc.want, 1e-7) {
				t.Errorf("targets %v, want %v", out, tc.want)
			}
		})
	}
}

func TestCheckLabels(t *testing.T) {
	if err := CheckLabels([]int32{0, 2, 1}, 3); err != nil {
		t.Error(err)
	}
	for _, bad := range [][]int32{{0, 3}, {-1}} {
		if err := CheckLabels(bad, 3); err == nil {
			t.Errorf("CheckLabels(%v, 3) accepted", bad)
		}
	}
}

// sglrUpdates applies the two hand-worked updates of the tests below to a
// bank over hard labels [0, 2, 1] (sample 2 is never updated).
func sglrUpdates(t *testing.T, cfg SGLRConfig) *SGLRBank {
	t.Helper()
	b, err := NewSGLRBank([]int32{0, 2, 1}, 3, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Update 1, rows 0 and 1 (λ = 0.2, α = 0.9):
	//   row 0: f~ = 0.2·[.5 .3 .2] + 0.8·[.2 .5 .3] = [.26 .46 .28]; S = 0.9·[1 0 0] + 0.1·f~ = [.926 .046 .028]
	//   row 1: f~ = 0.2·[.1 .1 .8] + 0.8·[.6 .3 .1] = [.5 .26 .24];  S = 0.9·[0 0 1] + 0.1·f~ = [.05 .026 .924]
	b.Update([]int{0, 1},
		[]float32{0.5, 0.3, 0.2, 0.1, 0.1, 0.8},
		[]float32{0.2, 0.5, 0.3, 0.6, 0.3, 0.1})
	// Update 2, rows 1 then 0:
	//   row 1: f~ = 0.2·[0 1 0] + 0.8·[.5 .5 0] = [.4 .6 0]; S = 0.9·[.05 .026 .924] + [.04 .06 0] = [.085 .0834 .8316]
	//   row 0: f~ = [0 0 1];                                S = 0.9·[.926 .046 .028] + [0 0 .1] = [.8334 .0414 .1252]
	b.Update([]int{1, 0},
		[]float32{0, 1, 0, 0, 0, 1},
		[]float32{0.5, 0.5, 0, 0, 0, 1})
	return b
}

func TestSGLRBankUpdatesByHand(t *testing.T) {
	b := sglrUpdates(t, SGLRConfig{Lambda: 0.2, Alpha: 0.9, FixedR: -1})
	want := []float64{0.8334, 0.0414, 0.1252, 0.085, 0.0834, 0.8316, 0, 1, 0}
	if got := b.Bank(); !closeTo(got, want, 1e-6) {
		t.Errorf("bank %v, want %v", got, want)
	}
	out := make([]float32, 6)
	b.Targets([]int{1, 2}, 0, out)
	if !closeTo(out, []float64{0.085, 0.0834, 0.8316, 0, 1, 0}, 1e-6) {
		t.Errorf("targets of rows 1,2 = %v", out)
	}
}

func TestSGLRBankWarmUp(t *testing.T) {
	b := sglrUpdates(t, SGLRConfig{Lambda: 0.2, Alpha: 0.9, WarmupEpochs: 2, FixedR: -1})
	tests := []struct {
		epoch    int
		refining bool
		want     []float64 // targets of row 0
	}{
		{0, false, []float64{1, 0, 0}},
		{1, false, []float64{1, 0, 0}},
		{2, true, []float64{0.8334, 0.0414, 0.1252}},
		{9, true, []float64{0.8334, 0.0414, 0.1252}},
	}
	for _, tc := range tests {
		if got := b.Refining(tc.epoch); got != tc.refining {
			t.Errorf("Refining(%d) = %v, want %v", tc.epoch, got, tc.refining)
		}
		out := make([]float32, 3)
		b.Targets([]int{0}, tc.epoch, out)
		if !closeTo(out, tc.want, 1e-6) {
			t.Errorf("epoch %d: targets %v, want %v", tc.epoch, out, tc.want)
		}
	}
}

func TestSGLRBankFixedR(t *testing.T) {
	// Row 0's history H = 0.9·(0.1·[.26 .46 .28]) + 0.1·[0 0 1] = [.0234 .0414 .1252],
	// summing to 1 − 0.9² = 0.19, so p~ = H/0.19.
	pTilde := []float64{0.0234 / 0.19, 0.0414 / 0.19, 0.1252 / 0.19}
	tests := []struct {
		name string
		r    float64
		want []float64 // targets of rows 0 and 2
	}{
		{"r = 0 is the hard label", 0, []float64{1, 0, 0, 0, 1, 0}},
		{"r = 0.5", 0.5, []float64{0.5*pTilde[0] + 0.5, 0.5 * pTilde[1], 0.5 * pTilde[2], 0, 1, 0}},
		{"r = 1 is p~ alone", 1, []float64{pTilde[0], pTilde[1], pTilde[2], 0, 1, 0}},
		{"r = 1 − α² reproduces the bank", 0.19, []float64{0.8334, 0.0414, 0.1252, 0, 1, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := sglrUpdates(t, SGLRConfig{Lambda: 0.2, Alpha: 0.9, FixedR: tc.r})
			out := make([]float32, 6)
			b.Targets([]int{0, 2}, 0, out)
			if !closeTo(out, tc.want, 1e-6) {
				t.Errorf("targets %v, want %v", out, tc.want)
			}
		})
	}
}

func TestSGLRBankStateRoundTrip(t *testing.T) {
	cfg := SGLRConfig{Lambda: 0.2, Alpha: 0.9, FixedR: 0.5}
	b := sglrUpdates(t, cfg)
	fresh, err := NewSGLRBank([]int32{0, 2, 1}, 3, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := fresh.SetState(b.State()); err != nil {
		t.Fatal(err)
	}
	want, got := make([]float32, 9), make([]float32, 9)
	b.Targets([]int{0, 1, 2}, 0, want)
	fresh.Targets([]int{0, 1, 2}, 0, got)
	if !slices.Equal(got, want) {
		t.Errorf("restored targets %v, want %v", got, want)
	}
	if err := fresh.SetState(b.Bank(), nil); err == nil {
		t.Error("state without the FixedR history accepted")
	}
	if err := fresh.SetState(make([]float32, 3), make([]float32, 9)); err == nil {
		t.Error("bank of the wrong size accepted")
	}
}

func TestSGLRBankRecovered(t *testing.T) {
	b, err := NewSGLRBank([]int32{0, 2, 1}, 3, SGLRConfig{Lambda: 0.2, Alpha: 0.9, FixedR: -1})
	if err != nil {
		t.Fatal(err)
	}
	// Ten updates towards class 1 move row 0's argmax from 0 (0.9^10 ≈ 0.35) to 1 (≈ 0.65).
	for range 10 {
		b.Update([]int{0}, []float32{0, 1, 0}, []float32{0, 1, 0})
	}
	tests := []struct {
		name    string
		clean   []int32
		flipped []bool
		share   float64
		n       int
	}{
		{"one of two flipped recovered", []int32{1, 0, 1}, []bool{true, true, false}, 0.5, 2},
		{"unflipped samples ignored", []int32{1, 2, 0}, []bool{false, false, true}, 0, 1},
		{"nothing flipped", []int32{0, 2, 1}, []bool{false, false, false}, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			share, n := b.Recovered(tc.clean, tc.flipped)
			if share != tc.share || n != tc.n {
				t.Errorf("Recovered = %v, %d; want %v, %d", share, n, tc.share, tc.n)
			}
		})
	}
}

func TestSGLRConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     SGLRConfig
		wantErr string
	}{
		{"reference", SGLRConfig{Lambda: 0.2, Alpha: 0.9, WarmupEpochs: 90, FixedR: -1}, ""},
		{"lambda above 1", SGLRConfig{Lambda: 1.5, Alpha: 0.9, FixedR: -1}, "lambda"},
		{"alpha 1", SGLRConfig{Lambda: 0.2, Alpha: 1, FixedR: -1}, "alpha"},
		{"negative warm-up", SGLRConfig{Lambda: 0.2, Alpha: 0.9, WarmupEpochs: -1, FixedR: -1}, "warm-up"},
		{"r above 1", SGLRConfig{Lambda: 0.2, Alpha: 0.9, FixedR: 2}, "fixed r"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewSGLRBank([]int32{0, 1}, 2, tc.cfg)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %v, want one mentioning %q", err, tc.wantErr)
			}
		})
	}
	if _, err := NewSGLRBank([]int32{0, 5}, 2, SGLRConfig{Alpha: 0.9, FixedR: -1}); err == nil {
		t.Error("label outside the classes accepted")
	}
}

func TestDistillTargetsGradientEqualsDistillationLoss(t *testing.T) {
	// Proposition 2: ∂/∂z [(1−α)·H(q,p) + α·KL(p_t‖p)] = ∂/∂z H(target, p)
	// with target = (1−α)q + α·p_t; both equal (p − target)/n for the mean loss.
	const n, k, alpha = 2, 3, 0.3
	labels := []int32{1, 0}
	teacher := []float32{0.2, 0.5, 0.3, 0.1, 0.1, 0.8}
	logits := []float32{0.5, -1.25, 2, 1, 0.25, -0.75}
	target := make([]float32, n*k)
	DistillTargets(labels, teacher, k, alpha, target)
	if want := []float64{0.06, 0.85, 0.09, 0.73, 0.03, 0.24}; !closeTo(target, want, 1e-7) {
		t.Fatalf("targets %v, want %v", target, want)
	}
	hard := make([]float32, n*k)
	OneHot(labels, k, hard)
	distillLoss := func(z []float32) float64 {
		return (1-alpha)*metric.SoftCE(z, hard, n, k) + alpha*metric.KL(teacher, z, n, k)
	}
	softLoss := func(z []float32) float64 { return metric.SoftCE(z, target, n, k) }
	p := make([]float32, n*k)
	metric.Softmax(logits, n, k, p)
	const h = 1.0 / 256
	for i := range logits {
		up, down := slices.Clone(logits), slices.Clone(logits)
		up[i] += h
		down[i] -= h
		gDistill := (distillLoss(up) - distillLoss(down)) / (2 * h)
		gSoft := (softLoss(up) - softLoss(down)) / (2 * h)
		analytic := float64(p[i]-target[i]) / n
		if math.Abs(gDistill-gSoft) > 1e-5 || math.Abs(gSoft-analytic) > 1e-5 {
			t.Errorf("logit %d: distillation grad %.7f, soft-CE grad %.7f, analytic %.7f", i, gDistill, gSoft, analytic)
		}
	}
	// The losses differ by the constant −α·mean H(p_t).
	entropy := 0.0
	for _, v := range teacher {
		entropy -= float64(v) * math.Log(float64(v))
	}
	if diff := distillLoss(logits) - softLoss(logits); math.Abs(diff+alpha*entropy/n) > 1e-6 {
		t.Errorf("loss difference %v, want %v", diff, -alpha*entropy/n)
	}
}

func TestGiven(t *testing.T) {
	tests := []struct {
		name    string
		soft    []float32
		n, k    int
		wantErr string
	}{
		{"valid", []float32{0.7, 0.3, 0, 1}, 2, 2, ""},
		{"wrong length", []float32{0.7, 0.3, 1}, 2, 2, "3 values"},
		{"negative", []float32{1.2, -0.2}, 1, 2, "not a probability"},
		{"NaN", []float32{float32(math.NaN()), 1}, 1, 2, "not a probability"},
		{"row not summing to 1", []float32{0.5, 0.4}, 1, 2, "sums to"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Given(tc.soft, tc.n, tc.k)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %v, want one mentioning %q", err, tc.wantErr)
			}
		})
	}
}
