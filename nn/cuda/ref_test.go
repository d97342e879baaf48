package cuda

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/nn/elementwise"
	"github.com/sglr-pipe/sglr-pipe/nn/model"
	"github.com/sglr-pipe/sglr-pipe/nn/optim"
)

var (
	negZero = float32(math.Copysign(0, -1))
	nan32   = float32(math.NaN())
	inf32   = float32(math.Inf(1))
)

// same is bit-identity, except that any two NaNs are the same.
func same(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b) || (a != a && b != b)
}

// specials are values a kernel might get wrong.
var specials = []float32{0, negZero, nan32, -nan32, inf32, -inf32, 1e-45, -1e-45, 1, -1, 0.5, 8.0 / 255}

// values returns n values, normal with about one in six special.
func values(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		if r.IntN(6) == 0 {
			v[i] = specials[r.IntN(len(specials))]
		} else {
			v[i] = float32(r.NormFloat64())
		}
	}
	return v
}

// pixels returns n values in [0, 1], some exactly on 0 or 1.
func pixels(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		switch r.IntN(8) {
		case 0:
			v[i] = 0
		case 1:
			v[i] = 1
		default:
			v[i] = r.Float32()
		}
	}
	return v
}

func TestReLURefHand(t *testing.T) {
	x := []float32{-2, -0.5, negZero, 0, 0.25, 3, nan32, -inf32, inf32}
	want := []float32{0, 0, negZero, 0, 0.25, 3, nan32, 0, inf32}
	y := make([]float32, len(x))
	ReLURef(y, x)
	for i := range want {
		if !same(y[i], want[i]) {
			t.Errorf("ReLURef(%v) = %v, want %v", x[i], y[i], want[i])
		}
	}
	// y > 0 passes g; y of 0, −0, NaN or < 0 gives +0.
	yy := []float32{1, 0, negZero, nan32, -1, inf32}
	g := []float32{5, 5, 5, 5, 5, -7}
	wantG := []float32{5, 0, 0, 0, 0, -7}
	dx := make([]float32, len(yy))
	ReLUGradRef(dx, yy, g)
	for i := range wantG {
		if !same(dx[i], wantG[i]) {
			t.Errorf("ReLUGradRef(y=%v, g=%v) = %v, want %v", yy[i], g[i], dx[i], wantG[i])
		}
	}
}

func TestReLURefMatchesElementwise(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 7, 8, 33, 1000} {
		x, g := values(r, n), values(r, n)
		want, got := make([]float32, n), make([]float32, n)
		elementwise.ReLU(want, x)
		ReLURef(got, x)
		for i := range want {
			if !same(got[i], want[i]) {
				t.Fatalf("n=%d: ReLURef(%v) = %v, elementwise.ReLU %v", n, x[i], got[i], want[i])
			}
		}
		elementwise.ReLUGrad(want, x, g)
		ReLUGradRef(got, x, g)
		for i := range want {
			if !same(got[i], want[i]) {
				t.Fatalf("n=%d: ReLUGradRef(%v, %v) = %v, elementwise.ReLUGrad %v", n, x[i], g[i], got[i], want[i])
			}
		}
	}
}

