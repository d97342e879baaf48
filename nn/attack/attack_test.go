package attack

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/nn/model"
)

// linearSoftmax is a real multinomial logistic regression, logits = W·x + b,
// with the analytic input gradient of the soft-target cross-entropy. Tests
// train it by gradient descent; it allocates nothing per call so the
// attacker's own allocations can be measured.
type linearSoftmax struct {
	d, k int
	w    []float64 // k*d, row c holds the weights of class c
	b    []float64 // k
	z, p []float64 // k scratch
}

func newLinearSoftmax(d, k int) *linearSoftmax {
	return &linearSoftmax{d: d, k: k, w: make([]float64, k*d), b: make([]float64, k),
		z: make([]float64, k), p: make([]float64, k)}
}

func (m *linearSoftmax) Classes() int   { return m.k }
func (m *linearSoftmax) InputSize() int { return m.d }

func (m *linearSoftmax) Logits(x []float32, n int, out []float32) error {
	for i := range n {
		m.forward(x[i*m.d : (i+1)*m.d])
		for c := range m.k {
			out[i*m.k+c] = float32(m.z[c])
		}
	}
	return nil
}

func (m *linearSoftmax) InputGrad(x []float32, n int, target []float32, grad []float32) (float64, error) {
	loss := 0.0
	for i := range n {
		lse := m.forward(x[i*m.d : (i+1)*m.d])
		t := target[i*m.k : (i+1)*m.k]
		tsum := 0.0
		for c := range m.k {
			loss += float64(t[c]) * (lse - m.z[c])
			tsum += float64(t[c])
		}
		g := grad[i*m.d : (i+1)*m.d]
		for j := range m.d {
			s := 0.0
			for c := range m.k {
				s += (m.p[c]*tsum - float64(t[c])) * m.w[c*m.d+j]
			}
			g[j] = float32(s)
		}
	}
	return loss, nil
}

// forward fills m.z with the logits and m.p with the softmax of one sample
// and returns log Σ exp(z).
func (m *linearSoftmax) forward(x []float32) float64 {
	hi := math.Inf(-1)
	for c := range m.k {
		z := m.b[c]
		for j, v := range x {
			z += m.w[c*m.d+j] * float64(v)
		}
		m.z[c] = z
		hi = math.Max(hi, z)
	}
	sum := 0.0
	for c := range m.k {
		m.p[c] = math.Exp(m.z[c] - hi)
		sum += m.p[c]
	}
	for c := range m.k {
		m.p[c] /= sum
	}
	return hi + math.Log(sum)
}

// train fits the model to (x, labels) by full-batch gradient descent on the
// mean cross-entropy.
func (m *linearSoftmax) train(x []float32, labels []int32, n, iters int, lr float64) {
	gw := make([]float64, len(m.w))
	gb := make([]float64, len(m.b))
	for range iters {
		clear(gw)
		clear(gb)
		for i := range n {
			xi := x[i*m.d : (i+1)*m.d]
			m.forward(xi)
			for c := range m.k {
				coef := m.p[c]
				if int32(c) == labels[i] {
					coef--
				}
				gb[c] += coef
				for j, v := range xi {
					gw[c*m.d+j] += coef * float64(v)
				}
			}
		}
		for i := range m.w {
			m.w[i] -= lr * gw[i] / float64(n)
		}
		for i := range m.b {
			m.b[i] -= lr * gb[i] / float64(n)
		}
	}
}

// attackBlobs is a separable synthetic dataset in [0,1]: class c is bright (0.6)
// on its own block of features and dark (0.4) elsewhere, plus uniform noise
// of ±0.25, clipped to [0,1].
func attackBlobs(seed uint64, n, d, k int) ([]float32, []int32) {
	rng := rand.New(rand.NewPCG(seed, 1))
	x := make([]float32, n*d)
	labels := make([]int32, n)
	block := d / k
	for i := range n {
		c := i % k
		labels[i] = int32(c)
		for j := range d {
			v := 0.4
			if j/block == c {
				v = 0.6
			}
			v += 0.5 * (rng.Float64() - 0.5)
			x[i*d+j] = float32(math.Min(math.Max(v, 0), 1))
		}
	}
	return x, labels
}

