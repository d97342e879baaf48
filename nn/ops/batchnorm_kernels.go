package ops

import (
	"math"

	"github.com/sglr-pipe/sglr-pipe/nn/internal/vec"
	"gorgonia.org/tensor"
)

// batchMoments writes the mean and biased variance of each channel of x
// [n,c,hw] into mean and variance, accumulating in float64 around the
// channel's first value (so that a large mean does not cancel the
// variance).
func batchMoments[E vec.Float](x []E, n, c, hw int, mean, variance []float64) {
	count := float64(n * hw)
	for ch := range c {
		shift := float64(x[ch*hw])
		var s, ss float64
		for b := range n {
			for _, v := range x[(b*c+ch)*hw : (b*c+ch+1)*hw] {
				d := float64(v) - shift
				s += d
				ss += d * d
			}
		}
		m := s / count
		mean[ch] = shift + m
		variance[ch] = max(ss/count-m*m, 0)
	}
}

// affineChannels writes x·scale + shift per channel (then max(·, 0) when
// relu is set) into y, x [n,c,hw].
func affineChannels[E vec.Float](y, x []E, n, c, hw int, scale, shift []float64, relu bool) {
	for b := range n {
		for ch := range c {
			a, s := E(scale[ch]), E(shift[ch])
			off := (b*c + ch) * hw
			ys, xs := y[off:off+hw], x[off:off+hw]
			if relu {
				for i, v := range xs {
					ys[i] = max(v*a+s, 0)
				}
			} else {
				for i, v := range xs {
					ys[i] = v*a + s
				}
			}
		}
	}
}

// paramGradKernel writes dγ = Σ g·x̂ (row 0) and dβ = Σ g (row 1) per
// channel into out [2,c], with g masked by [y > 0] when y is not nil.
func paramGradKernel[E vec.Float](out, g, x, y []E, n, c, hw int, mean, invStd []float64) {
	for ch := range c {
		m := E(mean[ch])
		var sg, sgx float64
		for b := range n {
			off := (b*c + ch) * hw
			gs, xs := g[off:off+hw], x[off:off+hw]
			if y != nil {
				ys := y[off : off+hw]
				for i, v := range gs {
					if ys[i] > 0 {
						sg += float64(v)
						sgx += float64(v * (xs[i] - m))
					}
				}
			} else {
				for i, v := range gs {
					sg += float64(v)
					sgx += float64(v * (xs[i] - m))
				}
			}
		}
		out[ch] = E(sgx * invStd[ch])
		out[c+ch] = E(sg)
	}
}

// inputGradKernel writes dx = a·g + k·(x − μ) + b per channel (coef holds
// a, k, b per channel; x may be nil when every k is 0), g masked by [y > 0]
// when y is not nil.
func inputGradKernel[E vec.Float](dx, g, x, y []E, n, c, hw int, mean, coef []float64) {
	for b := range n {
		for ch := range c {
			a, k, bias, m := E(coef[3*ch]), E(coef[3*ch+1]), E(coef[3*ch+2]), E(mean[ch])
			off := (b*c + ch) * hw
			ds, gs := dx[off:off+hw], g[off:off+hw]
			switch {
			case x == nil && y == nil:
				for i, v := range gs {
					ds[i] = a * v
				}
			case x == nil:
				ys := y[off : off+hw]
				for i, v := range gs {
					if ys[i] > 0 {
						ds[i] = a * v
					} else {
						ds[i] = 0
					}
				}
			case y == nil:
				xs := x[off : off+hw]
				for i, v := range gs {
					ds[i] = a*v + k*(xs[i]-m) + bias
				}
			default:
				xs, ys := x[off:off+hw], y[off:off+hw]
				for i, v := range gs {
					if ys[i] <= 0 {
						v = 0
					}
					ds[i] = a*v + k*(xs[i]-m) + bias
				}
			}
		}
	}
}

// maskedInputGradKernel32 is inputGradKernel for float32 with a ReLU
// output y (not nil): the mask [y > 0] is applied with bit operations
// (keepWherePositive32) instead of a branch, which a ReLU's random signs
// would mispredict half the time.
func maskedInputGradKernel32(dx, g, x, y []float32, n, c, hw int, mean, coef []float64) {
	for b := range n {
		for ch := range c {
			a, k, bias, m := float32(coef[3*ch]), float32(coef[3*ch+1]), float32(coef[3*ch+2]), float32(mean[ch])
			off := (b*c + ch) * hw
			ds, gs, ys := dx[off:off+hw], g[off:off+hw], y[off:off+hw]
			ys = ys[:len(gs)]
			if x == nil {
				ds = ds[:len(gs)]
				for i, v := range gs {
					ds[i] = a * keepWherePositive32(v, ys[i])
				}
				continue
			}
			xs := x[off : off+hw]
			ds, xs = ds[:len(gs)], xs[:len(gs)]
			for i, v := range gs {
				ds[i] = a*keepWherePositive32(v, ys[i]) + k*(xs[i]-m) + bias
			}
		}
	}
}

// maskedParamGradKernel32 is paramGradKernel for float32 with a ReLU
// output y (not nil), masking without branches as maskedInputGradKernel32.
func maskedParamGradKernel32(out, g, x, y []float32, n, c, hw int, mean, invStd []float64) {
	for ch := range c {
		m := float32(mean[ch])
		var sg, sgx float64
		for b := range n {
			off := (b*c + ch) * hw
			gs, xs, ys := g[off:off+hw], x[off:off+hw], y[off:off+hw]
			xs, ys = xs[:len(gs)], ys[:len(gs)]
			for i, v := range gs {
				v = keepWherePositive32(v, ys[i])
				sg += float64(v)
				sgx += float64(v * (xs[i] - m))
			}
		}
		out[ch] = float32(sgx * invStd[ch])
		out[c+ch] = float32(sg)
	}
}

// keepWherePositive32 is v when y > 0 and 0 otherwise (y zero, negative
// or NaN), computed on the bit patterns: y > 0 exactly when its bits minus
// one fall below those of +Inf, and the compiler turns the select of the
// all-ones mask into a conditional move.
func keepWherePositive32(v, y float32) float32 {
	mask := uint32(0)
	if math.Float32bits(y)-1 < 0x7f800000 {
		mask = ^uint32(0)
	}
	return math.Float32frombits(math.Float32bits(v) & mask)
}

// copyWidened copies float32 values into float64 ones.
func copyWidened(dst []float64, src []float32) {
	for i, v := range src[:len(dst)] {
		dst[i] = float64(v)
	}
}

// copyNarrowed copies float64 values into float32 ones.
func copyNarrowed(dst []float32, src []float64) {
	for i, v := range src[:len(dst)] {
		dst[i] = float32(v)
	}
}

// float32sOrNil is t's backing slice, nil for a nil t.
func float32sOrNil(t *tensor.Dense) []float32 {
	if t == nil {
		return nil
	}
	return t.Float32s()
}

// float64sOrNil is t's backing slice, nil for a nil t.
func float64sOrNil(t *tensor.Dense) []float64 {
	if t == nil {
		return nil
	}
	return t.Float64s()
}
