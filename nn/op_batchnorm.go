package nn

import (
	"fmt"
	"hash"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// This file holds torch.nn.BatchNorm2d(eps=1e-5), optionally fused with the
// ReLU after it, as one custom gorgonia op, replacing the composition of
// Sum, BroadcastSub, Square, Sqrt, HadamardDiv and broadcast ops (about
// twenty nodes per layer, each allocating its output on every pass).
//
// Train mode normalises with the biased batch statistics, as PyTorch does;
// the gradient flows through them by the closed form
//
//	dx = γ·σ⁻¹·(g − Σg/M − x̂·Σ(g·x̂)/M),  dγ = Σ g·x̂,  dβ = Σ g
//
// (sums per channel over the M = N·H·W values, x̂ = (x−μ)·σ⁻¹, g masked by
// [y > 0] when the ReLU is fused). Eval mode uses the running statistics,
// inputs of the op that are not differentiated: dx = γ·σ⁻¹·g.
//
// The forward op keeps μ, σ⁻¹ and the biased variance per channel (float64)
// for its gradient ops and for the running-statistics update, which reads
// them through two small nodes (bnStatOp) so that Net.updateRunningStats
// keeps reading graph values. x̂ is recomputed from x in the backward pass
// rather than stored: that saves one activation-sized buffer per layer,
// which is what decides whether PreAct-ResNet18 fits at batch 128.

// batchNormForward adds BatchNorm2d (followed by a ReLU when relu is set)
// on x [N,C,H,W] to x's graph. gamma and beta are [C]. In train mode it
// also returns the batch mean and biased variance nodes ([C]);
// runMean and runVar ([C]) are read in eval mode only.
func batchNormForward(x, gamma, beta, runMean, runVar *G.Node, train, relu bool) (y, mean, variance *G.Node, err error) {
	s := x.Shape()
	if s.Dims() != 4 {
		return nil, nil, nil, fmt.Errorf("batch norm: input %v is not [N,C,H,W]", s)
	}
	params := []*G.Node{gamma, beta}
	if !train {
		params = append(params, runMean, runVar)
	}
	for _, p := range params {
		if p == nil || p.Shape().Dims() != 1 || p.Shape()[0] != s[1] {
			return nil, nil, nil, fmt.Errorf("batch norm: input %v needs per-channel vectors of %d, got %v", s, s[1], p)
		}
	}
	op := newBatchNormOp(train, relu, s)
	if y, err = G.ApplyOp(op, append([]*G.Node{x}, params...)...); err != nil {
		return nil, nil, nil, err
	}
	if !train {
		return y, nil, nil, nil
	}
	if mean, err = G.ApplyOp(&bnStatOp{fwd: op}, y); err != nil {
		return nil, nil, nil, fmt.Errorf("batch mean: %w", err)
	}
	if variance, err = G.ApplyOp(&bnStatOp{fwd: op, variance: true}, y); err != nil {
		return nil, nil, nil, fmt.Errorf("batch variance: %w", err)
	}
	return y, mean, variance, nil
}

// batchNormOp is BatchNorm2d on x [N,C,H,W] with γ, β [C] (train mode) or
// x, γ, β, running mean, running variance (eval mode), followed by
// max(·, 0) when relu is set.
type batchNormOp struct {
	pureGoOp
	train, relu bool
	shape       tensor.Shape // x's
	// channels and pair are [C] and [2,C], kept so that running the op and
	// its gradient ops allocates no shape.
	channels, pair tensor.Shape
	output         reusedOutput
	// Per channel, written by every run: the mean and σ⁻¹ the run
	// normalised with, and the biased batch variance (train mode).
	mean, invStd, variance []float64
	// scale and shift are the run's γ·σ⁻¹ and β − μ·γ·σ⁻¹.
	scale, shift []float64
}

// newBatchNormOp is the op for x of the given shape [N,C,H,W].
func newBatchNormOp(train, relu bool, shape tensor.Shape) *batchNormOp {
	c := shape[1]
	return &batchNormOp{train: train, relu: relu, shape: shape.Clone(), channels: tensor.Shape{c}, pair: tensor.Shape{2, c}}
}

// Arity is 3 in train mode (x, γ, β) and 5 in eval mode (and the running
// mean and variance).
func (op *batchNormOp) Arity() int {
	if op.train {
		return 3
	}
	return 5
}

// Type is Tensor-4 a → Tensor-1 a → … → Tensor-4 a.
func (op *batchNormOp) Type() hm.Type {
	if op.train {
		return tensorFnType(4, 1, 1, 4)
	}
	return tensorFnType(4, 1, 1, 1, 1, 4)
}

// InferShape is x's shape.
func (op *batchNormOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	c := op.channels
	want := []tensor.Shape{op.shape, c, c, c, c}[:op.Arity()]
	if err := checkInputShapes(op, in, want...); err != nil {
		return nil, err
	}
	return op.shape.Clone(), nil
}

// Do normalises x into the op's own output.
func (op *batchNormOp) Do(in ...G.Value) (G.Value, error) {
	if err := checkArity(op, in, op.Arity()); err != nil {
		return nil, err
	}
	x, err := floatDense(op, in, 0)
	if err != nil {
		return nil, err
	}
	return op.UsePreallocDo(op.output.get(x.Dtype(), op.shape...), in...)
}

// UsePreallocDo normalises x into prealloc (x's shape).
func (op *batchNormOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	if err := checkArity(op, in, op.Arity()); err != nil {
		return nil, err
	}
	x, err := floatDense(op, in, 0)
	if err != nil {
		return nil, err
	}
	dt := x.Dtype()
	if !x.Shape().Eq(op.shape) {
		return nil, fmt.Errorf("%v: input %v, built for %v", op, x.Shape(), op.shape)
	}
	c := op.shape[1]
	vecs := [4]*tensor.Dense{}
	for i := 1; i < len(in); i++ {
		if vecs[i-1], err = floatDenseLike(op, in, i, dt, op.channels); err != nil {
			return nil, err
		}
	}
	y, err := writableOutput(op, prealloc, dt, op.shape...)
	if err != nil {
		return nil, err
	}
	if len(op.mean) != c {
		op.mean, op.invStd, op.variance = make([]float64, c), make([]float64, c), make([]float64, c)
		op.scale, op.shift = make([]float64, c), make([]float64, c)
	}
	n, hw := op.shape[0], op.shape[2]*op.shape[3]
	if dt == tensor.Float32 {
		if op.train {
			batchMoments(x.Float32s(), n, c, hw, op.mean, op.variance)
		} else {
			copyWidened(op.mean, vecs[2].Float32s())
			copyWidened(op.variance, vecs[3].Float32s())
		}
		normCoefficients(op, vecs[0].Float32s(), vecs[1].Float32s())
		affineChannels(y.Float32s(), x.Float32s(), n, c, hw, op.scale, op.shift, op.relu)
	} else {
		if op.train {
			batchMoments(x.Float64s(), n, c, hw, op.mean, op.variance)
		} else {
			copy(op.mean, vecs[2].Float64s())
			copy(op.variance, vecs[3].Float64s())
		}
		normCoefficients(op, vecs[0].Float64s(), vecs[1].Float64s())
		affineChannels(y.Float64s(), x.Float64s(), n, c, hw, op.scale, op.shift, op.relu)
	}
	return y, nil
}

// normCoefficients computes op's σ⁻¹, scale and shift from the run's mean
// and variance and γ, β.
func normCoefficients[E float32 | float64](op *batchNormOp, gamma, beta []E) {
	for ch := range op.mean {
		op.invStd[ch] = 1 / math.Sqrt(op.variance[ch]+batchNormEps)
		op.scale[ch] = float64(gamma[ch]) * op.invStd[ch]
		op.shift[ch] = float64(beta[ch]) - op.mean[ch]*op.scale[ch]
	}
}

// DiffWRT: y is differentiable in x, γ and β, not in the running
// statistics.
func (op *batchNormOp) DiffWRT(inputs int) []bool {
	return []bool{true, true, true, false, false}[:op.Arity()]
}

// SymDiff returns dx, dγ and dβ (and nil for the running statistics). dγ
// and dβ are the two rows of one bnParamGradOp, which dx also reads in
// train mode.
func (op *batchNormOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != op.Arity() {
		return nil, fmt.Errorf("%v: want %d inputs to differentiate, got %d", op, op.Arity(), len(inputs))
	}
	x, gamma := inputs[0], inputs[1]
	masked := func(ns ...*G.Node) []*G.Node {
		if op.relu {
			return append(ns, output)
		}
		return ns
	}
	pg, err := G.ApplyOp(&bnParamGradOp{fwd: op}, masked(grad, x)...)
	if err != nil {
		return nil, fmt.Errorf("%v: parameter gradients: %w", op, err)
	}
	dGamma, err := G.ApplyOp(&bnPickOp{fwd: op, row: 0}, pg)
	if err != nil {
		return nil, fmt.Errorf("%v: γ gradient: %w", op, err)
	}
	dBeta, err := G.ApplyOp(&bnPickOp{fwd: op, row: 1}, pg)
	if err != nil {
		return nil, fmt.Errorf("%v: β gradient: %w", op, err)
	}
	dxIn := masked(grad, gamma)
	if op.train {
		dxIn = masked(grad, gamma, x, pg)
	}
	dx, err := G.ApplyOp(&bnInputGradOp{fwd: op}, dxIn...)
	if err != nil {
		return nil, fmt.Errorf("%v: input gradient: %w", op, err)
	}
	return append(G.Nodes{dx, dGamma, dBeta}, make(G.Nodes, op.Arity()-3)...), nil
}

// WriteHash identifies the op for gorgonia's node deduplication.
func (op *batchNormOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }

// Hashcode is the FNV hash of WriteHash.
func (op *batchNormOp) Hashcode() uint32 { return opHash(op) }

// String names the op in graph dumps and errors.
func (op *batchNormOp) String() string {
	mode := "eval"
	if op.train {
		mode = "train"
	}
	if op.relu {
		return fmt.Sprintf("BatchNorm2d+ReLU(%s)%v", mode, op.shape)
	}
	return fmt.Sprintf("BatchNorm2d(%s)%v", mode, op.shape)
}

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
func inputGradCoefficients[E float32 | float64](op *bnInputGradOp, gamma, pg []E, count int) {
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

// batchMoments writes the mean and biased variance of each channel of x
// [n,c,hw] into mean and variance, accumulating in float64 around the
// channel's first value (so that a large mean does not cancel the
// variance).
func batchMoments[E float32 | float64](x []E, n, c, hw int, mean, variance []float64) {
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
func affineChannels[E float32 | float64](y, x []E, n, c, hw int, scale, shift []float64, relu bool) {
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
func paramGradKernel[E float32 | float64](out, g, x, y []E, n, c, hw int, mean, invStd []float64) {
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
func inputGradKernel[E float32 | float64](dx, g, x, y []E, n, c, hw int, mean, coef []float64) {
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
