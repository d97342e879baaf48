package vec

import (
	"math"
	"testing"
)

var (
	nan = float32(math.NaN())
	inf = float32(math.Inf(1))
)

// same reports whether a and b are equal, NaN equal to NaN.
func same(a, b float64) bool { return a == b || (a != a && b != b) }

func TestArgmax(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    []float32
		want int
	}{
		{"empty", nil, 0},
		{"one", []float32{3}, 0},
		{"largest", []float32{1, 5, 2}, 1},
		{"first of ties", []float32{4, 1, 4}, 0},
		{"infinity", []float32{1, inf, 2}, 1},
		{"NaN is largest", []float32{9, nan, 10}, 1},
		{"first NaN", []float32{nan, 2, nan}, 0},
		{"NaN after the maximum", []float32{1, 9, nan}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Argmax(tc.v); got != tc.want {
				t.Errorf("Argmax(%v) = %d, want %d", tc.v, got, tc.want)
			}
		})
	}
}

func TestLogSumExp(t *testing.T) {
	for _, tc := range []struct {
		name string
		z    []float32
		want float64
	}{
		{"empty", nil, math.Inf(-1)},
		{"zeros", []float32{0, 0}, math.Log(2)},
		{"large logits do not overflow", []float32{1000, 1000}, 1000 + math.Log(2)},
		{"all -Inf", []float32{-inf, -inf}, math.Inf(-1)},
		{"+Inf", []float32{1, inf}, math.Inf(1)},
		{"NaN", []float32{1, nan, 2}, math.NaN()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := LogSumExp(tc.z); !same(got, tc.want) && math.Abs(got-tc.want) > 1e-12 {
				t.Errorf("LogSumExp(%v) = %v, want %v", tc.z, got, tc.want)
			}
		})
	}
}

func TestSoftmax(t *testing.T) {
	for _, tc := range []struct {
		name string
		z    []float32
		want []float64
	}{
		{"uniform", []float32{2, 2}, []float64{0.5, 0.5}},
		{"large logits do not overflow", []float32{1000, 1001}, []float64{1 / (1 + math.E), math.E / (1 + math.E)}},
		{"NaN row", []float32{1, nan}, []float64{math.NaN(), math.NaN()}},
		{"+Inf row", []float32{1, inf}, []float64{math.NaN(), math.NaN()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p32 := make([]float32, len(tc.z))
			p64 := make([]float64, len(tc.z))
			Softmax(tc.z, p32)
			Softmax(tc.z, p64)
			for j, w := range tc.want {
				if !same(p64[j], w) && math.Abs(p64[j]-w) > 1e-6 {
					t.Errorf("p[%d] = %v, want %v", j, p64[j], w)
				}
				if !same(float64(p32[j]), float64(float32(p64[j]))) {
					t.Errorf("float32 p[%d] = %v, float64 %v rounds to %v", j, p32[j], p64[j], float32(p64[j]))
				}
			}
		})
	}
}

func TestSoftCE(t *testing.T) {
	for _, tc := range []struct {
		name string
		z, t []float32
		want float64
	}{
		{"one-hot", []float32{0, 0}, []float32{1, 0}, math.Log(2)},
		{"soft", []float32{0, float32(math.Log(3))}, []float32{0.5, 0.5}, 0.5*math.Log(4) + 0.5*math.Log(4.0/3)},
		{"zero targets add nothing", []float32{0, 0}, []float32{0, 0}, 0},
		{"NaN logit", []float32{nan, 0}, []float32{0, 1}, math.NaN()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := SoftCE(tc.z, tc.t); !same(got, tc.want) && math.Abs(got-tc.want) > 1e-6 {
				t.Errorf("SoftCE(%v, %v) = %v, want %v", tc.z, tc.t, got, tc.want)
			}
		})
	}
}
