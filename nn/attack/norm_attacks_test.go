package attack

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// Tests of the L2 and L1 attacks: known answers on linear models, the
// eps-ball invariant, strength on a trained network, determinism.

// lpSpecs are the (attack, norm) pairs with an L2 or L1 version, with
// cheap settings.
func lpSpecs(eps float64) []Spec {
	var out []Spec
	for _, p := range []Norm{L2, L1} {
		for _, name := range Names {
			if Supports(name, p) {
				out = append(out, Spec{Name: name, Norm: p, Eps: eps, Steps: 10, Queries: 100, Targets: 2})
			}
		}
	}
	return out
}

// binaryLinear is a two-class linear evalMLP on d features with an image
// shape (for Square), inputs in [0.35, 0.65] labelled by the model, and per
// sample the analytic smallest distance to its decision boundary in norm p
// (|f|/‖w‖_q, q the dual norm: 2 for L2, ∞ for L1), or NaN when the [0,1]
// box could bind.
func binaryLinear(p Norm, n int) (shapedModel, []float32, []int32, []float64) {
	const d = 20
	m := centredLinear(21, d, 2)
	rng := evalRNG(21)
	x := make([]float32, n*d)
	for i := range x {
		x[i] = float32(0.35 + 0.3*rng.Float64())
	}
	labels := make([]int32, n)
	dist := make([]float64, n)
	for i := range n {
		z := m.logits64(x[i*d : (i+1)*d])
		y, o := 0, 1
		if z[1] > z[0] {
			y, o = 1, 0
		}
		labels[i] = int32(y)
		dual := 0.0
		for j := range d {
			w := m.w2[y*d+j] - m.w2[o*d+j]
			if p == L2 {
				dual += w * w
			} else {
				dual = max(dual, math.Abs(w))
			}
		}
		if p == L2 {
			dual = math.Sqrt(dual)
		}
		dist[i] = (z[y] - z[o]) / dual
		if dist[i] > 0.3 { // the minimal move could leave [0,1] (each coordinate has room >= 0.35)
			dist[i] = math.NaN()
		}
	}
	return shapedModel{evalMLP: m, shape: []int{1, 4, 5}}, x, labels, dist
}

// TestLpAttacksFlipALinearModelJustAboveItsDistance runs the gradient
// attacks on each sample of a binary linear model at 1.02 times (L1: 1.5
// times) its analytic distance to the boundary, where they must flip it,
// and at 0.98 times, where no point of the ball can.
func TestLpAttacksFlipALinearModelJustAboveItsDistance(t *testing.T) {
	const n = 30
	for _, p := range []Norm{L2, L1} {
		m, x, labels, dist := binaryLinear(p, n)
		d := m.InputSize()
		above := 1.02
		names := []string{NameFGSM, NamePGD, NameAPGDCE}
		if p == L1 { // l1-APGD is no minimal-norm attack (see TestMultiClassLinearModelBrokenJustAboveItsDistance)
			above, names = 1.5, []string{NameAPGDCE}
		}
		checked := 0
		for i := range n {
			if math.IsNaN(dist[i]) || dist[i] < 0.01 {
				continue
			}
			checked++
			xi, yi := x[i*d:(i+1)*d], labels[i:i+1]
			for _, name := range names {
				for _, f := range []float64{above, 0.98} {
					spec := Spec{Name: name, Norm: p, Eps: f * dist[i], Steps: 50, Targets: 1}
					out := make([]float32, d)
					if err := Run(m, spec, xi, yi, 1, evalRNG(uint64(i)), out); err != nil {
						t.Fatalf("%s %s: %v", name, p, err)
					}
					wrong, err := Success(m, out, yi, 1)
					if err != nil {
						t.Fatal(err)
					}
					if got := Distance(p, out, xi); got > spec.Eps+1e-6 {
						t.Errorf("%s-%s sample %d: distance %v exceeds eps %v", name, p, i, got, spec.Eps)
					}
					if wrong[0] != (f > 1) {
						t.Errorf("%s-%s sample %d at %.2f× the distance %v: flipped %v", name, p, i, f, dist[i], wrong[0])
					}
				}
			}
		}
		if checked < n/3 {
			t.Fatalf("%s: only %d of %d samples have a usable analytic distance", p, checked, n)
		}
	}
}