func TestPGDStepRefHand(t *testing.T) {
	const step, eps = 0.25, 0.5
	cases := []struct{ x, g, c, want float32 }{
		{0.5, 1, 0.5, 0.75},      // plain step up
		{0.5, -3, 0.5, 0.25},     // down
		{0.5, 0, 0.5, 0.5},       // g = 0: no step
		{0.5, negZero, 0.5, 0.5}, // g = −0: no step
		{0.9, 1, 0.5, 1},         // clipped to the ball's top 1.0 (= c+eps)
		{0.9, 1, 0.8, 1},         // clipped to [0,1] before the ball's top 1.3
		{0.1, -1, 0.2, 0},        // clipped to 0 before the ball's bottom −0.3
		{0.3, -1, 0.8, 0.3},      // the ball's bottom 0.3
		{2, 1, 0.25, 0.75},       // an x outside the ball comes back to it
		{0.5, nan32, 0.5, 0.75},  // NaN g with the sign bit clear steps up
		{0.5, -nan32, 0.5, 0.25}, // NaN g with the sign bit set steps down
		{nan32, 1, 0.5, nan32},   // NaN x stays NaN
		{0.5, 1, nan32, nan32},   // NaN clean value: NaN
		{0.5, inf32, 0.5, 0.75},  // infinite g is a sign
		{negZero, -1, 0, 0},      // lower bound 0 is +0
	}
	for _, c := range cases {
		x := []float32{c.x}
		PGDStepRef(x, []float32{c.g}, []float32{c.c}, step, eps)
		if !same(x[0], c.want) {
			t.Errorf("PGDStepRef(x=%v, g=%v, c=%v) = %v, want %v", c.x, c.g, c.c, x[0], c.want)
		}
	}
}

// TestPGDStepRefMatchesElementwise: bit for bit elementwise.SignStep on
// pixel data, steps of 2/255 in an 8/255 ball, gradients with specials;
// and, for clean values in [0,1], the issue's form
// clip(clip(x + α·sign(g), x0−ε, x0+ε), 0, 1).
func TestPGDStepRefMatchesElementwise(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 3, 4, 5, 64, 1027} {
		for _, se := range [][2]float64{{2.0 / 255, 8.0 / 255}, {0.01, 0.03}, {0, 0.1}, {0.1, 0}} {
			step, eps := se[0], se[1]
			clean, g := pixels(r, n), values(r, n)
			x := make([]float32, n)
			for i := range x { // start inside, on and outside the ball
				x[i] = clean[i] + float32((r.Float64()*3-1.5)*eps)
			}
			want := append([]float32(nil), x...)
			got := append([]float32(nil), x...)
			elementwise.SignStep(want, g, clean, step, eps)
			PGDStepRef(got, g, clean, step, eps)
			for i := range want {
				if !same(got[i], want[i]) {
					t.Fatalf("n=%d step=%v eps=%v: PGDStepRef(x=%v, g=%v, c=%v) = %v, elementwise.SignStep %v",
						n, step, eps, x[i], g[i], clean[i], got[i], want[i])
				}
				if g[i] != g[i] {
					continue
				}
				sign := 0.0
				if g[i] > 0 {
					sign = 1
				} else if g[i] < 0 {
					sign = -1
				}
				c := float64(clean[i])
				issue := float32(min(max(min(max(float64(x[i])+step*sign, c-eps), c+eps), 0), 1))
				if got[i] != issue {
					t.Fatalf("PGDStepRef(x=%v, g=%v, c=%v) = %v, issue's clip(clip(…)) form %v", x[i], g[i], clean[i], got[i], issue)
				}
			}
		}
	}
}

