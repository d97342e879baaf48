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

// The losses on logits are fused ops: the summed soft-target cross-entropy
// and the summed KL divergence of TRADES. The log-softmax is computed per
// row in float64 as x − vec.LogSumExp(x); the gradients are closed forms:
//
//	d/dz Σ_k −T_k·log softmax(z)_k = softmax(z)·Σ_k T_k − T
//	d/dp KL(softmax p ‖ softmax q) = P ⊙ (log P − log Q − KL)
//	d/dq KL(softmax p ‖ softmax q) = Q − P
//
// Each scalar loss is returned in a value the op reuses from run to run.

// SoftCrossEntropySum adds Σ_i Σ_k −T[i,k]·log softmax(logits_i)_k, for
// logits and soft targets T of one shape [B,K], to the logits' graph: a
// scalar, differentiable in the logits.
func SoftCrossEntropySum(logits, target *G.Node) (*G.Node, error) {
	loss, err := G.ApplyOp(&softCrossEntropySumOp{}, logits, target)
	if err != nil {
		return nil, fmt.Errorf("soft cross-entropy: %w", err)
	}
	return loss, nil
}

// KLDivergenceSum adds Σ_i KL(softmax(p_i) ‖ softmax(q_i)), for logits p
// and q of one shape [B,K], to their graph: a scalar, differentiable in both.
func KLDivergenceSum(p, q *G.Node) (*G.Node, error) {
	kl, err := G.ApplyOp(&klDivergenceSumOp{}, p, q)
	if err != nil {
		return nil, fmt.Errorf("KL divergence: %w", err)
	}
	return kl, nil
}

// softCrossEntropySumOp is Σ_i Σ_k −T[i,k]·log softmax(z_i)_k for logits z
// and soft targets T, both [B,K]: a scalar, differentiable in z.
type softCrossEntropySumOp struct {
	pureGoOp
	loss reusedScalar
}

// Arity is 2: logits and targets.
func (op *softCrossEntropySumOp) Arity() int { return 2 }

// Type is Tensor-2 a → Tensor-2 a → a.
func (op *softCrossEntropySumOp) Type() hm.Type { return tensorFnType(2, 2, 0) }

// InferShape is the scalar shape.
func (op *softCrossEntropySumOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if _, err := sameMatrixShapes(op, in); err != nil {
		return nil, err
	}
	return tensor.ScalarShape(), nil
}

// Do computes the loss.
func (op *softCrossEntropySumOp) Do(in ...G.Value) (G.Value, error) {
	if err := checkArity(op, in, 2); err != nil {
		return nil, err
	}
	z, t, err := sameShapeFloats(op, in)
	if err != nil {
		return nil, err
	}
	if z.Dims() != 2 {
		return nil, fmt.Errorf("%v: logits %v are not a matrix", op, z.Shape())
	}
	k := z.Shape()[1]
	var loss float64
	if z.Dtype() == tensor.Float32 {
		loss = softCrossEntropyKernel(z.Float32s(), t.Float32s(), k)
	} else {
		loss = softCrossEntropyKernel(z.Float64s(), t.Float64s(), k)
	}
	return op.loss.set(z.Dtype(), loss), nil
}

// DiffWRT: the loss is differentiable in the logits; the targets are data.
func (op *softCrossEntropySumOp) DiffWRT(inputs int) []bool { return []bool{true, false} }

// SymDiff returns dz = g·(softmax(z)·Σ_k T_k − T) and no target gradient.
func (op *softCrossEntropySumOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 2 {
		return nil, fmt.Errorf("%v: want 2 inputs to differentiate, got %d", op, len(inputs))
	}
	dz, err := G.ApplyOp(&softmaxLossGradOp{kind: gradSoftCE}, inputs[0], inputs[1], grad)
	if err != nil {
		return nil, fmt.Errorf("%v: logits gradient: %w", op, err)
	}
	return G.Nodes{dz, nil}, nil
}

// WriteHash identifies the op for gorgonia's node deduplication.
func (op *softCrossEntropySumOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }

// Hashcode is the FNV hash of WriteHash.
func (op *softCrossEntropySumOp) Hashcode() uint32 { return opHash(op) }

// String names the op in graph dumps and errors.
func (op *softCrossEntropySumOp) String() string { return "SoftCrossEntropySum" }