// TestMultiClassLinearModelBrokenJustAboveItsDistance: on each sample of a
// 5-class linear model, APGD-T with every target class (targeted DLR needs
// at least 4 classes: with 2 it is constant) breaks it at 1.05 times (L1:
// 1.5 times) its analytic distance to the nearest boundary, AutoAttack at
// 1.02 times (its FAB-T finds the boundary), and neither below it. l1-APGD
// is no minimal-norm attack: its equal-size steps on the k largest
// gradient coordinates keep the mass split over two of them on a linear
// model, where the L1 optimum moves one.
func TestMultiClassLinearModelBrokenJustAboveItsDistance(t *testing.T) {
	const d, k, n = 20, 5, 20
	m := shapedModel{evalMLP: centredLinear(8, d, k), shape: []int{1, 4, 5}}
	x, labels, want := linearDistances(m.evalMLP, d, k, n)
	for _, p := range []Norm{L2, L1} {
		checked := 0
		for i := range n {
			if want[p][i] > 0.3 || want[p][i] < 0.01 {
				continue
			}
			checked++
			xi, yi := x[i*d:(i+1)*d], labels[i:i+1]
			for _, tc := range []struct {
				name string
				f    float64
			}{
				{NameAPGDT, map[Norm]float64{L2: 1.05, L1: 1.5}[p]}, {NameAPGDT, 0.98},
				{NameAutoAttack, 1.02}, {NameAutoAttack, 0.98},
			} {
				f := tc.f
				spec := Spec{Name: tc.name, Norm: p, Eps: f * want[p][i], Steps: 50, Targets: k - 1, Queries: 300}
				out := make([]float32, d)
				if err := Run(m, spec, xi, yi, 1, evalRNG(uint64(i)), out); err != nil {
					t.Fatal(err)
				}
				wrong, err := Success(m, out, yi, 1)
				if err != nil {
					t.Fatal(err)
				}
				if wrong[0] != (f > 1) {
					t.Errorf("%s-%s sample %d at %.2f× the distance %v: flipped %v", tc.name, p, i, f, want[p][i], wrong[0])
				}
			}
		}
		if checked < n/3 {
			t.Fatalf("%s: only %d of %d samples have a usable analytic distance", p, checked, n)
		}
	}
}

// linearDistances draws n inputs in [0.35, 0.65] for the linear model m,
// labels them by the model, and gives per norm the analytic smallest
// distance to a decision boundary, min over t ≠ y of (z_y − z_t)/‖w_y −
// w_t‖_q (q = 2 for L2, ∞ for L1), exact where the box does not bind.
func linearDistances(m *evalMLP, d, k, n int) ([]float32, []int32, map[Norm][]float64) {
	rng := evalRNG(8)
	x := make([]float32, n*d)
	for i := range x {
		x[i] = float32(0.35 + 0.3*rng.Float64())
	}
	labels := make([]int32, n)
	want := map[Norm][]float64{L2: make([]float64, n), L1: make([]float64, n)}
	for i := range n {
		z := m.logits64(x[i*d : (i+1)*d])
		y := argmax64(z)
		labels[i] = int32(y)
		for p, dist := range want {
			dist[i] = math.Inf(1)
			for c := range k {
				if c == y {
					continue
				}
				w := make([]float64, d)
				for j := range d {
					w[j] = m.w2[y*d+j] - m.w2[c*d+j]
				}
				dual := normOf(L2, w)
				if p == L1 {
					dual = normOf(Linf, w)
				}
				dist[i] = math.Min(dist[i], (z[y]-z[c])/dual)
			}
		}
	}
	return x, labels, want
}