func TestSGDStepRefHand(t *testing.T) {
	// lr 0.5, momentum 0.5, wd 0.25; w = 2, g = 1: d = 1 + 0.5 = 1.5.
	w, buf := []float32{2}, []float32{99}
	o := SGDOptions{LR: 0.5, Momentum: 0.5, WeightDecay: 0.25, First: true}
	SGDStepRef(w, []float32{1}, buf, o)
	if buf[0] != 1.5 || w[0] != 1.25 { // buf = d; w = 2 − 0.75
		t.Fatalf("first step: w=%v buf=%v, want 1.25 1.5", w[0], buf[0])
	}
	o.First = false // d = 1 + 0.3125 = 1.3125; buf = 0.75 + 1.3125 = 2.0625; w = 1.25 − 1.03125
	SGDStepRef(w, []float32{1}, buf, o)
	if buf[0] != 2.0625 || w[0] != 0.21875 {
		t.Fatalf("second step: w=%v buf=%v, want 0.21875 2.0625", w[0], buf[0])
	}
	// Nesterov: d = 1 (wd 0), buf = 0.5·2 + 1 = 2, d = 1 + 0.5·2 = 2, w = 0 − 1.
	w, buf = []float32{0}, []float32{2}
	SGDStepRef(w, []float32{1}, buf, SGDOptions{LR: 0.5, Momentum: 0.5, Nesterov: true})
	if buf[0] != 2 || w[0] != -1 {
		t.Fatalf("nesterov: w=%v buf=%v, want -1 2", w[0], buf[0])
	}
	// Momentum 0: no buffer, w = 1 − 0.5·(1 + 0.25).
	w = []float32{1}
	SGDStepRef(w, []float32{1}, nil, SGDOptions{LR: 0.5, WeightDecay: 0.25})
	if w[0] != 0.375 {
		t.Fatalf("plain: w=%v, want 0.375", w[0])
	}
	// wd 0 leaves d = g exactly: −0 stays −0 (g + 0·w would make it +0).
	w = []float32{inf32}
	SGDStepRef(w, []float32{negZero}, nil, SGDOptions{LR: 1})
	if w[0] != inf32 {
		t.Fatalf("wd 0 with w=+Inf: w=%v, want +Inf (no 0·Inf NaN)", w[0])
	}
}

// TestSGDStepRefMatchesOptim: five steps of nn/optim.SGD and of
// SGDStepRef (First on the first) agree bit for bit, for each of the
// optimiser's modes.
func TestSGDStepRefMatchesOptim(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, mode := range []struct {
		mom, wd  float64
		nesterov bool
	}{{0.9, 5e-4, false}, {0.9, 5e-4, true}, {0, 5e-4, false}, {0.9, 0, false}, {0, 0, false}, {0.5, 0.1, true}} {
		n := 257
		p := &model.Param{Name: "w", Shape: []int{n}, Data: values(r, n)}
		for i := range p.Data {
			if p.Data[i] != p.Data[i] || math.IsInf(float64(p.Data[i]), 0) {
				p.Data[i] = 0.5 // keep the weights finite so later steps mean something
			}
		}
		w := append([]float32(nil), p.Data...)
		var buf []float32
		if mode.mom != 0 {
			buf = make([]float32, n)
		}
		opt := optim.NewSGD([]*model.Param{p}, mode.mom, mode.wd, mode.nesterov)
		for step := range 5 {
			g := values(r, n)
			lr := 0.1 / float64(step+1)
			opt.Step([]*model.Param{p}, [][]float32{g}, lr)
			SGDStepRef(w, g, buf, SGDOptions{LR: float32(lr), Momentum: float32(mode.mom), WeightDecay: float32(mode.wd),
				Nesterov: mode.nesterov, First: step == 0})
			for i := range w {
				if !same(w[i], p.Data[i]) {
					t.Fatalf("%+v step %d: w[%d] = %v, optim.SGD %v", mode, step, i, w[i], p.Data[i])
				}
			}
			if mode.mom != 0 {
				st := opt.State()[0]
				for i := range buf {
					if !same(buf[i], st[i]) {
						t.Fatalf("%+v step %d: buf[%d] = %v, optim.SGD %v", mode, step, i, buf[i], st[i])
					}
				}
			}
		}
	}
}

func TestSGDOptionsFlags(t *testing.T) {
	for _, c := range []struct {
		o    SGDOptions
		want uint32
	}{
		{SGDOptions{}, 0},
		{SGDOptions{Momentum: 0.9}, sgdMomentum},
		{SGDOptions{Momentum: 0.9, First: true, Nesterov: true}, sgdMomentum | sgdFirst | sgdNesterov},
	} {
		if got := c.o.flags(); got != c.want {
			t.Errorf("%+v.flags() = %b, want %b", c.o, got, c.want)
		}
	}
}
