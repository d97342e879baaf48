package attack

import (
	"math"
	"slices"
	"strings"
	"testing"
)

func TestEvalLossRowGradientsMatchFiniteDifferences(t *testing.T) {
	// Well-separated logits so a small move never reorders them.
	z0 := []float32{1.3, -0.4, 2.9, 0.2, -1.7, 2.1}
	k := len(z0)
	order := make([]int, k)
	for _, tc := range []struct {
		name string
		loss func(z, up []float32) float64
	}{
		{"ce label 0", func(z, up []float32) float64 { return ceRow(z, 0, up) }},
		{"dlr label argmax", func(z, up []float32) float64 { return dlrRow(z, 2, up, order) }},
		{"dlr label not argmax", func(z, up []float32) float64 { return dlrRow(z, 3, up, order) }},
		{"targeted dlr", func(z, up []float32) float64 { return dlrTargetedRow(z, 2, 0, up, order) }},
		{"targeted dlr target in top 4", func(z, up []float32) float64 { return dlrTargetedRow(z, 0, 5, up, order) }},
		{"cw kappa 50", func(z, up []float32) float64 { return cwRow(z, 0, 50, up) }},
		{"cw kappa 1 inactive", func(z, up []float32) float64 { return cwRow(z, 4, 1, up) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			z := slices.Clone(z0)
			up := make([]float32, k)
			tc.loss(z, up)
			scratch := make([]float32, k)
			const h = 1e-2
			for j := range z {
				old := z[j]
				z[j] = old + h
				hi := tc.loss(z, scratch)
				z[j] = old - h
				lo := tc.loss(z, scratch)
				z[j] = old
				want := (hi - lo) / float64((old+h)-(old-h))
				if math.Abs(float64(up[j])-want) > 1e-3*(1+math.Abs(want)) {
					t.Errorf("d loss/d z[%d]: analytic %v, finite difference %v", j, up[j], want)
				}
			}
		})
	}
}

func TestDLRLossesInvariantToShiftAndPositiveScaling(t *testing.T) {
	const k = 10
	rng := evalRNG(4)
	const rows = 20
	logits := make([]float32, rows*k)
	labels := make([]int32, rows)
	targets := make([]int32, rows)
	for i := range rows {
		for j := range k {
			logits[i*k+j] = float32(3 * rng.NormFloat64())
		}
		labels[i] = int32(rng.IntN(k))
		targets[i] = int32((int(labels[i]) + 1 + rng.IntN(k-1)) % k)
	}
	base, err := DLRLoss(logits, labels, k)
	if err != nil {
		t.Fatal(err)
	}
	baseT, err := DLRTargetedLoss(logits, labels, targets, k)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name         string
		scale, shift float64
	}{{"shift +7", 1, 7}, {"shift -3.5", 1, -3.5}, {"scale 4", 4, 0}, {"scale 0.25 shift 2", 0.25, 2}} {
		t.Run(tc.name, func(t *testing.T) {
			moved := make([]float32, len(logits))
			for i, v := range logits {
				moved[i] = float32(tc.scale*float64(v) + tc.shift)
			}
			got, err := DLRLoss(moved, labels, k)
			if err != nil {
				t.Fatal(err)
			}
			gotT, err := DLRTargetedLoss(moved, labels, targets, k)
			if err != nil {
				t.Fatal(err)
			}
			for i := range rows {
				if math.Abs(got[i]-base[i]) > 1e-5 || math.Abs(gotT[i]-baseT[i]) > 1e-5 {
					t.Errorf("row %d: dlr %v -> %v, targeted %v -> %v", i, base[i], got[i], baseT[i], gotT[i])
				}
			}
		})
	}
	// A hand-computed row: z = (3, 1, 0, -1), y = 0: −(3−1)/(3−0) = −2/3;
	// targeted to class 3: −(3−(−1))/(3 − (0+(−1))/2) = −4/3.5.
	got, err := DLRLoss([]float32{3, 1, 0, -1}, []int32{0}, 4)
	if err != nil || math.Abs(got[0]+2.0/3) > 1e-9 {
		t.Errorf("dlr of (3,1,0,-1) label 0 = %v (%v), want -2/3", got, err)
	}
	gotT, err := DLRTargetedLoss([]float32{3, 1, 0, -1}, []int32{0}, []int32{3}, 4)
	if err != nil || math.Abs(gotT[0]+4/3.5) > 1e-9 {
		t.Errorf("targeted dlr = %v (%v), want %v", gotT, err, -4/3.5)
	}
}