// TestFABFindsTheMinimalLpDistanceOfALinearModel compares FAB-T in its L2
// and L1 forms with the analytic smallest distance to the decision
// boundary of a linear model with 5 classes, min over t ≠ y of
// (z_y − z_t)/‖w_y − w_t‖_q (q = 2 for L2, ∞ for L1), for the points where
// the [0,1] box does not bind.
func TestFABFindsTheMinimalLpDistanceOfALinearModel(t *testing.T) {
	const d, k, n = 20, 5, 40
	m := centredLinear(8, d, k)
	x, labels, distances := linearDistances(m, d, k, n)
	for _, p := range []Norm{L2, L1} {
		want := distances[p]
		const eps = 0.3
		xAdv := make([]float32, n*d)
		dist, err := FAB{Eps: eps, Steps: 100, Targets: k - 1, MinNorm: true, Norm: p}.Run(m, x, labels, n, nil, xAdv)
		if err != nil {
			t.Fatal(err)
		}
		checked := 0
		for i := range n {
			if want[i] > eps {
				continue
			}
			checked++
			if !(dist[i] >= want[i]*(1-1e-4) && dist[i] <= want[i]*1.01) {
				t.Errorf("%s sample %d: FAB-T distance %v, analytic minimum %v (ratio %.4f)", p, i, dist[i], want[i], dist[i]/want[i])
			}
			if got := Distance(p, x[i*d:(i+1)*d], xAdv[i*d:(i+1)*d]); math.Abs(got-dist[i]) > 1e-6 {
				t.Errorf("%s sample %d: returned point at distance %v, reported %v", p, i, got, dist[i])
			}
		}
		if checked < n/2 {
			t.Fatalf("%s: only %d of %d samples lie within %v of the boundary", p, checked, n, eps)
		}
	}
}

// centredLinear is a linear evalMLP z_c = w_c·(x − 0.5): its decision
// boundaries pass through the centre of the box, so inputs near 0.5 lie
// close to them.
func centredLinear(seed uint64, d, k int) *evalMLP {
	m := newEvalMLP(seed, d, 0, k, 1)
	for c := range k {
		m.b2[c] = 0
		for j := range d {
			m.b2[c] -= 0.5 * m.w2[c*d+j]
		}
	}
	return m
}

func argmax64(z []float64) int {
	best := 0
	for c := range z {
		if z[c] > z[best] {
			best = c
		}
	}
	return best
}

// TestLpAttacksStayInTheBall checks the invariant ‖x' − x‖_p ≤ eps + 1e-6,
// x' in [0,1], for every attack with an L2 or L1 version, on random
// networks and inputs with coordinates on the box's faces, from a zero
// radius to one larger than the box.
func TestLpAttacksStayInTheBall(t *testing.T) {
	const n, d, k = 12, 30, 4
	for seed := range uint64(3) {
		m := shapedModel{evalMLP: newEvalMLP(seed, d, 8, k, 3), shape: []int{1, 5, 6}}
		rng := rand.New(rand.NewPCG(seed, 99))
		x := make([]float32, 0, n*d)
		for range n {
			x = append(x, randomBoxRow(rng, d)...)
		}
		labels := make([]int32, n)
		for i := range labels {
			labels[i] = int32(rng.IntN(k))
		}
		for _, eps := range []float64{0, 1e-4, 0.5, 3, 40} {
			for _, spec := range lpSpecs(eps) {
				out := make([]float32, n*d)
				if err := Run(m, spec, x, labels, n, evalRNG(seed), out); err != nil {
					t.Fatalf("%s-%s eps %v: %v", spec.Name, spec.Norm, eps, err)
				}
				checkLpBall(t, spec.Name+"-"+spec.Norm.String(), spec.Norm, x, out, d, eps)
			}
		}
	}
}

