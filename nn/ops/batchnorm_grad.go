package ops

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	"github.com/sglr-pipe/sglr-pipe/nn/internal/vec"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// bnStatOp copies the batch mean (or, with variance, the biased batch
// variance) of its forward op's last run into a [C] output. Its input is
// the forward op's output, so that it runs after it. It has no gradient.
type bnStatOp struct {
	pureGoOp
	fwd      *batchNormOp
	variance bool
	output   reusedOutput
}

// Arity is 1: the forward op's output.
func (op *bnStatOp) Arity() int { return 1 }

// Type is Tensor-4 a → Tensor-1 a.
func (op *bnStatOp) Type() hm.Type { return tensorFnType(4, 1) }

// InferShape is [C].
func (op *bnStatOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if err := checkInputShapes(op, in, op.fwd.shape); err != nil {
		return nil, err
	}
	return tensor.Shape{op.fwd.shape[1]}, nil
}

// Do copies the statistic into the op's own output.
func (op *bnStatOp) Do(in ...G.Value) (G.Value, error) {
	if err := checkArity(op, in, 1); err != nil {
		return nil, err
	}
	y, err := floatDense(op, in, 0)
	if err != nil {
		return nil, err
	}
	return op.UsePreallocDo(op.output.get(y.Dtype(), op.fwd.channels...), y)
}

// UsePreallocDo copies the statistic into prealloc ([C]).
func (op *bnStatOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	if err := checkArity(op, in, 1); err != nil {
		return nil, err
	}
	y, err := floatDense(op, in, 0)
	if err != nil {
		return nil, err
	}
	c := op.fwd.shape[1]
	if len(op.fwd.mean) != c {
		return nil, fmt.Errorf("%v: the forward op has not run", op)
	}
	out, err := writableOutput(op, prealloc, y.Dtype(), op.fwd.channels...)
	if err != nil {
		return nil, err
	}
	src := op.fwd.mean
	if op.variance {
		src = op.fwd.variance
	}
	if y.Dtype() == tensor.Float32 {
		copyNarrowed(out.Float32s(), src)
	} else {
		copy(out.Float64s(), src)
	}
	return out, nil
}

// DiffWRT: the statistic is a constant of the backward pass.
func (op *bnStatOp) DiffWRT(inputs int) []bool { return []bool{false} }

// SymDiff returns no gradient.
func (op *bnStatOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	return make(G.Nodes, len(inputs)), nil
}

// WriteHash identifies the op and its forward op for gorgonia's node
// deduplication.
func (op *bnStatOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "%v of %p", op, op.fwd) }

// Hashcode is the FNV hash of WriteHash.
func (op *bnStatOp) Hashcode() uint32 { return opHash(op) }

// String names the op in graph dumps and errors.
func (op *bnStatOp) String() string {
	if op.variance {
		return fmt.Sprintf("BatchVariance(%v)", op.fwd)
	}
	return fmt.Sprintf("BatchMean(%v)", op.fwd)
}

// bnParamGradOp computes [dγ; dβ] ([2,C]) of its forward op from the
// output gradient g and x (and the output y, whose sign masks g when the
// ReLU is fused).
type bnParamGradOp struct {
	pureGoOp
	fwd    *batchNormOp
	output reusedOutput
}

// Arity is 2 (g, x), 3 with the fused ReLU (and y).
func (op *bnParamGradOp) Arity() int {
	if op.fwd.relu {
		return 3
	}
	return 2
}

// Type is Tensor-4 a → Tensor-4 a (→ Tensor-4 a) → Tensor-2 a.
func (op *bnParamGradOp) Type() hm.Type {
	if op.fwd.relu {
		return tensorFnType(4, 4, 4, 2)
	}
	return tensorFnType(4, 4, 2)
}

// InferShape is [2,C].
func (op *bnParamGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s := op.fwd.shape
	if err := checkInputShapes(op, in, []tensor.Shape{s, s, s}[:op.Arity()]...); err != nil {
		return nil, err
	}
	return tensor.Shape{2, s[1]}, nil
}

// Do computes the gradients into the op's own output.
func (op *bnParamGradOp) Do(in ...G.Value) (G.Value, error) {
	if err := checkArity(op, in, op.Arity()); err != nil {
		return nil, err
	}
	g, err := floatDense(op, in, 0)
	if err != nil {
		return nil, err
	}
	return op.UsePreallocDo(op.output.get(g.Dtype(), op.fwd.pair...), in...)
}