func TestAPGDCheckpointsFollowThePaper(t *testing.T) {
	for _, tc := range []struct {
		steps int
		want  []int
	}{
		// p = 0, 0.22, 0.41, 0.57, 0.70, 0.80, 0.87, 0.93, 0.99.
		{100, []int{22, 41, 57, 70, 80, 87, 93, 99}},
		{10, []int{2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{1, []int{1}},
	} {
		if got := apgdCheckpoints(tc.steps); !slices.Equal(got, tc.want) {
			t.Errorf("checkpoints of %d iterations = %v, want %v", tc.steps, got, tc.want)
		}
	}
}

func TestSquarePSchedule(t *testing.T) {
	for _, tc := range []struct {
		it, queries int
		want        float64
	}{
		{0, 5000, 0.8}, {5, 5000, 0.8}, {6, 5000, 0.4}, {25, 5000, 0.4}, {26, 5000, 0.2},
		{100, 5000, 0.2}, {101, 5000, 0.1}, {250, 5000, 0.1}, {500, 5000, 0.05}, {1000, 5000, 0.025},
		{2000, 5000, 0.8 / 64}, {3000, 5000, 0.8 / 128}, {3500, 5000, 0.8 / 256}, {4999, 5000, 0.8 / 512},
		{8000, 10000, 0.8 / 256}, {8001, 10000, 0.8 / 512},
	} {
		if got := SquareP(0.8, tc.it, tc.queries); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("p at query %d of %d = %v, want %v", tc.it, tc.queries, got, tc.want)
		}
	}
}

func TestProjectLinfHyperplane(t *testing.T) {
	for _, tc := range []struct {
		name     string
		t, w     []float32
		b        float64
		wantNorm float64
	}{
		// Free: λ = |b − w·t|/‖w‖₁ = 0.6/3.
		{"interior", []float32{0.5, 0.5, 0.5}, []float32{1, -1, 1}, 1.1, 0.2},
		{"decrease", []float32{0.5, 0.5, 0.5}, []float32{1, -1, 1}, 0.2, 0.1},
		// Coordinate 0 may rise by only 0.1: 0.1·2 + λ·1 = 0.5 → λ = 0.3.
		{"box binds", []float32{0.9, 0.5}, []float32{2, 1}, 2.8, 0.3},
		{"on the plane", []float32{0.2, 0.4}, []float32{1, 1}, 0.6, 0},
		// Unreachable: every coordinate moves to its bound.
		{"unreachable", []float32{0.5, 0.5}, []float32{1, 1}, 5, 0.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			delta := make([]float32, len(tc.t))
			norm := projectLinfHyperplane(tc.t, tc.w, tc.b, delta, make([]roomEntry, len(tc.t)))
			if math.Abs(norm-tc.wantNorm) > 1e-6 {
				t.Errorf("norm %v, want %v (delta %v)", norm, tc.wantNorm, delta)
			}
			dot := 0.0
			for j := range delta {
				v := float64(tc.t[j]) + float64(delta[j])
				if v < -1e-7 || v > 1+1e-7 {
					t.Errorf("coordinate %d moves to %v, outside [0,1]", j, v)
				}
				dot += float64(tc.w[j]) * v
			}
			if tc.name != "unreachable" && math.Abs(dot-tc.b) > 1e-5 {
				t.Errorf("w·(t+δ) = %v, want %v", dot, tc.b)
			}
		})
	}
}

