// Package vec holds the per-row vector helpers that the numeric packages of
// nn share: Argmax, LogSumExp, Softmax and SoftCE over one row of logits.
// They compute in float64 whatever the element type and allocate nothing.
//
// One NaN rule holds for all of them: NaN counts as the largest value, as
// Go's built-in max and torch.argmax have it. So a row with a NaN has NaN
// for its maximum, LogSumExp, every Softmax probability and SoftCE, and
// Argmax returns the index of its first NaN. Infinities are ordinary
// values: the LogSumExp of a row whose maximum is ±Inf is that maximum (−Inf
// for an empty row), and its Softmax is NaN (∞ − ∞).
package vec

import "math"

// Float is the element type of the helpers and of the gorgonia kernels:
// float32 (the models) or float64 (the gradient tests).
type Float interface{ float32 | float64 }

// Argmax is the index of the first largest value of v, a NaN counting as
// larger than any number; 0 for an empty v.
func Argmax[E Float](v []E) int {
	best := 0
	for j := 1; j < len(v); j++ {
		b := v[best]
		if b != b {
			break
		}
		if x := v[j]; x != x || x > b {
			best = j
		}
	}
	return best
}

// LogSumExp is log Σ exp(z), computed as m + log Σ exp(z − m) with m the
// maximum of z, so large logits do not overflow.
func LogSumExp[E Float](z []E) float64 {
	m := math.Inf(-1)
	for _, v := range z {
		m = max(m, float64(v))
	}
	if math.IsInf(m, 0) {
		return m
	}
	var s float64
	for _, v := range z {
		s += math.Exp(float64(v) - m)
	}
	return m + math.Log(s)
}

// Softmax writes softmax(z) into p (len(z) values): exp(z_j − m)/Σ exp(z − m)
// with m the maximum of z, rounded to p's element type.
func Softmax[E, P Float](z []E, p []P) {
	m := math.Inf(-1)
	for _, v := range z {
		m = max(m, float64(v))
	}
	var s float64
	for _, v := range z {
		s += math.Exp(float64(v) - m)
	}
	for j, v := range z {
		p[j] = P(math.Exp(float64(v)-m) / s)
	}
}

// SoftCE is the soft-target cross-entropy −Σ_j t_j·log softmax(z)_j of one
// row, t of len(z); classes with t_j = 0 add no term.
func SoftCE[E Float](z, t []E) float64 {
	lse := LogSumExp(z)
	loss := 0.0
	for j, tj := range t {
		if tj != 0 {
			loss += float64(tj) * (lse - float64(z[j]))
		}
	}
	return loss
}