const (
	attackD = 24
	attackK = 3
	attackN = 150
)

// trainedLinearSoftmax returns a linear softmax model trained on attackBlobs and its
// training data, after checking it learnt the task.
func trainedLinearSoftmax(t *testing.T) (*linearSoftmax, []float32, []int32) {
	t.Helper()
	x, labels := attackBlobs(7, attackN, attackD, attackK)
	m := newLinearSoftmax(attackD, attackK)
	m.train(x, labels, attackN, 300, 1.0)
	acc, err := RobustAccuracy(m, x, labels, attackN)
	if err != nil {
		t.Fatal(err)
	}
	if acc < 0.95 {
		t.Fatalf("clean accuracy of the trained test model is %.3f, want >= 0.95", acc)
	}
	return m, x, labels
}

func attackRNG(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 42)) }

func TestLinearSoftmaxInputGradMatchesFiniteDifferences(t *testing.T) {
	m, x, _ := trainedLinearSoftmax(t)
	const n = 4
	x = slices.Clone(x[:n*attackD])
	rng := attackRNG(3)
	target := make([]float32, n*attackK)
	for i := range target {
		target[i] = float32(rng.Float64())
	}
	grad := make([]float32, n*attackD)
	if _, err := m.InputGrad(x, n, target, grad); err != nil {
		t.Fatal(err)
	}
	const h = 1e-2
	scratch := make([]float32, n*attackD)
	for i := range x {
		orig := x[i]
		x[i] = orig + h
		up, _ := m.InputGrad(x, n, target, scratch)
		x[i] = orig - h
		down, _ := m.InputGrad(x, n, target, scratch)
		x[i] = orig
		fd := (up - down) / (float64(x[i]+h) - float64(x[i]-h))
		if diff := math.Abs(fd - float64(grad[i])); diff > 1e-3*(1+math.Abs(fd)) {
			t.Errorf("feature %d: analytic gradient %v, finite difference %v", i, grad[i], fd)
		}
	}
}

// attackCase is one attack run by the table-driven tests.
type attackCase struct {
	name string
	run  func(a *Attacker, m Model, x []float32, labels []int32, n int, rng *rand.Rand, out []float32) error
}

func attackCases(eps float64) []attackCase {
	return []attackCase{
		{"pgd clean start", func(a *Attacker, m Model, x []float32, y []int32, n int, r *rand.Rand, out []float32) error {
			return a.PGD(m, x, y, n, PGD{Eps: eps, Step: eps / 4, Steps: 10}, r, out)
		}},
		{"pgd random start", func(a *Attacker, m Model, x []float32, y []int32, n int, r *rand.Rand, out []float32) error {
			return a.PGD(m, x, y, n, PGD{Eps: eps, Step: eps / 4, Steps: 3, RandomStart: true}, r, out)
		}},
		{"pgd restarts early stop", func(a *Attacker, m Model, x []float32, y []int32, n int, r *rand.Rand, out []float32) error {
			return a.PGD(m, x, y, n, PGD{Eps: eps, Step: eps / 4, Steps: 5, RandomStart: true, Restarts: 3, EarlyStop: true}, r, out)
		}},
		{"fgsm", func(a *Attacker, m Model, x []float32, y []int32, n int, r *rand.Rand, out []float32) error {
			return a.FGSM(m, x, y, n, FGSM{Eps: eps}, r, out)
		}},
		{"trades", func(a *Attacker, m Model, x []float32, _ []int32, n int, r *rand.Rand, out []float32) error {
			return a.TRADES(m, x, n, TRADES{Eps: eps, Step: eps / 4, Steps: 10}, r, out)
		}},
		{"pgd soft targets", func(a *Attacker, m Model, x []float32, y []int32, n int, r *rand.Rand, out []float32) error {
			k := m.Classes()
			targets := make([]float32, n*k)
			for i, c := range y {
				for j := range k {
					targets[i*k+j] = 0.1 / float32(k)
				}
				targets[i*k+int(c)] += 0.9
			}
			return a.PGDTargets(m, x, targets, n, PGD{Eps: eps, Step: eps / 4, Steps: 10, RandomStart: true}, r, out)
		}},
	}
}

