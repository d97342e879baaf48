package ops

import (
	"fmt"
	"hash"
	"math"

	"github.com/chewxy/hm"
	"github.com/sglr-pipe/sglr-pipe/nn/internal/vec"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// torch.nn.BatchNorm2d(eps=BatchNormEps), optionally fused with the ReLU
// after it, is one op.
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
// them through two small nodes (bnStatOp), so that the caller reads graph
// values. x̂ is recomputed from x in the backward pass rather than stored,
// which saves one activation-sized buffer per layer.

// BatchNormEps is the ε of torch.nn.BatchNorm2d's default, added to the
// variance before its square root.
const BatchNormEps = 1e-5

// BatchNorm adds BatchNorm2d (followed by a ReLU when relu is set)
// on x [N,C,H,W] to x's graph. gamma and beta are [C]. In train mode it
// also returns the batch mean and biased variance nodes ([C]);
// runMean and runVar ([C]) are read in eval mode only.
func BatchNorm(x, gamma, beta, runMean, runVar *G.Node, train, relu bool) (y, mean, variance *G.Node, err error) {
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
func normCoefficients[E vec.Float](op *batchNormOp, gamma, beta []E) {
	for ch := range op.mean {
		op.invStd[ch] = 1 / math.Sqrt(op.variance[ch]+BatchNormEps)
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