// TestLpAttacksStayInTheBallOnLargeImages repeats the invariant on 3×16×16
// images, where an L1 perturbation spread over hundreds of coordinates
// gathers the most float32 rounding.
func TestLpAttacksStayInTheBallOnLargeImages(t *testing.T) {
	const n, k = 4, 3
	m := shapedModel{evalMLP: newEvalMLP(4, 768, 4, k, 3), shape: []int{3, 16, 16}}
	rng := rand.New(rand.NewPCG(4, 99))
	x := make([]float32, 0, n*768)
	for range n {
		x = append(x, randomBoxRow(rng, 768)...)
	}
	labels := make([]int32, n) // the model's own predictions: every sample is attacked
	for i := range n {
		labels[i] = int32(argmax64(m.logits64(x[i*768 : (i+1)*768])))
	}
	for _, spec := range []Spec{
		{Name: NameSquare, Norm: L1, Eps: 12, Queries: 30},
		{Name: NameSquare, Norm: L2, Eps: 3, Queries: 30},
		{Name: NameAPGDCE, Norm: L1, Eps: 12, Steps: 6},
		{Name: NameAPGDCE, Norm: L2, Eps: 3, Steps: 6},
		{Name: NameFABT, Norm: L1, Eps: 12, Steps: 6, Targets: 2},
	} {
		out := make([]float32, len(x))
		if err := Run(m, spec, x, labels, n, evalRNG(2), out); err != nil {
			t.Fatal(err)
		}
		checkLpBall(t, spec.Name+"-"+spec.Norm.String(), spec.Norm, x, out, 768, spec.Eps)
		if slices.Equal(out, x) {
			t.Errorf("%s-%s left every sample clean: the check is vacuous", spec.Name, spec.Norm)
		}
	}
}

// checkLpBall fails when a sample of out leaves the eps-ball of norm p
// around x or [0,1].
func checkLpBall(t *testing.T, name string, p Norm, x, out []float32, d int, eps float64) {
	t.Helper()
	for i := 0; i < len(x)/d; i++ {
		lo, hi := i*d, (i+1)*d
		if dist := Distance(p, out[lo:hi], x[lo:hi]); dist > eps+1e-6 {
			t.Fatalf("%s eps %v: sample %d at distance %v", name, eps, i, dist)
		}
		for j, v := range out[lo:hi] {
			if !(v >= 0 && v <= 1) {
				t.Fatalf("%s eps %v: sample %d feature %d is %v, outside [0,1]", name, eps, i, j, v)
			}
		}
	}
}

// FuzzL2PGDStaysInTheBall checks the training attacks' L2 form for arbitrary
// settings: an error, or points in the L2 ball and [0,1].
func FuzzL2PGDStaysInTheBall(f *testing.F) {
	f.Add(0.5, 0.1, uint8(5), uint8(1), true, false, uint64(1))
	f.Add(3.0, 2.0, uint8(3), uint8(3), true, true, uint64(2))
	f.Add(0.0, 0.0, uint8(2), uint8(0), false, false, uint64(3))
	f.Add(1e-5, 1.0, uint8(7), uint8(2), true, false, uint64(4))
	const n, d, k = 6, 5, 4
	m := newLinearSoftmax(d, k)
	wr := attackRNG(99)
	for i := range m.w {
		m.w[i] = 4 * wr.NormFloat64()
	}
	f.Fuzz(func(t *testing.T, eps, step float64, steps, restarts uint8, randomStart, earlyStop bool, seed uint64) {
		rng := attackRNG(seed)
		x := randomBoxRow(rng, n*d)
		labels := make([]int32, n)
		for i := range labels {
			labels[i] = int32(rng.IntN(k))
		}
		cfg := PGD{Eps: eps, Step: step, Steps: int(steps % 20), RandomStart: randomStart, Restarts: int(restarts % 4),
			EarlyStop: earlyStop, Norm: L2}
		out := make([]float32, n*d)
		a := &Attacker{}
		if err := a.PGD(m, x, labels, n, cfg, rng, out); err == nil {
			checkLpBall(t, "pgd", L2, x, out, d, eps)
		}
		if err := a.FGSM(m, x, labels, n, FGSM{Eps: eps, Step: step, Norm: L2}, rng, out); err == nil {
			checkLpBall(t, "fgsm", L2, x, out, d, eps)
		}
	})
}