// TestFABTFindsTheMinimalDistanceOnALinearModel compares FAB-T with the
// analytic smallest L∞ distance to the decision boundary of a linear model,
// min over classes t ≠ y of (z_y − z_t)/‖w_y − w_t‖₁ (the [0,1] box does not
// bind for the points kept).
func TestFABTFindsTheMinimalDistanceOnALinearModel(t *testing.T) {
	const d, k, n = 20, 5, 40
	m := newEvalMLP(8, d, 0, k, 1)
	rng := evalRNG(8)
	x := make([]float32, n*d)
	for i := range x {
		x[i] = float32(0.3 + 0.4*rng.Float64())
	}
	labels := make([]int32, n)
	logits := make([]float32, n*k)
	if err := m.Logits(x, n, logits); err != nil {
		t.Fatal(err)
	}
	want := make([]float64, n)
	for i := range n {
		z := m.logits64(x[i*d : (i+1)*d])
		y := 0
		for c := range z {
			if z[c] > z[y] {
				y = c
			}
		}
		labels[i] = int32(y)
		want[i] = math.Inf(1)
		for c := range k {
			if c == y {
				continue
			}
			l1 := 0.0
			for j := range d {
				l1 += math.Abs(m.w2[y*d+j] - m.w2[c*d+j])
			}
			want[i] = math.Min(want[i], (z[y]-z[c])/l1)
		}
	}
	xAdv := make([]float32, n*d)
	dist, err := FAB{Eps: 0.25, Steps: 100, Targets: k - 1, MinNorm: true}.Run(m, x, labels, n, nil, xAdv)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for i := range n {
		if want[i] > 0.25 {
			continue // the box could bind
		}
		checked++
		if !(dist[i] >= want[i]*(1-1e-4) && dist[i] <= want[i]*1.01) {
			t.Errorf("sample %d: FAB-T distance %v, analytic minimum %v (ratio %.4f)", i, dist[i], want[i], dist[i]/want[i])
		}
		if dist[i] <= 0.25 {
			if got := evalLinf(x[i*d:(i+1)*d], xAdv[i*d:(i+1)*d]); math.Abs(got-dist[i]) > 1e-6 {
				t.Errorf("sample %d: returned point at distance %v, reported %v", i, got, dist[i])
			}
		}
	}
	if checked < n/2 {
		t.Fatalf("only %d of %d samples have an analytic distance below 0.25; the test model is too robust", checked, n)
	}
	wrong, err := Success(m, xAdv, labels, n)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if (dist[i] <= 0.25) != wrong[i] {
			t.Errorf("sample %d: distance %v within eps 0.25 is %v but misclassified is %v", i, dist[i], dist[i] <= 0.25, wrong[i])
		}
	}
}

func TestSquareBreaksAnUndefendedModel(t *testing.T) {
	for _, hidden := range []int{0, 16} {
		m, x, labels := evalTrained(t, hidden)
		const eps = 0.15
		xAdv := make([]float32, len(x))
		if err := (Square{Eps: eps, Queries: 1000}).Run(m, x, labels, evalN, evalRNG(3), xAdv); err != nil {
			t.Fatal(err)
		}
		evalCheckBall(t, x, xAdv, eps)
		acc, err := RobustAccuracy(m, xAdv, labels, evalN)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("hidden %d: square robust accuracy %.3f", hidden, acc)
		if acc > 0.05 {
			t.Errorf("hidden %d: square at eps %v leaves robust accuracy %.3f, want <= 0.05", hidden, eps, acc)
		}
	}
}

// TestEvalAttacksAreOrderedByStrength checks on a trained two-layer
// network: AutoAttack ≤ APGD-CE ≤ PGD-20 ≤ FGSM ≤ clean, and that CW∞,
// APGD-T, FAB-T and Square each do better than nothing.
func TestEvalAttacksAreOrderedByStrength(t *testing.T) {
	m, x, labels := evalTrained(t, 16)
	evalCheckOrdering(t, m, x, labels, evalN, 0.08, Spec{Queries: 500})
}

