package elementwise

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The scalar loops below are the definitions the package's functions must
// reproduce bit for bit, whichever path (assembly or Go) they take.

func reluRef(y, x []float32) {
	for i, v := range x {
		if v < 0 {
			v = 0
		}
		y[i] = v
	}
}

func reluGradRef(dx, y, g []float32) {
	for i, v := range y {
		if v > 0 {
			dx[i] = g[i]
		} else {
			dx[i] = 0
		}
	}
}

func signStepRef(x, g, clean []float32, step, eps float64) int {
	first := -1
	for j := range x {
		if g[j] != g[j] && first < 0 {
			first = j
		}
		x[j] = signStepOne(x[j], g[j], clean[j], step, eps)
	}
	return first
}

// specials are values a kernel might get wrong: signed zeros, NaNs of both
// signs, infinities, denormals and tiny steps.
var specials = []float32{
	0, float32(math.Copysign(0, -1)), float32(math.NaN()), -float32(math.NaN()),
	float32(math.Inf(1)), float32(math.Inf(-1)), 1e-45, -1e-45, 1, -1, 0.5,
}

// activations returns n values, normal with about one in eight special.
func activations(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		if r.IntN(8) == 0 {
			v[i] = specials[r.IntN(len(specials))]
		} else {
			v[i] = float32(r.NormFloat64())
		}
	}
	return v
}

// lengths covers empty, shorter than a vector, exact multiples and tails.
var lengths = []int{0, 1, 3, 4, 7, 8, 9, 15, 16, 17, 31, 64, 100, 1027}

func sameBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: [%d] = %v (%#x), want %v (%#x)", what, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
	}
}

func TestReLU(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, n := range lengths {
		x := activations(r, n)
		got, want := make([]float32, n), make([]float32, n)
		ReLU(got, x)
		reluRef(want, x)
		sameBits(t, "ReLU", got, want)
	}
}

func TestReLUGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	for _, n := range lengths {
		y, g := activations(r, n), activations(r, n)
		got, want := make([]float32, n), make([]float32, n)
		ReLUGrad(got, y, g)
		reluGradRef(want, y, g)
		sameBits(t, "ReLUGrad", got, want)
	}
}

func TestSignStep(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	for _, eps := range []float64{0.1, 8.0 / 255, 0.5} {
		step := eps / 4
		for _, n := range lengths {
			clean := make([]float32, n)
			x := make([]float32, n)
			g := activations(r, n)
			for i := range clean {
				// pixels in [0, 1], often on 0 or 1, iterates inside, on and
				// outside the eps-ball.
				switch r.IntN(4) {
				case 0:
					clean[i] = float32(r.IntN(2))
				default:
					clean[i] = r.Float32()
				}
				switch r.IntN(4) {
				case 0:
					x[i] = clean[i] + float32(eps)
				case 1:
					x[i] = clean[i] - float32(eps)
				default:
					x[i] = clean[i] + float32((r.Float64()*2-1)*eps*1.5)
				}
				if r.IntN(16) == 0 {
					g[i] = 0
				}
			}
			got, want := append([]float32(nil), x...), append([]float32(nil), x...)
			gotNaN := SignStep(got, g, clean, step, eps)
			wantNaN := signStepRef(want, g, clean, step, eps)
			sameBits(t, "SignStep", got, want)
			if gotNaN != wantNaN {
				t.Fatalf("SignStep n=%d: first NaN at %d, want %d", n, gotNaN, wantNaN)
			}
		}
	}
}

// TestSignStepProjects holds the definition itself against hand-computed
// cases: the step follows g's sign, is 0 for g = 0, and the result stays in
// the eps-ball and in [0, 1].
func TestSignStepProjects(t *testing.T) {
	for _, c := range []struct {
		x, g, clean, want float32
	}{
		{0.5, 1, 0.5, 0.55},  // up by step
		{0.5, -2, 0.5, 0.45}, // down by step
		{0.5, 0, 0.5, 0.5},   // no gradient, no step
		{0.58, 1, 0.5, 0.6},  // clipped to c + eps
		{0.42, -1, 0.5, 0.4}, // clipped to c − eps
		{0.98, 1, 0.95, 1},   // clipped to 1
		{0.02, -1, 0.05, 0},  // clipped to 0
	} {
		// Eight copies so that the assembly path runs too.
		x := make([]float32, 8)
		g := make([]float32, 8)
		clean := make([]float32, 8)
		for i := range x {
			x[i], g[i], clean[i] = c.x, c.g, c.clean
		}
		if j := SignStep(x, g, clean, 0.05, 0.1); j != -1 {
			t.Fatalf("NaN reported at %d", j)
		}
		for i, v := range x {
			if math.Abs(float64(v-c.want)) > 1e-6 {
				t.Errorf("x=%v g=%v clean=%v: [%d] = %v, want %v", c.x, c.g, c.clean, i, v, c.want)
			}
		}
	}
}

func BenchmarkReLU(b *testing.B) {
	x := activations(rand.New(rand.NewPCG(4, 4)), 64*256)
	y := make([]float32, len(x))
	b.SetBytes(int64(8 * len(x)))
	for b.Loop() {
		ReLU(y, x)
	}
}

func BenchmarkSignStep(b *testing.B) {
	n := 64 * 784
	r := rand.New(rand.NewPCG(5, 5))
	x, g, clean := make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range x {
		clean[i] = r.Float32()
		x[i] = clean[i]
		g[i] = float32(r.NormFloat64())
	}
	b.SetBytes(int64(12 * n))
	for b.Loop() {
		SignStep(x, g, clean, 0.01, 0.1)
	}
}

// TestReLUFloat64 checks the float64 instantiation, which the gradient
// tests' graphs use, on the same specials: it must take the Go loop.
func TestReLUFloat64(t *testing.T) {
	x := make([]float64, 0, 3*len(specials))
	for range 3 {
		for _, v := range specials {
			x = append(x, float64(v))
		}
	}
	y, dx := make([]float64, len(x)), make([]float64, len(x))
	ReLU(y, x)
	ReLUGrad(dx, x, x)
	for i, v := range x {
		want, wantGrad := v, v
		if v < 0 {
			want = 0
		}
		if !(v > 0) {
			wantGrad = 0
		}
		if math.Float64bits(y[i]) != math.Float64bits(want) || math.Float64bits(dx[i]) != math.Float64bits(wantGrad) {
			t.Errorf("x = %v: ReLU %v, ReLUGrad %v; want %v, %v", v, y[i], dx[i], want, wantGrad)
		}
	}
}