// TestLpAttacksBreakAWeakModelAtALargeRadius: against a trained two-layer
// network, every L2 and L1 attack leaves at most 5% robust accuracy at a
// radius well above the data's scale.
func TestLpAttacksBreakAWeakModelAtALargeRadius(t *testing.T) {
	mlp, x, labels := evalTrained(t, 16)
	m := shapedModel{evalMLP: mlp, shape: []int{1, 5, 6}}
	for _, p := range []Norm{L2, L1} {
		eps := map[Norm]float64{L2: 2, L1: 8}[p]
		for _, name := range []string{NameFGSM, NamePGD, NameAPGDCE, NameAPGDT, NameFABT, NameSquare, NameAutoAttack} {
			if !Supports(name, p) {
				continue
			}
			spec := Spec{Name: name, Norm: p, Eps: eps, Queries: 1000}
			if name == NameFGSM {
				continue // one step is not expected to break everything
			}
			xAdv := make([]float32, len(x))
			if err := Run(m, spec, x, labels, evalN, evalRNG(3), xAdv); err != nil {
				t.Fatalf("%s-%s: %v", name, p, err)
			}
			checkLpBall(t, name, p, x, xAdv, evalD, eps)
			acc, err := RobustAccuracy(m, xAdv, labels, evalN)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s-%s eps %v: robust accuracy %.3f", name, p, eps, acc)
			if acc > 0.05 {
				t.Errorf("%s-%s at eps %v leaves robust accuracy %.3f, want <= 0.05", name, p, eps, acc)
			}
		}
	}
}

// TestLpAttacksAreOrderedByStrength: at a radius that breaks some points,
// AutoAttack ≤ APGD-CE ≤ clean, AutoAttack is no weaker than any of its
// components run alone, and (L2) PGD-20 does better than nothing.
func TestLpAttacksAreOrderedByStrength(t *testing.T) {
	mlp, x, labels := evalTrained(t, 16)
	m := shapedModel{evalMLP: mlp, shape: []int{1, 5, 6}}
	for _, p := range []Norm{L2, L1} {
		eps := map[Norm]float64{L2: 0.4, L1: 1.5}[p]
		acc := map[string]float64{}
		for _, name := range Names {
			if !Supports(name, p) {
				continue
			}
			xAdv := make([]float32, len(x))
			if err := Run(m, Spec{Name: name, Norm: p, Eps: eps, Queries: 300}, x, labels, evalN, evalRNG(17), xAdv); err != nil {
				t.Fatalf("%s-%s: %v", name, p, err)
			}
			checkLpBall(t, name, p, x, xAdv, evalD, eps)
			a, err := RobustAccuracy(m, xAdv, labels, evalN)
			if err != nil {
				t.Fatal(err)
			}
			acc[name] = a
		}
		t.Logf("%s robust accuracy at eps %v: %v", p, eps, acc)
		if !(acc[NameAPGDCE] < acc[NameClean]) || acc[NameAutoAttack] > acc[NameAPGDCE] {
			t.Errorf("%s: want autoattack %.3f <= apgd-ce %.3f < clean %.3f", p, acc[NameAutoAttack], acc[NameAPGDCE], acc[NameClean])
		}
		for _, name := range []string{NameAPGDT, NameFABT, NameSquare} {
			if !(acc[name] < acc[NameClean]) {
				t.Errorf("%s-%s accuracy %.3f is not below clean %.3f", name, p, acc[name], acc[NameClean])
			}
		}
		if p == L2 && !(acc[NamePGD] < acc[NameClean]) {
			t.Errorf("pgd-l2 accuracy %.3f is not below clean %.3f", acc[NamePGD], acc[NameClean])
		}
	}
}

