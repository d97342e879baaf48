package nn

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestTrainerWorkersAgree runs the same step with 1 and 2 workers on models
// without BatchNorm: loss, logits and gradients must agree up to rounding.
func TestTrainerWorkersAgree(t *testing.T) {
	cases := []struct {
		name   string
		arch   Arch
		n      int
		trades bool
	}{
		{"mlp even split", tinyMLP(), 6, false},
		{"cnn odd split", tinyCNN(), 5, false},
		{"cnn TRADES", tinyCNN(), 5, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(4, 4))
			w := randomWeights(t, tc.arch, 6)
			x := toFloat32(randomSlice(rng, tc.n*tc.arch.InputSize()))
			xAdv := toFloat32(randomSlice(rng, len(x)))
			target := toFloat32(softTargets(rng, tc.n, tc.arch.Classes))
			type result struct {
				loss   float64
				logits []float32
				grads  [][]float32
			}
			run := func(workers int) result {
				tr, err := NewTrainer(w, 8, workers)
				if err != nil {
					t.Fatal(err)
				}
				var loss float64
				var logits []float32
				if tc.trades {
					loss, logits, err = tr.StepTRADES(x, xAdv, target, tc.n, 2)
				} else {
					loss, logits, err = tr.Step(x, target, tc.n)
				}
				if err != nil {
					t.Fatal(err)
				}
				r := result{loss: loss, logits: append([]float32(nil), logits...)}
				for _, g := range tr.Grads() {
					r.grads = append(r.grads, append([]float32(nil), g...))
				}
				return r
			}
			one, two := run(1), run(2)
			if math.Abs(one.loss-two.loss) > 1e-5*math.Max(1, one.loss) {
				t.Errorf("loss: 1 worker %g, 2 workers %g", one.loss, two.loss)
			}
			closeSlices(t, "logits", two.logits, one.logits, 1e-5)
			for i := range one.grads {
				closeSlices(t, w.Params[i].Name, two.grads[i], one.grads[i], 1e-5)
			}
		})
	}
}

// TestTrainerAveragesRunningStats checks that BatchNorm running statistics
// end up as the sub-batch-weighted mean of the replicas' updates.
func TestTrainerAveragesRunningStats(t *testing.T) {
	arch := tinyResNet(25)
	rng := rand.New(rand.NewPCG(9, 9))
	w := randomWeights(t, arch, 2)
	const n = 5
	x := toFloat32(randomSlice(rng, n*arch.InputSize()))
	target := toFloat32(softTargets(rng, n, arch.Classes))
	tr, err := NewTrainer(w, n, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := tr.Step(x, target, n); err != nil {
		t.Fatal(err)
	}
	// The replicas ran on samples [0,3) and [3,5).
	d, k := arch.InputSize(), arch.Classes
	want := make(map[string][]float64)
	for _, part := range []struct{ lo, hi int }{{0, 3}, {3, 5}} {
		net, err := NewNet(w, part.hi-part.lo, PurposeTrain, NetOptions{Mode: Train})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := net.TrainStep(x[part.lo*d:part.hi*d], target[part.lo*k:part.hi*k], nil); err != nil {
			t.Fatal(err)
		}
		share := float64(part.hi-part.lo) / n
		for _, p := range net.Weights().Params {
			if p.Buffer {
				acc := want[p.Name]
				if acc == nil {
					acc = make([]float64, len(p.Data))
				}
				for j, v := range p.Data {
					if p.Shape == nil || len(p.Shape) == 0 {
						acc[j] = float64(v)
					} else {
						acc[j] += share * float64(v)
					}
				}
				want[p.Name] = acc
			}
		}
	}
	for _, p := range tr.Weights().Params {
		if !p.Buffer {
			continue
		}
		for j, v := range p.Data {
			if math.Abs(float64(v)-want[p.Name][j]) > 1e-5 {
				t.Fatalf("%s[%d] = %g, want %g", p.Name, j, v, want[p.Name][j])
			}
		}
	}
}

func TestTrainerRejectsBadInput(t *testing.T) {
	w, err := Init(tinyMLP(), 0)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTrainer(w, 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	d, k := w.Arch.InputSize(), w.Arch.Classes
	cases := []struct {
		name string
		do   func() error
	}{
		{"too many samples", func() error { _, _, err := tr.Step(make([]float32, 5*d), make([]float32, 5*k), 5); return err }},
		{"zero samples", func() error { _, _, err := tr.Step(nil, nil, 0); return err }},
		{"short targets", func() error { _, _, err := tr.Step(make([]float32, 2*d), make([]float32, k), 2); return err }},
		{"short x_adv", func() error {
			_, _, err := tr.StepTRADES(make([]float32, 2*d), make([]float32, d), make([]float32, 2*k), 2, 1)
			return err
		}},
		{"zero workers", func() error { _, err := NewTrainer(w, 4, 0); return err }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.do(); err == nil {
				t.Fatal("expected an error")
			}
		})
	}
}