// UsePreallocDo computes the gradients into prealloc ([2,C]).
func (op *bnParamGradOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	ts, err := op.fwd.gradInputs(op, in, op.Arity())
	if err != nil {
		return nil, err
	}
	g, x, y := ts[0], ts[1], ts[2]
	s := op.fwd.shape
	out, err := writableOutput(op, prealloc, g.Dtype(), op.fwd.pair...)
	if err != nil {
		return nil, err
	}
	n, c, hw := s[0], s[1], s[2]*s[3]
	if g.Dtype() == tensor.Float32 {
		if y != nil {
			maskedParamGradKernel32(out.Float32s(), g.Float32s(), x.Float32s(), y.Float32s(), n, c, hw, op.fwd.mean, op.fwd.invStd)
		} else {
			paramGradKernel(out.Float32s(), g.Float32s(), x.Float32s(), nil, n, c, hw, op.fwd.mean, op.fwd.invStd)
		}
	} else {
		paramGradKernel(out.Float64s(), g.Float64s(), x.Float64s(), float64sOrNil(y), n, c, hw, op.fwd.mean, op.fwd.invStd)
	}
	return out, nil
}

// WriteHash identifies the op and its forward op for gorgonia's node
// deduplication.
func (op *bnParamGradOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "%v of %p", op, op.fwd) }

// Hashcode is the FNV hash of WriteHash.
func (op *bnParamGradOp) Hashcode() uint32 { return opHash(op) }

// String names the op in graph dumps and errors.
func (op *bnParamGradOp) String() string { return fmt.Sprintf("ParamGrad(%v)", op.fwd) }

// bnPickOp is row 0 (dγ) or 1 (dβ) of a bnParamGradOp's [2,C] output.
type bnPickOp struct {
	pureGoOp
	fwd    *batchNormOp
	row    int
	output reusedOutput
}

// Arity is 1: the [2,C] gradients.
func (op *bnPickOp) Arity() int { return 1 }

// Type is Tensor-2 a → Tensor-1 a.
func (op *bnPickOp) Type() hm.Type { return tensorFnType(2, 1) }

// InferShape is [C].
func (op *bnPickOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	c := op.fwd.shape[1]
	if err := checkInputShapes(op, in, tensor.Shape{2, c}); err != nil {
		return nil, err
	}
	return tensor.Shape{c}, nil
}

// Do copies the row into the op's own output.
func (op *bnPickOp) Do(in ...G.Value) (G.Value, error) {
	if err := checkArity(op, in, 1); err != nil {
		return nil, err
	}
	pg, err := floatDense(op, in, 0)
	if err != nil {
		return nil, err
	}
	return op.UsePreallocDo(op.output.get(pg.Dtype(), op.fwd.channels...), pg)
}

// UsePreallocDo copies the row into prealloc ([C]).
func (op *bnPickOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	if err := checkArity(op, in, 1); err != nil {
		return nil, err
	}
	c := op.fwd.shape[1]
	pg, err := floatDenseLike(op, in, 0, in[0].Dtype(), op.fwd.pair)
	if err != nil {
		return nil, err
	}
	out, err := writableOutput(op, prealloc, pg.Dtype(), op.fwd.channels...)
	if err != nil {
		return nil, err
	}
	if pg.Dtype() == tensor.Float32 {
		copy(out.Float32s(), pg.Float32s()[op.row*c:])
	} else {
		copy(out.Float64s(), pg.Float64s()[op.row*c:])
	}
	return out, nil
}

// WriteHash identifies the op and its forward op for gorgonia's node
// deduplication.
func (op *bnPickOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "%v of %p", op, op.fwd) }

// Hashcode is the FNV hash of WriteHash.
func (op *bnPickOp) Hashcode() uint32 { return opHash(op) }

// String names the op in graph dumps and errors.
func (op *bnPickOp) String() string {
	return fmt.Sprintf("%s(%v)", []string{"GammaGrad", "BetaGrad"}[op.row], op.fwd)
}

// bnInputGradOp computes dx of its forward op. Its inputs are the output
// gradient g and γ, then, in train mode, x and the [2,C] parameter
// gradients (the per-channel sums of the closed form), then, with the fused
// ReLU, the output y.
type bnInputGradOp struct {
	pureGoOp
	fwd    *batchNormOp
	output reusedOutput
	// coef holds three per-channel coefficients of the run (see
	// inputGradKernel).
	coef []float64
}

// Arity is 2 (g, γ), plus 2 in train mode (x, [dγ;dβ]), plus 1 with the
// fused ReLU (y).
func (op *bnInputGradOp) Arity() int {
	n := 2
	if op.fwd.train {
		n += 2
	}
	if op.fwd.relu {
		n++
	}
	return n
}

// Type lists the inputs of Arity, to Tensor-4 a.
func (op *bnInputGradOp) Type() hm.Type {
	dims := []int{4, 1}
	if op.fwd.train {
		dims = append(dims, 4, 2)
	}
	if op.fwd.relu {
		dims = append(dims, 4)
	}
	return tensorFnType(append(dims, 4)...)
}

// InferShape is x's shape.
func (op *bnInputGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s := op.fwd.shape
	want := []tensor.Shape{s, {s[1]}}
	if op.fwd.train {
		want = append(want, s, tensor.Shape{2, s[1]})
	}
	if op.fwd.relu {
		want = append(want, s)
	}
	if err := checkInputShapes(op, in, want...); err != nil {
		return nil, err
	}
	return s.Clone(), nil
}

