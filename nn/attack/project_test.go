package attack

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

// Tests of the L2/L1 projections against straightforward reference
// solutions (bisection, sorting).

// randomBoxRow draws a clean row in [0,1] with some coordinates exactly at
// 0 or 1, where the box binds.
func randomBoxRow(rng *rand.Rand, d int) []float32 {
	x := make([]float32, d)
	for j := range x {
		switch u := rng.Float64(); {
		case u < 0.1:
			x[j] = 0
		case u < 0.2:
			x[j] = 1
		default:
			x[j] = float32(rng.Float64())
		}
	}
	return x
}

// bisectL1Box is the L1-ball ∩ box projection by bisection on λ.
func bisectL1Box(x0 []float32, delta []float64, eps float64) []float64 {
	mass := func(lambda float64) float64 {
		s := 0.0
		for j, v := range delta {
			s += min(max(math.Abs(v)-lambda, 0), boxRoom(x0[j], v))
		}
		return s
	}
	lo, hi := 0.0, 0.0
	for _, v := range delta {
		hi = max(hi, math.Abs(v))
	}
	if mass(0) > eps {
		for range 200 {
			mid := (lo + hi) / 2
			if mass(mid) > eps {
				lo = mid
			} else {
				hi = mid
			}
		}
	} else {
		hi = 0
	}
	out := make([]float64, len(delta))
	for j, v := range delta {
		out[j] = math.Copysign(min(max(math.Abs(v)-hi, 0), boxRoom(x0[j], v)), v)
	}
	return out
}

func TestProjectL1BoxMatchesBisection(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 400 {
		d := []int{1, 2, 3, 10, 100}[trial%5]
		x0 := randomBoxRow(rng, d)
		delta := make([]float64, d)
		scale := []float64{0.01, 0.3, 2}[trial%3]
		for j := range delta {
			delta[j] = scale * rng.NormFloat64()
			if rng.Float64() < 0.1 {
				delta[j] = 0
			}
		}
		eps := []float64{0, 1e-3, 0.1, 1, 5, 1000}[trial%6]
		want := bisectL1Box(x0, delta, eps)
		got := slices.Clone(delta)
		projectL1Box(x0, got, eps, nil)
		for j := range got {
			if math.Abs(got[j]-want[j]) > 1e-9 {
				t.Fatalf("trial %d (d %d, eps %v): coordinate %d is %v, bisection %v", trial, d, eps, j, got[j], want[j])
			}
			if v := float64(x0[j]) + got[j]; v < -1e-12 || v > 1+1e-12 {
				t.Fatalf("trial %d: coordinate %d leaves the box: %v", trial, j, v)
			}
		}
		if n := normOf(L1, got); n > eps+1e-9 {
			t.Fatalf("trial %d: ‖δ‖₁ = %v exceeds eps %v", trial, n, eps)
		}
	}
}

func TestStoreRowKeepsDenseL1PerturbationsInTheBall(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := range 50 {
		d := 3072
		x0 := randomBoxRow(rng, d)
		delta := make([]float64, d)
		for j := range delta {
			delta[j] = 0.3 * rng.NormFloat64()
		}
		eps := 12.0 + float64(trial)
		projectL1Box(x0, delta, eps, nil)
		out := make([]float32, d)
		for _, p := range []Norm{L1, L2} {
			storeRow(p, x0, delta, eps, out)
			if dist := Distance(p, out, x0); dist > eps {
				t.Fatalf("trial %d: stored %s distance %v exceeds eps %v", trial, p, dist, eps)
			}
		}
	}
}

func TestKthSmallestMatchesSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := range 300 {
		n := 1 + rng.IntN(60)
		v := make([]float64, n)
		for j := range v {
			v[j] = float64(rng.IntN(8)) // many ties
			if trial%2 == 0 {
				v[j] = rng.NormFloat64()
			}
		}
		sorted := slices.Sorted(slices.Values(v))
		k := rng.IntN(n)
		if got := kthSmallest(slices.Clone(v), k); got != sorted[k] {
			t.Fatalf("trial %d: rank %d of %v is %v, want %v", trial, k, v, got, sorted[k])
		}
	}
}