func TestEvalAttacksStayInTheBallAndAreDeterministic(t *testing.T) {
	m, x, labels := evalTrained(t, 16)
	const n, eps = 40, 0.1
	x, labels = x[:n*evalD], labels[:n]
	for _, name := range Names {
		t.Run(name, func(t *testing.T) {
			spec := Spec{Name: name, Eps: eps, Steps: 10, Queries: 200, Targets: 2}
			a, b := make([]float32, len(x)), make([]float32, len(x))
			if err := Run(m, spec, x, labels, n, evalRNG(5), a); err != nil {
				t.Fatal(err)
			}
			if err := Run(m, spec, x, labels, n, evalRNG(5), b); err != nil {
				t.Fatal(err)
			}
			evalCheckBall(t, x, a, eps)
			if !slices.Equal(a, b) {
				t.Error("two runs with the same seed differ")
			}
			// xAdv may alias x.
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

func TestAutoAttackReportIsConsistent(t *testing.T) {
	m, x, labels := evalTrained(t, 16)
	const eps = 0.06
	xAdv := make([]float32, len(x))
	rep, err := AutoAttackConfig{Eps: eps, Steps: 20, Queries: 300}.Run(m, x, labels, evalN, evalRNG(2), xAdv)
	if err != nil {
		t.Fatal(err)
	}
	evalCheckBall(t, x, xAdv, eps)
	names := []string{}
	prev, broken := rep.CleanAcc, 0
	for _, s := range rep.Steps {
		names = append(names, s.Attack)
		if s.RobustAcc > prev {
			t.Errorf("%s: robust accuracy rose from %v to %v", s.Attack, prev, s.RobustAcc)
		}
		if got := int(math.Round((prev - s.RobustAcc) * evalN)); got != s.Broken {
			t.Errorf("%s: broke %d, but accuracy fell by %d points", s.Attack, s.Broken, got)
		}
		prev = s.RobustAcc
		broken += s.Broken
	}
	if want := []string{NameAPGDCE, NameAPGDT, NameFABT, NameSquare}; !slices.Equal(names, want) {
		t.Errorf("components %v, want %v", names, want)
	}
	acc, err := RobustAccuracy(m, xAdv, labels, evalN)
	if err != nil {
		t.Fatal(err)
	}
	if acc != rep.RobustAcc || prev != rep.RobustAcc {
		t.Errorf("report says %v (last step %v), the returned points give %v", rep.RobustAcc, prev, acc)
	}
	if broken == 0 {
		t.Error("no component broke any point")
	}
}

func TestEvalAttacksRejectBadInput(t *testing.T) {
	m, x, labels := evalTrained(t, 0)
	const n = 4
	x, labels = x[:n*evalD], labels[:n]
	out := make([]float32, len(x))
	outside := slices.Clone(x)
	outside[3] = 1.5
	badLabel := slices.Clone(labels)
	badLabel[1] = evalK
	for _, tc := range []struct {
		name string
		run  func() error
		want string
	}{
		{"unknown attack", func() error {
			return Run(m, Spec{Name: "deepfool", Eps: 0.1}, x, labels, n, evalRNG(1), out)
		}, "unknown attack"},
		{"negative eps", func() error { return Run(m, Spec{Name: NamePGD, Eps: -1}, x, labels, n, evalRNG(1), out) }, "eps"},
		{"NaN eps", func() error {
			return Run(m, Spec{Name: NameCW, Eps: math.NaN()}, x, labels, n, evalRNG(1), out)
		}, "eps"},
		{"negative steps", func() error {
			return Run(m, Spec{Name: NameAPGDCE, Eps: 0.1, Steps: -2}, x, labels, n, evalRNG(1), out)
		}, "steps"},
		{"negative queries", func() error {
			return Run(m, Spec{Name: NameSquare, Eps: 0.1, Queries: -1}, x, labels, n, evalRNG(1), out)
		}, "queries"},
		{"input outside [0,1]", func() error {
			return Run(m, Spec{Name: NameAPGDT, Eps: 0.1}, outside, labels, n, evalRNG(1), out)
		}, "outside [0,1]"},
		{"label out of range", func() error {
			return Run(m, Spec{Name: NameFABT, Eps: 0.1}, x, badLabel, n, evalRNG(1), out)
		}, "label"},
		{"short output", func() error { return Run(m, Spec{Name: NameClean}, x, labels, n, evalRNG(1), out[:3]) }, "output"},
		{"nil model", func() error {
			return Run(nil, Spec{Name: NamePGD, Eps: 0.1}, x, labels, n, evalRNG(1), out)
		}, "model is nil"},
		{"nil rng", func() error { return Run(m, Spec{Name: NameAPGDCE, Eps: 0.1}, x, labels, n, nil, out) }, "rng is nil"},
		{"apgd zero steps", func() error { return APGD{Eps: 0.1}.Run(m, x, labels, n, evalRNG(1), out) }, "steps"},
		{"apgd bad rho", func() error { return APGD{Eps: 0.1, Steps: 5, Rho: 1.5}.Run(m, x, labels, n, evalRNG(1), out) }, "rho"},
		{"fab bad beta", func() error {
			_, err := FAB{Eps: 0.1, Steps: 5, Targets: 1, Beta: 2}.Run(m, x, labels, n, nil, out)
			return err
		}, "beta"},
		{"square zero queries", func() error { return Square{Eps: 0.1}.Run(m, x, labels, n, evalRNG(1), out) }, "queries"},
		{"dlr label", func() error { _, err := DLRLoss(make([]float32, 4), []int32{7}, 4); return err }, "label"},
		{"dlr length", func() error { _, err := DLRLoss(make([]float32, 5), []int32{0}, 4); return err }, "logits"},
		{"targeted dlr target", func() error {
			_, err := DLRTargetedLoss(make([]float32, 4), []int32{0}, []int32{4}, 4)
			return err
		}, "target"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestEvalAttacksWithZeroEpsKeepTheCleanInput(t *testing.T) {
	m, x, labels := evalTrained(t, 0)
	const n = 20
	x, labels = x[:n*evalD], labels[:n]
	for _, name := range Names {
		out := make([]float32, len(x))
		if err := Run(m, Spec{Name: name, Steps: 5, Queries: 20, Targets: 2}, x, labels, n, evalRNG(1), out); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !slices.Equal(out, x) {
			t.Errorf("%s with eps 0 moved the input", name)
		}
	}
}

// evalCheckOrdering runs the protocol's attacks at eps against m and checks
// AutoAttack ≤ APGD-CE ≤ PGD-20 ≤ FGSM ≤ clean robust accuracy, and that
// every other attack is no stronger than clean. extra carries Steps/Queries
// overrides for the expensive attacks.
func evalCheckOrdering(t *testing.T, m GradModel, x []float32, labels []int32, n int, eps float64, extra Spec) {
	t.Helper()
	acc := map[string]float64{}
	for _, name := range Names {
		spec := Spec{Name: name, Eps: eps}
		if name == NameSquare || name == NameAutoAttack {
			spec.Queries = extra.Queries
		}
		xAdv := make([]float32, len(x))
		if err := Run(m, spec, x, labels, n, evalRNG(17), xAdv); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		evalCheckBall(t, x, xAdv, eps)
		a, err := RobustAccuracy(m, xAdv, labels, n)
		if err != nil {
			t.Fatal(err)
		}
		acc[name] = a
	}
	t.Logf("robust accuracy at eps %v: %v", eps, acc)
	chain := []string{NameAutoAttack, NameAPGDCE, NamePGD, NameFGSM, NameClean}
	for i := 0; i+1 < len(chain); i++ {
		if acc[chain[i]] > acc[chain[i+1]] {
			t.Errorf("%s accuracy %.3f exceeds %s accuracy %.3f", chain[i], acc[chain[i]], chain[i+1], acc[chain[i+1]])
		}
	}
	if !(acc[NamePGD] < acc[NameClean]) {
		t.Errorf("PGD-20 accuracy %.3f is not below clean %.3f: eps %v is too small for the test", acc[NamePGD], acc[NameClean], eps)
	}
	for _, name := range []string{NameCW, NameAPGDT, NameFABT, NameSquare} {
		if !(acc[name] < acc[NameClean]) {
			t.Errorf("%s accuracy %.3f is not below clean %.3f", name, acc[name], acc[NameClean])
		}
	}
}

// evalCheckBall fails when xAdv leaves the eps-ball around x or [0,1].
func evalCheckBall(t *testing.T, x, xAdv []float32, eps float64) {
	t.Helper()
	for i, v := range xAdv {
		if math.Abs(float64(v)-float64(x[i])) > eps+1e-6 || v < 0 || v > 1 {
			t.Fatalf("value %d is %v for clean %v: outside the eps-ball %v or [0,1]", i, v, x[i], eps)
		}
	}
}

// evalLinf is ‖a − b‖∞.
func evalLinf(a, b []float32) float64 {
	m := 0.0
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i])-float64(b[i])))
	}
	return m
}