// Do computes dx into the op's own output.
func (op *bnInputGradOp) Do(in ...G.Value) (G.Value, error) {
	if err := checkArity(op, in, op.Arity()); err != nil {
		return nil, err
	}
	g, err := floatDense(op, in, 0)
	if err != nil {
		return nil, err
	}
	return op.UsePreallocDo(op.output.get(g.Dtype(), op.fwd.shape...), in...)
}

// UsePreallocDo computes dx into prealloc (x's shape).
func (op *bnInputGradOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	if err := checkArity(op, in, op.Arity()); err != nil {
		return nil, err
	}
	g, err := floatDenseLike(op, in, 0, in[0].Dtype(), op.fwd.shape)
	if err != nil {
		return nil, err
	}
	dt, s := g.Dtype(), op.fwd.shape
	n, c, hw := s[0], s[1], s[2]*s[3]
	if len(op.fwd.mean) != c {
		return nil, fmt.Errorf("%v: the forward op has not run", op)
	}
	gamma, err := floatDenseLike(op, in, 1, dt, op.fwd.channels)
	if err != nil {
		return nil, err
	}
	var x, pg, y *tensor.Dense
	next := 2
	if op.fwd.train {
		if x, err = floatDenseLike(op, in, 2, dt, s); err != nil {
			return nil, err
		}
		if pg, err = floatDenseLike(op, in, 3, dt, op.fwd.pair); err != nil {
			return nil, err
		}
		next = 4
	}
	if op.fwd.relu {
		if y, err = floatDenseLike(op, in, next, dt, s); err != nil {
			return nil, err
		}
	}
	dx, err := writableOutput(op, prealloc, dt, s...)
	if err != nil {
		return nil, err
	}
	if len(op.coef) != 3*c {
		op.coef = make([]float64, 3*c)
	}
	if dt == tensor.Float32 {
		inputGradCoefficients(op, gamma.Float32s(), float32sOrNil(pg), n*hw)
		if y != nil {
			maskedInputGradKernel32(dx.Float32s(), g.Float32s(), float32sOrNil(x), y.Float32s(), n, c, hw, op.fwd.mean, op.coef)
		} else {
			inputGradKernel(dx.Float32s(), g.Float32s(), float32sOrNil(x), nil, n, c, hw, op.fwd.mean, op.coef)
		}
	} else {
		inputGradCoefficients(op, gamma.Float64s(), float64sOrNil(pg), n*hw)
		inputGradKernel(dx.Float64s(), g.Float64s(), float64sOrNil(x), float64sOrNil(y), n, c, hw, op.fwd.mean, op.coef)
	}
	return dx, nil
}

// inputGradCoefficients fills op.coef with, per channel, a = γ·σ⁻¹,
// k = −a·σ⁻¹·dγ/M and b = −a·dβ/M (k = b = 0 in eval mode, pg nil), so that
// dx = a·g + k·(x − μ) + b.
func inputGradCoefficients[E vec.Float](op *bnInputGradOp, gamma, pg []E, count int) {
	c := op.fwd.shape[1]
	m := float64(count)
	for ch := range c {
		a := float64(gamma[ch]) * op.fwd.invStd[ch]
		op.coef[3*ch] = a
		op.coef[3*ch+1], op.coef[3*ch+2] = 0, 0
		if pg != nil {
			op.coef[3*ch+1] = -a * op.fwd.invStd[ch] * float64(pg[ch]) / m
			op.coef[3*ch+2] = -a * float64(pg[c+ch]) / m
		}
	}
}

// WriteHash identifies the op and its forward op for gorgonia's node
// deduplication.
func (op *bnInputGradOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "%v of %p", op, op.fwd) }

// Hashcode is the FNV hash of WriteHash.
func (op *bnInputGradOp) Hashcode() uint32 { return opHash(op) }

// String names the op in graph dumps and errors.
func (op *bnInputGradOp) String() string { return fmt.Sprintf("InputGrad(%v)", op.fwd) }

// gradInputs checks the inputs of bnParamGradOp: g and x of the forward
// op's shape and, with the fused ReLU, y; it returns g, x and y (nil
// without the ReLU).
func (op *batchNormOp) gradInputs(grad G.Op, in []G.Value, arity int) ([3]*tensor.Dense, error) {
	var ts [3]*tensor.Dense
	if err := checkArity(grad, in, arity); err != nil {
		return ts, err
	}
	if len(op.mean) != op.shape[1] {
		return ts, fmt.Errorf("%v: the forward op has not run", grad)
	}
	g, err := floatDenseLike(grad, in, 0, in[0].Dtype(), op.shape)
	if err != nil {
		return ts, err
	}
	ts[0] = g
	for i := 1; i < arity; i++ {
		if ts[i], err = floatDenseLike(grad, in, i, g.Dtype(), op.shape); err != nil {
			return ts, err
		}
	}
	return ts, nil
}