func TestLpAttacksAreDeterministicAndMayOverwriteTheirInput(t *testing.T) {
	mlp, x, labels := evalTrained(t, 16)
	m := shapedModel{evalMLP: mlp, shape: []int{1, 5, 6}}
	const n = 40
	x, labels = x[:n*evalD], labels[:n]
	for _, spec := range lpSpecs(0.8) {
		t.Run(spec.Name+"-"+spec.Norm.String(), func(t *testing.T) {
			a, b := make([]float32, len(x)), make([]float32, len(x))
			if err := Run(m, spec, x, labels, n, evalRNG(5), a); err != nil {
				t.Fatal(err)
			}
			if err := Run(m, spec, x, labels, n, evalRNG(5), b); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(a, b) {
				t.Error("two runs with the same seed differ")
			}
			in := slices.Clone(x)
			if err := Run(m, spec, in, labels, n, evalRNG(5), in); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(in, a) {
				t.Error("attacking in place differs from attacking into a separate buffer")
			}
		})
	}
}

func TestUnsupportedNormsAreRejected(t *testing.T) {
	m, x, labels := evalTrained(t, 0)
	out := make([]float32, len(x))
	for _, tc := range []struct {
		spec Spec
		want string
	}{
		{Spec{Name: NameCW, Norm: L2, Eps: 0.5}, "norm l2 is not supported"},
		{Spec{Name: NamePGD, Norm: L1, Eps: 0.5}, "norm l1 is not supported"},
		{Spec{Name: NameFGSM, Norm: L1, Eps: 0.5}, "norm l1 is not supported"},
		{Spec{Name: NameAPGDCE, Norm: Norm(9), Eps: 0.5}, "unknown norm"},
	} {
		err := Run(m, tc.spec, x, labels, evalN, evalRNG(1), out)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s with norm %v: error %v, want one containing %q", tc.spec.Name, tc.spec.Norm, err, tc.want)
		}
	}
	for _, err := range []error{
		PGD{Eps: 1, Step: 0.1, Steps: 1, Norm: L1}.Validate(),
		FGSM{Eps: 1, Norm: L1}.Validate(),
		APGD{Eps: 1, Steps: 1, Norm: -1}.Validate(),
		FAB{Eps: 1, Steps: 1, Targets: 1, Norm: 3}.Validate(),
		Square{Eps: 1, Queries: 1, Norm: 3}.Validate(),
		AutoAttackConfig{Eps: 1, Norm: 3}.Validate(),
	} {
		if err == nil {
			t.Error("an unsupported norm was accepted")
		}
	}
}

func TestL2TrainingAttackAllocatesNothingAfterWarmUp(t *testing.T) {
	m, x, labels := trainedLinearSoftmax(t)
	a := &Attacker{}
	out := make([]float32, len(x))
	rng := attackRNG(14)
	cfg := PGD{Eps: 0.5, Step: 0.1, Steps: 10, RandomStart: true, Restarts: 2, EarlyStop: true, Norm: L2}
	allocs := testing.AllocsPerRun(3, func() {
		if err := a.PGD(m, x, labels, attackN, cfg, rng, out); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per L2 PGD call after warm-up, want 0", allocs)
	}
}

// nanModel returns NaN input gradients.
type nanModel struct{ *linearSoftmax }

func (m nanModel) InputGrad(x []float32, n int, target, grad []float32) (float64, error) {
	loss, err := m.linearSoftmax.InputGrad(x, n, target, grad)
	grad[len(grad)/2] = float32(math.NaN())
	return loss, err
}

func TestL2PGDStopsOnANaNGradient(t *testing.T) {
	m, x, labels := trainedLinearSoftmax(t)
	out := make([]float32, len(x))
	err := (&Attacker{}).PGD(nanModel{m}, x, labels, attackN, PGD{Eps: 0.5, Step: 0.1, Steps: 2, Norm: L2}, nil, out)
	if !errors.Is(err, ErrNaNGradient) {
		t.Fatalf("error %v, want one wrapping ErrNaNGradient", err)
	}
}
