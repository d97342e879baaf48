package cuda

import (
	"fmt"
	"math"
)

// The CPU references: plain Go loops that define what each kernel in
// kernels.go computes, element for element. They are the oracle of the
// TestDevice… tests and are themselves tested (ref_test.go) on
// hand-computed cases and against nn/elementwise and nn/optim.

// ReLURef writes x < 0 ? 0 : x into y[:len(x)]: NaN and −0 pass through,
// as in PyTorch and nn/elementwise.ReLU. Kernel: sglr_relu.
func ReLURef(y, x []float32) {
	y = y[:len(x)]
	for i, v := range x {
		if v < 0 {
			v = 0
		}
		y[i] = v
	}
}

// ReLUGradRef writes y > 0 ? g : 0 into dx[:len(y)], y being ReLU's
// output (so NaN y gives 0), as nn/elementwise.ReLUGrad. Kernel:
// sglr_relu_grad.
func ReLUGradRef(dx, y, g []float32) {
	dx, g = dx[:len(y)], g[:len(y)]
	for i, v := range y {
		if v > 0 {
			dx[i] = g[i]
		} else {
			dx[i] = 0
		}
	}
}

// PGDStepRef applies one PGD L∞ step in place: with c = clean[i],
//
//	x' = clip(clip(x + step·sign(g), c−eps, c+eps), 0, 1)
//
// computed as min(max(x + s, max(c−eps, 0)), min(c+eps, 1)) in float64 and
// rounded to float32 once, s being step with the sign bit of g (0 when g is
// ±0; a NaN g steps by its sign bit), NaN when x, c or the bounds are NaN.
// For c in [0, 1] and eps ≥ 0 the two forms are the same. These are the
// semantics of nn/elementwise.SignStep, bit for bit. Kernel: sglr_pgd_step
// (whose min/max may differ from Go's in the sign of a zero result only).
func PGDStepRef(x, g, clean []float32, step, eps float64) {
	g, clean = g[:len(x)], clean[:len(x)]
	for i, v := range x {
		// step with g's sign bit OR-ed in, as the kernel does it
		s := math.Float64frombits(math.Float64bits(step) | uint64(math.Float32bits(g[i])>>31)<<63)
		if g[i] == 0 {
			s = 0
		}
		c := float64(clean[i])
		x[i] = float32(min(max(float64(v)+s, max(c-eps, 0)), min(c+eps, 1)))
	}
}

// SGDOptions are the hyper-parameters of one SGD step, as float32 the way
// nn/optim.SGD rounds them (float32(lr), float32(momentum), …).
type SGDOptions struct {
	LR, Momentum, WeightDecay float32
	Nesterov                  bool
	// First marks the first step of the momentum buffer (PyTorch's
	// momentum_buffer is None): buf = d instead of μ·buf + d.
	First bool
}

// flags are the sglr_sgd_step flags for o.
func (o SGDOptions) flags() uint32 {
	var f uint32
	if o.First {
		f |= sgdFirst
	}
	if o.Nesterov {
		f |= sgdNesterov
	}
	if o.Momentum != 0 {
		f |= sgdMomentum
	}
	return f
}

// SGDStepRef applies one step of SGD with momentum and weight decay in
// place, with PyTorch's semantics (torch.optim.SGD, dampening 0), every
// operation rounded to float32:
//
//	d   = g + wd·w              (d = g when wd is 0)
//	buf = d  if o.First,  else  buf = μ·buf + d
//	d   = d + μ·buf  if o.Nesterov,  else  d = buf
//	w   = w − lr·d
//
// With Momentum 0, buf is neither read nor written (it may be nil) and
// w = w − lr·d. This is nn/optim.SGD.Step for one parameter, bit for bit.
// Kernel: sglr_sgd_step. Lengths must match: buf may be nil only with
// Momentum 0.
func SGDStepRef(w, g, buf []float32, o SGDOptions) {
	if len(g) != len(w) || (o.Momentum != 0 && len(buf) != len(w)) {
		panic(fmt.Sprintf("cuda: SGDStepRef: %d weights, %d gradients, %d buffer values", len(w), len(g), len(buf)))
	}
	for i := range w {
		d := g[i]
		if o.WeightDecay != 0 {
			d = g[i] + float32(o.WeightDecay*w[i])
		}
		if o.Momentum != 0 {
			if o.First {
				buf[i] = d
			} else {
				buf[i] = float32(o.Momentum*buf[i]) + d
			}
			if o.Nesterov {
				d += float32(o.Momentum * buf[i])
			} else {
				d = buf[i]
			}
		}
		w[i] -= float32(o.LR * d)
	}
}
