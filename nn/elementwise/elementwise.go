// Package elementwise holds the loops that run over every activation or
// pixel of a batch several times per training step — ReLU, its gradient and
// the projected sign step of PGD and CW — with AVX2 assembly for float32 on
// amd64 and a portable Go loop elsewhere (float64, other architectures, or
// -tags purego).
//
// Both versions give bit-identical results: the scalar loops here are the
// definition, and the tests compare the assembly against them on data with
// NaNs, signed zeros and values on the projection bounds. Written as plain
// Go, these loops branch on the data and mispredict about half the time on
// activations; they took a fifth of an MLP training step's CPU time.
package elementwise

import "math"

// ReLU writes max(x, 0) into y[:len(x)]. NaN stays NaN and −0 stays −0, as
// in PyTorch. float64 (the gradient tests' graphs) takes the Go loop.
func ReLU[E float32 | float64](y, x []E) {
	y = y[:len(x)]
	done := 0
	if useAVX2 && len(x) >= 8 {
		if x32, ok := any(x).([]float32); ok {
			done = len(x) &^ 7
			reluAVX2(&any(y).([]float32)[0], &x32[0], done)
		}
	}
	for i := done; i < len(x); i++ {
		v := x[i]
		if v < 0 {
			v = 0
		}
		y[i] = v
	}
}

// ReLUGrad writes g where y > 0, else 0, into dx[:len(y)]: the gradient of
// ReLU given its output y and the gradient g of its output.
func ReLUGrad[E float32 | float64](dx, y, g []E) {
	dx, g = dx[:len(y)], g[:len(y)]
	done := 0
	if useAVX2 && len(y) >= 8 {
		if y32, ok := any(y).([]float32); ok {
			done = len(y) &^ 7
			reluGradAVX2(&any(dx).([]float32)[0], &y32[0], &any(g).([]float32)[0], done)
		}
	}
	for i := done; i < len(y); i++ {
		if y[i] > 0 {
			dx[i] = g[i]
		} else {
			dx[i] = 0
		}
	}
}

// SignStep applies one signed-gradient step of size step to every value of
// x (g and clean at least as long), projecting onto [c−eps, c+eps] ∩ [0, 1]
// around the clean value c:
//
//	x ← min(max(x + step·sign(g), max(c−eps, 0)), min(c+eps, 1))
//
// computed in float64 and rounded to float32 once; sign(0) is 0. It returns
// the index of the first NaN in g (x is updated anyway, a NaN stepping by
// +step or −step by its sign bit) or −1.
func SignStep(x, g, clean []float32, step, eps float64) int {
	g, clean = g[:len(x)], clean[:len(x)]
	done := 0
	sawNaN := false
	if useAVX2 && len(x) >= 4 {
		done = len(x) &^ 3
		sawNaN = signStepAVX2(&x[0], &g[0], &clean[0], done, step, eps)
	}
	for j := done; j < len(x); j++ {
		gj := g[j]
		sawNaN = sawNaN || gj != gj
		x[j] = signStepOne(x[j], gj, clean[j], step, eps)
	}
	if sawNaN {
		for j, gj := range g {
			if gj != gj {
				return j
			}
		}
	}
	return -1
}

// signStepOne is SignStep for one value, without branches on the data: the
// signed step is step with the sign bit of g (nothing when g is 0), the
// clamps are the min/max builtins.
func signStepOne(v, g, c float32, step, eps float64) float32 {
	s := math.Float64frombits(math.Float64bits(step) | uint64(math.Float32bits(g)>>31)<<63)
	if g == 0 {
		s = 0
	}
	c64 := float64(c)
	return float32(min(max(float64(v)+s, max(c64-eps, 0)), min(c64+eps, 1)))
}