func TestAttacksStayInEpsBallAndUnitBox(t *testing.T) {
	m, x, labels := trainedLinearSoftmax(t)
	for _, eps := range []float64{0.03, 0.1, 0.5} {
		for _, tc := range attackCases(eps) {
			t.Run(tc.name, func(t *testing.T) {
				out := make([]float32, len(x))
				if err := tc.run(&Attacker{}, m, x, labels, attackN, attackRNG(1), out); err != nil {
					t.Fatal(err)
				}
				moved := 0.0
				for i, v := range out {
					dist := math.Abs(float64(v) - float64(x[i]))
					if dist > eps+1e-6 || v < 0 || v > 1 {
						t.Fatalf("eps %v: value %d is %v for clean %v: outside the eps-ball or [0,1]", eps, i, v, x[i])
					}
					moved = math.Max(moved, dist)
				}
				if moved < eps/2 {
					t.Errorf("eps %v: largest perturbation is %v; the attack barely moved", eps, moved)
				}
			})
		}
	}
}

func TestPGDWithLargeEpsBreaksNearlyEverything(t *testing.T) {
	m, x, labels := trainedLinearSoftmax(t)
	for _, cfg := range []PGD{
		{Eps: 0.5, Step: 0.05, Steps: 20},
		{Eps: 0.5, Step: 0.05, Steps: 20, RandomStart: true},
		{Eps: 0.5, Step: 0.05, Steps: 20, RandomStart: true, Restarts: 2, EarlyStop: true},
	} {
		out := make([]float32, len(x))
		if err := (&Attacker{}).PGD(m, x, labels, attackN, cfg, attackRNG(2), out); err != nil {
			t.Fatal(err)
		}
		acc, err := RobustAccuracy(m, out, labels, attackN)
		if err != nil {
			t.Fatal(err)
		}
		if acc >= 0.05 {
			t.Errorf("%+v: robust accuracy %.3f, want < 0.05", cfg, acc)
		}
	}
}

func TestPGDIsNoWeakerThanFGSM(t *testing.T) {
	m, x, labels := trainedLinearSoftmax(t)
	clean, _ := RobustAccuracy(m, x, labels, attackN)
	sawPartial := false
	for _, eps := range []float64{0.05, 0.1, 0.15, 0.2} {
		a := &Attacker{}
		fgsm := make([]float32, len(x))
		if err := a.FGSM(m, x, labels, attackN, FGSM{Eps: eps}, attackRNG(4), fgsm); err != nil {
			t.Fatal(err)
		}
		pgd := make([]float32, len(x))
		if err := a.PGD(m, x, labels, attackN, PGD{Eps: eps, Step: eps / 4, Steps: 20, RandomStart: true}, attackRNG(4), pgd); err != nil {
			t.Fatal(err)
		}
		accF, _ := RobustAccuracy(m, fgsm, labels, attackN)
		accP, _ := RobustAccuracy(m, pgd, labels, attackN)
		t.Logf("eps %.2f: clean %.3f fgsm %.3f pgd-20 %.3f", eps, clean, accF, accP)
		if accP > accF {
			t.Errorf("eps %v: PGD-20 accuracy %.3f above FGSM accuracy %.3f", eps, accP, accF)
		}
		if accF > accP && accF < clean {
			sawPartial = true
		}
	}
	if !sawPartial {
		t.Error("no eps where FGSM lowers accuracy and PGD-20 lowers it further; the comparison is vacuous")
	}
}