// hyperplaneReference solves the L2 or L1 hyperplane projection the slow
// way: L2 by bisection on λ of Σ|w_j|·min(λ|w_j|, room_j) = gap, L1 by
// filling the coordinates in decreasing |w_j| after sorting.
func hyperplaneReference(p Norm, t, w []float32, b float64) (delta []float64, reachable bool) {
	gap, dir := hyperplaneGap(t, w, b)
	delta = make([]float64, len(t))
	rooms := make([]float64, len(t))
	capacity := 0.0
	for j, v := range t {
		if w[j] != 0 {
			rooms[j], _ = hyperplaneRoom(v, float64(w[j]), dir)
			capacity += math.Abs(float64(w[j])) * rooms[j]
		}
	}
	sign := func(j int) float64 {
		if _, up := hyperplaneRoom(t[j], float64(w[j]), dir); up {
			return 1
		}
		return -1
	}
	if capacity < gap {
		for j := range t {
			if w[j] != 0 {
				delta[j] = sign(j) * rooms[j]
			}
		}
		return delta, false
	}
	if p == L2 {
		gain := func(l float64) float64 {
			s := 0.0
			for j := range t {
				s += math.Abs(float64(w[j])) * min(l*math.Abs(float64(w[j])), rooms[j])
			}
			return s
		}
		lo, hi := 0.0, 1.0
		for gain(hi) < gap {
			hi *= 2
		}
		for range 200 {
			if mid := (lo + hi) / 2; gain(mid) < gap {
				lo = mid
			} else {
				hi = mid
			}
		}
		for j := range t {
			if w[j] != 0 {
				delta[j] = sign(j) * min(hi*math.Abs(float64(w[j])), rooms[j])
			}
		}
		return delta, true
	}
	order := make([]int, len(t))
	for j := range order {
		order[j] = j
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return -cmpFloat(math.Abs(float64(w[a])), math.Abs(float64(w[b])))
	})
	rest := gap
	for _, j := range order {
		if w[j] == 0 || rest <= 0 {
			continue
		}
		wt := math.Abs(float64(w[j]))
		move := min(rooms[j], rest/wt)
		rest -= move * wt
		delta[j] = sign(j) * move
	}
	return delta, true
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestProjectLpHyperplaneMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, p := range []Norm{L2, L1} {
		project := projectL2Hyperplane
		if p == L1 {
			project = projectL1Hyperplane
		}
		for trial := range 300 {
			d := []int{1, 2, 5, 40}[trial%4]
			x := randomBoxRow(rng, d)
			w := make([]float32, d)
			for j := range w {
				w[j] = float32(rng.NormFloat64())
				if rng.Float64() < 0.15 {
					w[j] = 0
				}
				if trial%3 == 0 && j%2 == 1 {
					w[j] = w[j-1] // equal weights: ties
				}
			}
			b := 0.0
			for j := range w {
				b += float64(w[j]) * float64(x[j])
			}
			b += []float64{0, 0.05, -0.3, 2, -50}[trial%5]
			want, reachable := hyperplaneReference(p, x, w, b)
			delta := make([]float32, d)
			norm := project(x, w, b, delta, make([]roomEntry, d))
			wantNorm := normOf(p, want)
			if math.Abs(norm-wantNorm) > 1e-6*(1+wantNorm) {
				t.Fatalf("%s trial %d: norm %v, reference %v (delta %v, want %v)", p, trial, norm, wantNorm, delta, want)
			}
			dot := 0.0
			for j := range delta {
				v := float64(x[j]) + float64(delta[j])
				if v < -1e-6 || v > 1+1e-6 {
					t.Fatalf("%s trial %d: coordinate %d leaves the box: %v", p, trial, j, v)
				}
				dot += float64(w[j]) * v
			}
			if reachable && math.Abs(dot-b) > 1e-4*(1+math.Abs(b)) {
				t.Fatalf("%s trial %d: w·(x+δ) = %v, want %v", p, trial, dot, b)
			}
		}
	}
}

func TestL1ScheduleFollowsTheReference(t *testing.T) {
	for _, tc := range []struct {
		steps   int
		factors []float64
		iters   []int
	}{
		{100, []float64{3, 2, 1}, []int{30, 30, 40}},
		{10, []float64{3, 2, 1}, []int{3, 3, 4}},
		{3, []float64{3, 2, 1}, []int{1, 1, 1}},
		{2, []float64{1}, []int{2}},
		{1, []float64{1}, []int{1}},
	} {
		f, it := l1Schedule(tc.steps)
		if !slices.Equal(f, tc.factors) || !slices.Equal(it, tc.iters) {
			t.Errorf("steps %d: factors %v iters %v, want %v %v", tc.steps, f, it, tc.factors, tc.iters)
		}
	}
}

func TestParseNorm(t *testing.T) {
	for in, want := range map[string]Norm{"linf": Linf, "Linf": Linf, "l2": L2, "L2": L2, "l1": L1} {
		if got, err := ParseNorm(in); err != nil || got != want {
			t.Errorf("ParseNorm(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "l0", "inf", "L3"} {
		if _, err := ParseNorm(in); err == nil {
			t.Errorf("ParseNorm(%q) accepted", in)
		}
	}
	if s := Norm(7).String(); s != "norm(7)" {
		t.Errorf("Norm(7).String() = %q", s)
	}
}

func BenchmarkProjectL1Box(b *testing.B) {
	for _, d := range []int{784, 3072} {
		rng := rand.New(rand.NewPCG(9, uint64(d)))
		x0 := randomBoxRow(rng, d)
		delta := make([]float64, d)
		for j := range delta {
			delta[j] = 0.05 * rng.NormFloat64()
		}
		work := make([]float64, d)
		var ev []l1Event
		b.Run(strconv.Itoa(d), func(b *testing.B) {
			for range b.N {
				copy(work, delta)
				ev = projectL1Box(x0, work, 5, ev)
			}
		})
	}
}