// klDivergenceSumOp is Σ_i KL(softmax(p_i) ‖ softmax(q_i)) for logits p and
// q, both [B,K]: a scalar, differentiable in both.
type klDivergenceSumOp struct {
	pureGoOp
	loss reusedScalar
}

// Arity is 2: p and q.
func (op *klDivergenceSumOp) Arity() int { return 2 }

// Type is Tensor-2 a → Tensor-2 a → a.
func (op *klDivergenceSumOp) Type() hm.Type { return tensorFnType(2, 2, 0) }

// InferShape is the scalar shape.
func (op *klDivergenceSumOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if _, err := sameMatrixShapes(op, in); err != nil {
		return nil, err
	}
	return tensor.ScalarShape(), nil
}

// Do computes the divergence.
func (op *klDivergenceSumOp) Do(in ...G.Value) (G.Value, error) {
	if err := checkArity(op, in, 2); err != nil {
		return nil, err
	}
	p, q, err := sameShapeFloats(op, in)
	if err != nil {
		return nil, err
	}
	if p.Dims() != 2 {
		return nil, fmt.Errorf("%v: logits %v are not a matrix", op, p.Shape())
	}
	k := p.Shape()[1]
	var kl float64
	if p.Dtype() == tensor.Float32 {
		kl = klDivergenceKernel(p.Float32s(), q.Float32s(), k)
	} else {
		kl = klDivergenceKernel(p.Float64s(), q.Float64s(), k)
	}
	return op.loss.set(p.Dtype(), kl), nil
}

// DiffWRT: the divergence is differentiable in p and q.
func (op *klDivergenceSumOp) DiffWRT(inputs int) []bool { return []bool{true, true} }

// SymDiff returns dp = g·P⊙(log P − log Q − KL_i) and dq = g·(Q − P).
func (op *klDivergenceSumOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 2 {
		return nil, fmt.Errorf("%v: want 2 inputs to differentiate, got %d", op, len(inputs))
	}
	dp, err := G.ApplyOp(&softmaxLossGradOp{kind: gradKLWrtP}, inputs[0], inputs[1], grad)
	if err != nil {
		return nil, fmt.Errorf("%v: p gradient: %w", op, err)
	}
	dq, err := G.ApplyOp(&softmaxLossGradOp{kind: gradKLWrtQ}, inputs[0], inputs[1], grad)
	if err != nil {
		return nil, fmt.Errorf("%v: q gradient: %w", op, err)
	}
	return G.Nodes{dp, dq}, nil
}

// WriteHash identifies the op for gorgonia's node deduplication.
func (op *klDivergenceSumOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }

// Hashcode is the FNV hash of WriteHash.
func (op *klDivergenceSumOp) Hashcode() uint32 { return opHash(op) }

// String names the op in graph dumps and errors.
func (op *klDivergenceSumOp) String() string { return "KLDivergenceSum" }

// softmaxLossGrad selects which gradient a softmaxLossGradOp computes.
type softmaxLossGrad int

const (
	gradSoftCE softmaxLossGrad = iota // d/dz of softCrossEntropySumOp(z, T)
	gradKLWrtP                        // d/dp of klDivergenceSumOp(p, q)
	gradKLWrtQ                        // d/dq of klDivergenceSumOp(p, q)
)

// softmaxLossGradOp is one gradient of the losses above: its inputs are the
// loss op's two inputs and the scalar upstream gradient g; its output is
// [B,K].
type softmaxLossGradOp struct {
	pureGoOp
	kind   softmaxLossGrad
	output reusedOutput
}

// Arity is 3: the loss's two inputs and g.
func (op *softmaxLossGradOp) Arity() int { return 3 }

// Type is Tensor-2 a → Tensor-2 a → a → Tensor-2 a.
func (op *softmaxLossGradOp) Type() hm.Type { return tensorFnType(2, 2, 0, 2) }

// InferShape is the logits' shape.
func (op *softmaxLossGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if len(in) != 3 {
		return nil, fmt.Errorf("%v: want 3 input shapes, got %d", op, len(in))
	}
	return sameMatrixShapes(op, in[:2])
}

// Do computes the gradient into the op's own output.
func (op *softmaxLossGradOp) Do(in ...G.Value) (G.Value, error) {
	if err := checkArity(op, in, 3); err != nil {
		return nil, err
	}
	a, err := floatDense(op, in, 0)
	if err != nil {
		return nil, err
	}
	return op.UsePreallocDo(op.output.get(a.Dtype(), a.Shape()...), in...)
}