func TestPGDRestartsNeverWorseThanOneStart(t *testing.T) {
	m, x, labels := trainedLinearSoftmax(t)
	const eps = 0.1
	one := PGD{Eps: eps, Step: eps / 2, Steps: 2, RandomStart: true}
	many := one
	many.Restarts = 5
	outOne := make([]float32, len(x))
	outMany := make([]float32, len(x))
	if err := (&Attacker{}).PGD(m, x, labels, attackN, one, attackRNG(9), outOne); err != nil {
		t.Fatal(err)
	}
	if err := (&Attacker{}).PGD(m, x, labels, attackN, many, attackRNG(9), outMany); err != nil {
		t.Fatal(err)
	}
	wrongOne, _ := Success(m, outOne, labels, attackN)
	wrongMany, _ := Success(m, outMany, labels, attackN)
	lossOne, lossMany := attackPerSampleCE(m, outOne, labels), attackPerSampleCE(m, outMany, labels)
	gained := 0
	for i := range attackN {
		if wrongOne[i] && !wrongMany[i] {
			t.Fatalf("sample %d broken by one start but not by %d restarts", i, many.Restarts)
		}
		if wrongOne[i] == wrongMany[i] && lossMany[i] < lossOne[i]-1e-9 {
			t.Errorf("sample %d: loss %v with restarts below %v with one start", i, lossMany[i], lossOne[i])
		}
		if lossMany[i] > lossOne[i]+1e-9 {
			gained++
		}
	}
	if gained == 0 {
		t.Error("restarts never found a higher loss; the test does not exercise them")
	}
}

func TestAttacksAreDeterministicForASeed(t *testing.T) {
	m, x, labels := trainedLinearSoftmax(t)
	reused := &Attacker{}
	// Fill the reused attacker's scratch with a larger, different call first.
	big := slices.Concat(x, x)
	bigLabels := slices.Concat(labels, labels)
	if err := reused.PGD(m, big, bigLabels, 2*attackN, PGD{Eps: 0.3, Step: 0.1, Steps: 3, RandomStart: true, Restarts: 2}, attackRNG(77), make([]float32, len(big))); err != nil {
		t.Fatal(err)
	}
	for _, tc := range attackCases(0.1) {
		t.Run(tc.name, func(t *testing.T) {
			first := make([]float32, len(x))
			second := make([]float32, len(x))
			if err := tc.run(&Attacker{}, m, x, labels, attackN, attackRNG(5), first); err != nil {
				t.Fatal(err)
			}
			if err := tc.run(reused, m, x, labels, attackN, attackRNG(5), second); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(first, second) {
				t.Error("same seed gave different adversarial examples")
			}
			if tc.name == "pgd clean start" {
				return
			}
			other := make([]float32, len(x))
			if err := tc.run(reused, m, x, labels, attackN, attackRNG(6), other); err != nil {
				t.Fatal(err)
			}
			if slices.Equal(first, other) {
				t.Error("different seeds gave identical adversarial examples; the seed is not used")
			}
		})
	}
}

func TestAttackMayOverwriteItsInput(t *testing.T) {
	m, x, labels := trainedLinearSoftmax(t)
	cfg := PGD{Eps: 0.1, Step: 0.025, Steps: 10, RandomStart: true}
	want := make([]float32, len(x))
	if err := (&Attacker{}).PGD(m, x, labels, attackN, cfg, attackRNG(8), want); err != nil {
		t.Fatal(err)
	}
	inPlace := slices.Clone(x)
	if err := (&Attacker{}).PGD(m, inPlace, labels, attackN, cfg, attackRNG(8), inPlace); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(want, inPlace) {
		t.Error("attacking in place (xAdv == x) differs from attacking into a separate buffer")
	}
}

func TestTRADESAttackIncreasesKL(t *testing.T) {
	m, x, labels := trainedLinearSoftmax(t)
	const eps = 0.1
	start := make([]float32, len(x))
	noise := make([]float32, len(x))
	rng := attackRNG(11)
	for i, v := range x {
		start[i] = project(float64(v)+TRADESStartStd*rng.NormFloat64(), v, eps)
		sign := float64(1 - 2*rng.IntN(2))
		noise[i] = project(float64(v)+sign*eps, v, eps)
	}
	adv := make([]float32, len(x))
	if err := (&Attacker{}).TRADES(m, x, attackN, TRADES{Eps: eps, Step: eps / 4, Steps: 10}, attackRNG(11), adv); err != nil {
		t.Fatal(err)
	}
	klStart := attackMeanKL(m, x, start, attackN)
	klNoise := attackMeanKL(m, x, noise, attackN)
	klAdv := attackMeanKL(m, x, adv, attackN)
	t.Logf("mean KL: start %.5f, random sign noise %.5f, trades attack %.5f", klStart, klNoise, klAdv)
	if !(klAdv > klNoise && klAdv > 10*klStart) {
		t.Errorf("trades attack KL %.5f not above random-corner KL %.5f and start KL %.5f", klAdv, klNoise, klStart)
	}
	// Hard labels are not used: the attack must still lower accuracy.
	acc, _ := RobustAccuracy(m, adv, labels, attackN)
	clean, _ := RobustAccuracy(m, x, labels, attackN)
	if acc >= clean {
		t.Errorf("trades attack left accuracy at %.3f (clean %.3f)", acc, clean)
	}
}

func TestPGDTargetsWithOneHotTargetsIsPGD(t *testing.T) {
	m, x, labels := trainedLinearSoftmax(t)
	cfg := PGD{Eps: 0.1, Step: 0.025, Steps: 5, RandomStart: true, Restarts: 2, EarlyStop: true}
	onehot := make([]float32, attackN*attackK)
	for i, y := range labels {
		onehot[i*attackK+int(y)] = 1
	}
	a, b := make([]float32, len(x)), make([]float32, len(x))
	if err := (&Attacker{}).PGD(m, x, labels, attackN, cfg, attackRNG(12), a); err != nil {
		t.Fatal(err)
	}
	if err := (&Attacker{}).PGDTargets(m, x, onehot, attackN, cfg, attackRNG(12), b); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a, b) {
		t.Error("PGDTargets with one-hot targets differs from PGD")
	}
}

func TestPGDTargetsRaisesSoftTargetLoss(t *testing.T) {
	m, x, _ := trainedLinearSoftmax(t)
	rng := attackRNG(13)
	targets := make([]float32, attackN*attackK)
	for i := range targets {
		targets[i] = float32(rng.Float64())
	}
	grad := make([]float32, len(x))
	before, _ := m.InputGrad(x, attackN, targets, grad)
	out := make([]float32, len(x))
	if err := (&Attacker{}).PGDTargets(m, x, targets, attackN, PGD{Eps: 0.1, Step: 0.025, Steps: 10}, nil, out); err != nil {
		t.Fatal(err)
	}
	after, _ := m.InputGrad(out, attackN, targets, grad)
	if !(after > before) {
		t.Errorf("soft-target loss %v after the attack, %v before", after, before)
	}
}

func TestSuccessMatchesModelPredictions(t *testing.T) {
	m, x, labels := trainedLinearSoftmax(t)
	adv := make([]float32, len(x))
	if err := (&Attacker{}).PGD(m, x, labels, attackN, PGD{Eps: 0.15, Step: 0.04, Steps: 10}, nil, adv); err != nil {
		t.Fatal(err)
	}
	wrong, err := Success(m, adv, labels, attackN)
	if err != nil {
		t.Fatal(err)
	}
	broken := 0
	for i := range attackN {
		m.forward(adv[i*attackD : (i+1)*attackD])
		pred := 0
		for c := range attackK {
			if m.z[c] > m.z[pred] {
				pred = c
			}
		}
		if want := pred != int(labels[i]); wrong[i] != want {
			t.Errorf("sample %d: Success says %v, model predicts %d for label %d", i, wrong[i], pred, labels[i])
		}
		if wrong[i] {
			broken++
		}
	}
	acc, err := RobustAccuracy(m, adv, labels, attackN)
	if err != nil {
		t.Fatal(err)
	}
	if want := float64(attackN-broken) / attackN; acc != want {
		t.Errorf("RobustAccuracy %v, want %v", acc, want)
	}
	if broken == 0 || broken == attackN {
		t.Errorf("%d of %d broken; pick an eps that breaks some but not all", broken, attackN)
	}
}