// UsePreallocDo computes the gradient into prealloc ([B,K]).
func (op *softmaxLossGradOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	if err := checkArity(op, in, 3); err != nil {
		return nil, err
	}
	a, b, err := sameShapeFloats(op, in[:2])
	if err != nil {
		return nil, err
	}
	if a.Dims() != 2 {
		return nil, fmt.Errorf("%v: logits %v are not a matrix", op, a.Shape())
	}
	g, err := ScalarOf(in[2])
	if err != nil {
		return nil, fmt.Errorf("%v: upstream gradient: %w", op, err)
	}
	d, err := writableOutput(op, prealloc, a.Dtype(), a.Shape()...)
	if err != nil {
		return nil, err
	}
	k := a.Shape()[1]
	if a.Dtype() == tensor.Float32 {
		softmaxLossGradKernel(op.kind, d.Float32s(), a.Float32s(), b.Float32s(), k, g)
	} else {
		softmaxLossGradKernel(op.kind, d.Float64s(), a.Float64s(), b.Float64s(), k, g)
	}
	return d, nil
}

// WriteHash identifies the op for gorgonia's node deduplication.
func (op *softmaxLossGradOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }

// Hashcode is the FNV hash of WriteHash.
func (op *softmaxLossGradOp) Hashcode() uint32 { return opHash(op) }

// String names the op in graph dumps and errors.
func (op *softmaxLossGradOp) String() string {
	return []string{"SoftCrossEntropyGrad", "KLDivergenceGradP", "KLDivergenceGradQ"}[op.kind]
}

// softCrossEntropyKernel is Σ_i Σ_k −t[i,k]·log softmax(z_i)_k, rows of k.
func softCrossEntropyKernel[E vec.Float](z, t []E, k int) float64 {
	var loss float64
	for off := 0; off < len(z); off += k {
		zs, ts := z[off:off+k], t[off:off+k]
		shift := vec.LogSumExp(zs)
		for j, v := range zs {
			if ts[j] != 0 {
				loss -= float64(ts[j]) * (float64(v) - shift)
			}
		}
	}
	return loss
}

// klDivergenceKernel is Σ_i Σ_k P[i,k]·(log P[i,k] − log Q[i,k]) for
// P = softmax(p), Q = softmax(q), rows of k.
func klDivergenceKernel[E vec.Float](p, q []E, k int) float64 {
	var kl float64
	for off := 0; off < len(p); off += k {
		kl += klRow(p[off:off+k], q[off:off+k])
	}
	return kl
}

// softmaxLossGradKernel writes one of the gradients of softmaxLossGrad,
// scaled by g, into d (rows of k).
func softmaxLossGradKernel[E vec.Float](kind softmaxLossGrad, d, a, b []E, k int, g float64) {
	for off := 0; off < len(a); off += k {
		ds, as, bs := d[off:off+k], a[off:off+k], b[off:off+k]
		switch kind {
		case gradSoftCE: // a = z, b = T
			la := vec.LogSumExp(as)
			var tsum float64
			for _, v := range bs {
				tsum += float64(v)
			}
			for j, v := range as {
				ds[j] = E(g * (math.Exp(float64(v)-la)*tsum - float64(bs[j])))
			}
		case gradKLWrtP: // a = p, b = q
			la, lb := vec.LogSumExp(as), vec.LogSumExp(bs)
			kl := klRow(as, bs)
			for j := range as {
				lp, lq := float64(as[j])-la, float64(bs[j])-lb
				ds[j] = E(g * math.Exp(lp) * (lp - lq - kl))
			}
		case gradKLWrtQ:
			la, lb := vec.LogSumExp(as), vec.LogSumExp(bs)
			for j := range as {
				ds[j] = E(g * (math.Exp(float64(bs[j])-lb) - math.Exp(float64(as[j])-la)))
			}
		}
	}
}

// klRow is KL(softmax p ‖ softmax q) for one row.
func klRow[E vec.Float](p, q []E) float64 {
	lp, lq := vec.LogSumExp(p), vec.LogSumExp(q)
	var kl float64
	for j, v := range p {
		a, b := float64(v)-lp, float64(q[j])-lq
		kl += math.Exp(a) * (a - b)
	}
	return kl
}