func TestAttackReusesScratchWithoutAllocating(t *testing.T) {
	m, x, labels := trainedLinearSoftmax(t)
	a := &Attacker{}
	out := make([]float32, len(x))
	rng := attackRNG(14)
	cfg := PGD{Eps: 0.1, Step: 0.025, Steps: 10, RandomStart: true, Restarts: 2, EarlyStop: true}
	trades := TRADES{Eps: 0.1, Step: 0.025, Steps: 10}
	allocs := testing.AllocsPerRun(3, func() {
		if err := a.PGD(m, x, labels, attackN, cfg, rng, out); err != nil {
			t.Fatal(err)
		}
		if err := a.TRADES(m, x, attackN, trades, rng, out); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per PGD+TRADES call after warm-up, want 0", allocs)
	}
}

func TestAttacksRejectBadInput(t *testing.T) {
	m, x, labels := trainedLinearSoftmax(t)
	n := 4
	x, labels = x[:n*attackD], labels[:n]
	out := make([]float32, n*attackD)
	good := PGD{Eps: 0.1, Step: 0.01, Steps: 2, RandomStart: true}
	outside := slices.Clone(x)
	outside[5] = 1.5
	nan := slices.Clone(x)
	nan[3] = float32(math.NaN())
	tests := []struct {
		name string
		run  func(a *Attacker) error
		want string
	}{
		{"nil model", func(a *Attacker) error { return a.PGD(nil, x, labels, n, good, attackRNG(1), out) }, "model is nil"},
		{"short inputs", func(a *Attacker) error { return a.PGD(m, x[1:], labels, n, good, attackRNG(1), out) }, "inputs have"},
		{"short output", func(a *Attacker) error { return a.PGD(m, x, labels, n, good, attackRNG(1), out[1:]) }, "output has"},
		{"label count", func(a *Attacker) error { return a.PGD(m, x, labels[1:], n, good, attackRNG(1), out) }, "labels for"},
		{"label range", func(a *Attacker) error {
			return a.PGD(m, x, []int32{0, 1, 3, 0}, n, good, attackRNG(1), out)
		}, "outside [0,3)"},
		{"negative label", func(a *Attacker) error {
			return a.PGD(m, x, []int32{0, -1, 2, 0}, n, good, attackRNG(1), out)
		}, "outside [0,3)"},
		{"negative n", func(a *Attacker) error { return a.PGD(m, x, labels, -1, good, attackRNG(1), out) }, "negative"},
		{"input above 1", func(a *Attacker) error { return a.PGD(m, outside, labels, n, good, attackRNG(1), out) }, "outside [0,1]"},
		{"NaN input", func(a *Attacker) error { return a.PGD(m, nan, labels, n, good, attackRNG(1), out) }, "outside [0,1]"},
		{"negative eps", func(a *Attacker) error {
			return a.PGD(m, x, labels, n, PGD{Eps: -0.1, Step: 0.01, Steps: 1}, nil, out)
		}, "eps"},
		{"NaN eps", func(a *Attacker) error {
			return a.PGD(m, x, labels, n, PGD{Eps: math.NaN(), Step: 0.01, Steps: 1}, nil, out)
		}, "eps"},
		{"zero step", func(a *Attacker) error { return a.PGD(m, x, labels, n, PGD{Eps: 0.1, Steps: 1}, nil, out) }, "step"},
		{"negative steps", func(a *Attacker) error {
			return a.PGD(m, x, labels, n, PGD{Eps: 0.1, Step: 0.1, Steps: -1}, nil, out)
		}, "steps"},
		{"negative restarts", func(a *Attacker) error {
			return a.PGD(m, x, labels, n, PGD{Eps: 0.1, Step: 0.1, Steps: 1, Restarts: -2}, nil, out)
		}, "restarts"},
		{"nil rng with random start", func(a *Attacker) error { return a.PGD(m, x, labels, n, good, nil, out) }, "rng is nil"},
		{"fgsm negative step", func(a *Attacker) error {
			return a.FGSM(m, x, labels, n, FGSM{Eps: 0.1, Step: -1}, attackRNG(1), out)
		}, "step"},
		{"trades nil rng", func(a *Attacker) error {
			return a.TRADES(m, x, n, TRADES{Eps: 0.1, Step: 0.01, Steps: 1}, nil, out)
		}, "rng is nil"},
		{"trades short inputs", func(a *Attacker) error {
			return a.TRADES(m, x[2:], n, TRADES{Eps: 0.1, Step: 0.01, Steps: 1}, attackRNG(1), out)
		}, "inputs have"},
		{"targets length", func(a *Attacker) error {
			return a.PGDTargets(m, x, make([]float32, n*attackK-1), n, good, attackRNG(1), out)
		}, "targets have"},
		{"negative target", func(a *Attacker) error {
			t := make([]float32, n*attackK)
			t[4] = -0.5
			return a.PGDTargets(m, x, t, n, good, attackRNG(1), out)
		}, "must be finite and >= 0"},
		{"robust accuracy of nothing", func(a *Attacker) error {
			_, err := RobustAccuracy(m, nil, nil, 0)
			return err
		}, "at least one sample"},
		{"success label range", func(a *Attacker) error {
			_, err := Success(m, x, []int32{0, 1, 2, 9}, n)
			return err
		}, "outside [0,3)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run(&Attacker{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestAttacksWithZeroEpsReturnTheCleanInput(t *testing.T) {
	m, x, labels := trainedLinearSoftmax(t)
	for _, tc := range attackCases(0) {
		t.Run(tc.name, func(t *testing.T) {
			out := make([]float32, len(x))
			if err := tc.run(&Attacker{}, m, x, labels, attackN, attackRNG(1), out); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(out, x) {
				t.Error("eps 0 moved the input")
			}
		})
	}
}

// attackPerSampleCE is the hard-label cross-entropy of each sample under m.
func attackPerSampleCE(m *linearSoftmax, x []float32, labels []int32) []float64 {
	loss := make([]float64, len(labels))
	for i, y := range labels {
		lse := m.forward(x[i*m.d : (i+1)*m.d])
		loss[i] = lse - m.z[y]
	}
	return loss
}

// attackMeanKL is the mean over samples of KL(softmax(f(x)) ‖ softmax(f(x'))).
func attackMeanKL(m *linearSoftmax, x, xAdv []float32, n int) float64 {
	p := make([]float64, m.k)
	total := 0.0
	for i := range n {
		m.forward(x[i*m.d : (i+1)*m.d])
		copy(p, m.p)
		m.forward(xAdv[i*m.d : (i+1)*m.d])
		for c := range m.k {
			if p[c] > 0 {
				total += p[c] * (math.Log(p[c]) - math.Log(m.p[c]))
			}
		}
	}
	return total / float64(n)
}

// FuzzAttacksStayInEpsBall checks, for arbitrary configurations, that every
// attack either rejects the configuration with an error or returns points in
// the eps-ball around x and in [0,1], without panicking.
func FuzzAttacksStayInEpsBall(f *testing.F) {
	f.Add(0.1, 0.02, uint8(5), uint8(1), true, false, uint64(1))
	f.Add(0.5, 0.3, uint8(3), uint8(3), true, true, uint64(2))
	f.Add(0.0, 0.0, uint8(2), uint8(0), false, false, uint64(3))
	f.Add(-1.0, 0.1, uint8(1), uint8(1), true, false, uint64(4))
	f.Add(2.0, 5.0, uint8(4), uint8(2), false, true, uint64(5))
	const n, d, k = 6, 5, 4
	m := newLinearSoftmax(d, k)
	wr := attackRNG(99)
	for i := range m.w {
		m.w[i] = 4 * wr.NormFloat64()
	}
	f.Fuzz(func(t *testing.T, eps, step float64, steps, restarts uint8, randomStart, earlyStop bool, seed uint64) {
		rng := attackRNG(seed)
		x := make([]float32, n*d)
		labels := make([]int32, n)
		for i := range x {
			x[i] = float32(rng.Float64())
		}
		for i := range labels {
			labels[i] = int32(rng.IntN(k))
		}
		steps %= 20
		restarts %= 4
		cfg := PGD{Eps: eps, Step: step, Steps: int(steps), RandomStart: randomStart, Restarts: int(restarts), EarlyStop: earlyStop}
		a := &Attacker{}
		out := make([]float32, n*d)
		check := func(name string, err error) {
			if err != nil {
				return
			}
			for i, v := range out {
				if math.Abs(float64(v)-float64(x[i])) > eps+1e-6 || v < 0 || v > 1 {
					t.Fatalf("%s %+v: value %d is %v for clean %v", name, cfg, i, v, x[i])
				}
			}
		}
		err := a.PGD(m, x, labels, n, cfg, rng, out)
		finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
		valid := finite(eps) && eps >= 0 && (steps == 0 || (finite(step) && step > 0) || (eps == 0 && step == 0))
		if valid != (err == nil) {
			t.Fatalf("pgd %+v: error %v, but the configuration is valid=%v", cfg, err, valid)
		}
		check("pgd", err)
		check("fgsm", a.FGSM(m, x, labels, n, FGSM{Eps: eps, Step: step}, rng, out))
		check("trades", a.TRADES(m, x, n, TRADES{Eps: eps, Step: step, Steps: int(steps)}, rng, out))
	})
}

// TestPGDBreaksATrainedGorgoniaMLP runs the attacks against the real model
// core: an MLP trained briefly on attackBlobs, evaluated through an Evaluator.
func TestPGDBreaksATrainedGorgoniaMLP(t *testing.T) {
	x, labels := attackBlobs(7, attackN, attackD, attackK)
	w := trainGorgoniaMLP(t, x, labels, attackN, attackD, attackK) // checks clean accuracy >= 0.9
	m, err := model.NewEvaluator(w, 64, 2)
	if err != nil {
		t.Fatal(err)
	}
	clean, err := RobustAccuracy(m, x, labels, attackN)
	if err != nil {
		t.Fatal(err)
	}
	if clean < 0.9 {
		t.Fatalf("clean accuracy of the trained MLP is %.3f, want >= 0.9", clean)
	}
	a := &Attacker{}
	for _, tc := range []struct {
		name string
		eps  float64
		run  func(eps float64, out []float32) error
		max  float64 // robust accuracy must stay strictly below this
	}{
		{"pgd-20 eps 0.5", 0.5, func(eps float64, out []float32) error {
			return a.PGD(m, x, labels, attackN, PGD{Eps: eps, Step: eps / 10, Steps: 20, RandomStart: true}, attackRNG(21), out)
		}, 0.05},
		{"pgd-10 eps 0.1", 0.1, func(eps float64, out []float32) error {
			return a.PGD(m, x, labels, attackN, PGD{Eps: eps, Step: eps / 4, Steps: 10, RandomStart: true}, attackRNG(21), out)
		}, clean},
		{"trades eps 0.5", 0.5, func(eps float64, out []float32) error {
			return a.TRADES(m, x, attackN, TRADES{Eps: eps, Step: eps / 10, Steps: 20}, attackRNG(21), out)
		}, clean},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := make([]float32, len(x))
			if err := tc.run(tc.eps, out); err != nil {
				t.Fatal(err)
			}
			for i, v := range out {
				if math.Abs(float64(v)-float64(x[i])) > tc.eps+1e-6 || v < 0 || v > 1 {
					t.Fatalf("value %d is %v for clean %v: outside the eps-ball or [0,1]", i, v, x[i])
				}
			}
			acc, err := RobustAccuracy(m, out, labels, attackN)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("clean %.3f, robust %.3f", clean, acc)
			if !(acc < tc.max) {
				t.Errorf("robust accuracy %.3f, want below %.3f", acc, tc.max)
			}
		})
	}
}
