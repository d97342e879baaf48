package model

import (
	"fmt"
	"hash"
	"hash/fnv"
	"math"

	"github.com/chewxy/hm"
	"github.com/sglr-pipe/sglr-pipe/nn/internal/vec"
	"github.com/sglr-pipe/sglr-pipe/nn/ops"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// MART (Wang et al., ICLR 2020, "Improving adversarial robustness requires
// revisiting misclassified examples"), in the form of the reference code's
// mart_loss (YisenWang/MART, mart.py), for clean logits z, adversarial
// logits u and targets T of one row, with p = softmax(z), q = softmax(u):
//
//	ℓ = −Σ_k T_k·log q_k                               (CE on x')
//	    − log(1.0001 − q_ŷ + 1e-12)                     (margin: ŷ = argmax_{k≠y} q_k)
//	    + β·(1.0000001 − p_y)·Σ_k p_k·(log p_k − log(q_k + 1e-12))
//
// and the loss is mean_i ℓ_i. The constants are the reference's guards.
// Nothing is detached, as in the reference: the KL term and its weight
// 1 − p_y(x) both carry gradient into the clean pass. y is argmax_k T_k
// (first index on ties): with one-hot targets that is the hard label and ℓ
// is the reference's loss exactly; with soft targets (SGLR, smoothing,
// distillation) the CE term is the soft-target CE against T and the margin
// and the weight use the target's most probable class.
const (
	martMarginShift = 1.0001    // the reference's log(1.0001 − q + 1e-12)
	martLogGuard    = 1e-12     // added to probabilities before their log
	martWeightShift = 1.0000001 // the reference's (1.0000001 − p_y)
)

// martRowGrad is what martRow computes for one row.
type martRowGrad struct {
	dz, du []float64 // dℓ/dz and dℓ/du (len K), nil when not wanted
}

// martRow returns the MART loss ℓ of one row (z, u, t of len K ≥ 2) and,
// when g's slices are not nil, writes its gradients into them. scratch holds
// at least 2K values.
func martRow[E vec.Float](z, u, t []E, beta float64, scratch []float64, g martRowGrad) float64 {
	k := len(z)
	p, q := scratch[:k], scratch[k:2*k]
	lz, lu := vec.LogSumExp(z), vec.LogSumExp(u)
	for j := range k {
		p[j] = math.Exp(float64(z[j]) - lz)
		q[j] = math.Exp(float64(u[j]) - lu)
	}
	y := vec.Argmax(t)
	other := -1 // ŷ: the most probable class under q other than y
	for j := range k {
		if j != y && (other < 0 || q[j] > q[other]) {
			other = j
		}
	}
	var ce, tsum, kl float64
	for j := range k {
		tj := float64(t[j])
		tsum += tj
		if tj != 0 {
			ce -= tj * (float64(u[j]) - lu)
		}
		kl += p[j] * ((float64(z[j]) - lz) - math.Log(q[j]+martLogGuard))
	}
	marginArg := martMarginShift - q[other] + martLogGuard
	weight := martWeightShift - p[y]
	loss := ce - math.Log(marginArg) + beta*weight*kl
	if g.du != nil {
		// d/du of the CE, the margin (through q_ŷ) and the KL (through q).
		r := q[other] / marginArg
		var s float64
		for j := range k {
			s += p[j] * q[j] / (q[j] + martLogGuard)
		}
		for j := range k {
			d := q[j]*tsum - float64(t[j]) - r*q[j] + beta*weight*(q[j]*s-p[j]*q[j]/(q[j]+martLogGuard))
			if j == other {
				d += r
			}
			g.du[j] = d
		}
	}
	if g.dz != nil {
		// d/dz of weight·KL: p_j·(h_j − KL)·weight − KL·p_y·(δ_jy − p_j).
		for j := range k {
			h := (float64(z[j]) - lz) - math.Log(q[j]+martLogGuard)
			d := weight*p[j]*(h-kl) + kl*p[y]*p[j]
			if j == y {
				d -= kl * p[y]
			}
			g.dz[j] = beta * d
		}
	}
	return loss
}

// martSum is Σ_i ℓ_i over the rows of z, u, t ([B,K] each).
func martSum[E vec.Float](z, u, t []E, k int, beta float64) float64 {
	scratch := make([]float64, 2*k)
	var sum float64
	for off := 0; off < len(z); off += k {
		sum += martRow(z[off:off+k], u[off:off+k], t[off:off+k], beta, scratch, martRowGrad{})
	}
	return sum
}

// martGrad writes g·dΣℓ/dz (wrtAdv false) or g·dΣℓ/du (wrtAdv true) into d.
func martGrad[E vec.Float](d, z, u, t []E, k int, beta, g float64, wrtAdv bool) {
	scratch := make([]float64, 3*k)
	row := scratch[2*k:]
	for off := 0; off < len(z); off += k {
		rg := martRowGrad{dz: row}
		if wrtAdv {
			rg = martRowGrad{du: row}
		}
		martRow(z[off:off+k], u[off:off+k], t[off:off+k], beta, scratch[:2*k], rg)
		for j, v := range row {
			d[off+j] = E(g * v)
		}
	}
}

// addMARTLoss adds a second forward pass on an x_adv input, sharing the
// weights, and makes the loss mean_i ℓ_i (see martRow) of the clean and
// adversarial logits, the targets and beta. The running statistics take the
// clean and then the adversarial batch statistics: mart_loss runs
// model(x_natural), then model(x_adv), in model.train().
func (n *Net) addMARTLoss(fb *forwardBuilder, clean *forwardPass) error {
	dt := n.opts.Dtype
	c, h, w := n.arch.Input[0], n.arch.Input[1], n.arch.Input[2]
	n.xAdv, n.xAdvT = n.newInput("x_adv", n.batch, c, h, w)
	adv, err := fb.forward(n.xAdv)
	if err != nil {
		return err
	}
	n.beta = G.NewScalar(n.g, dt, G.WithName("beta"))
	sum, err := G.ApplyOp(&martLossOp{}, clean.logits, adv.logits, n.target, n.beta)
	if err != nil {
		return fmt.Errorf("MART loss: %w", err)
	}
	if n.loss, err = G.HadamardDiv(sum, scalarConst(dt, float64(n.batch))); err != nil {
		return fmt.Errorf("MART loss mean: %w", err)
	}
	n.statUpdates = append(append([]batchStats(nil), clean.stats...), adv.stats...)
	return nil
}

// TrainStepMART computes the MART loss mean_i ℓ_i (see martRow) of x, xAdv
// and target with weight beta, and the gradients of every trainable
// parameter; logits (if not nil) receives f(x). In Train mode the running
// statistics are updated with the clean and then the adversarial batch
// statistics, as mart_loss runs them. It needs a PurposeTrainMART net.
func (n *Net) TrainStepMART(x, xAdv, target, logits []float32, beta float64) (float64, error) {
	return netTrainStepMART(n, x, xAdv, target, logits, beta)
}

// netTrainStepMART runs a PurposeTrainMART net on caller slices of type T.
func netTrainStepMART[T vec.Float](n *Net, x, xAdv, target, logits []T, beta float64) (float64, error) {
	if n.purpose == PurposeTrainMART && (math.IsNaN(beta) || math.IsInf(beta, 0) || beta < 0) {
		return 0, fmt.Errorf("%s net: beta %v must be finite and >= 0", n.purpose, beta)
	}
	if xAdv == nil {
		return 0, fmt.Errorf("%s net: x_adv is missing", PurposeTrainMART)
	}
	return runTrainStep(n, PurposeTrainMART, x, xAdv, target, logits, beta)
}

// martLossOp is Σ_i ℓ_i (see martRow) of clean logits z, adversarial
// logits u, targets T (each [B,K]) and the scalar beta: a scalar,
// differentiable in z and u.
type martLossOp struct {
	f32 G.F32
	f64 G.F64
}

// martOperands checks the op's first three inputs (dense [B,K] matrices of
// one float dtype) and reads beta, input 3.
func martOperands(op G.Op, in []G.Value) (z, u, t *tensor.Dense, beta float64, err error) {
	if len(in) < 4 {
		return nil, nil, nil, 0, fmt.Errorf("%v: want at least 4 inputs, got %d", op, len(in))
	}
	ds := [3]*tensor.Dense{}
	for i := range ds {
		d, ok := in[i].(*tensor.Dense)
		if !ok || !d.IsNativelyAccessible() || d.IsView() || d.Dims() != 2 {
			return nil, nil, nil, 0, fmt.Errorf("%v: input %d (%T) is not a dense matrix", op, i, in[i])
		}
		if dt := d.Dtype(); dt != tensor.Float32 && dt != tensor.Float64 {
			return nil, nil, nil, 0, fmt.Errorf("%v: input %d has dtype %v, want float32 or float64", op, i, dt)
		}
		if i > 0 && (d.Dtype() != ds[0].Dtype() || !d.Shape().Eq(ds[0].Shape())) {
			return nil, nil, nil, 0, fmt.Errorf("%v: input %d is %v %v, input 0 %v %v", op, i, d.Dtype(), d.Shape(), ds[0].Dtype(), ds[0].Shape())
		}
		ds[i] = d
	}
	if ds[0].Shape()[1] < 2 {
		return nil, nil, nil, 0, fmt.Errorf("%v: %d classes, MART needs at least 2", op, ds[0].Shape()[1])
	}
	if beta, err = ops.ScalarOf(in[3]); err != nil {
		return nil, nil, nil, 0, fmt.Errorf("%v: beta: %w", op, err)
	}
	return ds[0], ds[1], ds[2], beta, nil
}

// martShapes checks that the first three of in are one matrix shape and
// returns it.
func martShapes(op G.Op, in []G.DimSizer, arity int) (tensor.Shape, error) {
	if len(in) != arity {
		return nil, fmt.Errorf("%v: want %d input shapes, got %d", op, arity, len(in))
	}
	s, ok := in[0].(tensor.Shape)
	if !ok || s.Dims() != 2 {
		return nil, fmt.Errorf("%v: logits shape %v is not a matrix", op, in[0])
	}
	for i := 1; i < 3; i++ {
		if o, ok := in[i].(tensor.Shape); !ok || !o.Eq(s) {
			return nil, fmt.Errorf("%v: input %d has shape %v, input 0 %v", op, i, in[i], s)
		}
	}
	return s.Clone(), nil
}

// martFnType is the type of an op taking z, u, T (Tensor-2 a), beta and
// then the given further types.
func martFnType(rest ...hm.Type) hm.Type {
	a := hm.TypeVariable('a')
	mat := G.TensorType{Dims: 2, Of: a}
	return hm.NewFnType(append([]hm.Type{mat, mat, mat, a}, rest...)...)
}

// Arity is 4: z, u, T and beta.
func (op *martLossOp) Arity() int { return 4 }

// Type is Tensor-2 a → Tensor-2 a → Tensor-2 a → a → a.
func (op *martLossOp) Type() hm.Type { return martFnType(hm.TypeVariable('a')) }

// InferShape is the scalar shape.
func (op *martLossOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if _, err := martShapes(op, in, 4); err != nil {
		return nil, err
	}
	return tensor.ScalarShape(), nil
}

// Do computes the summed loss into the op's reused scalar.
func (op *martLossOp) Do(in ...G.Value) (G.Value, error) {
	if len(in) != 4 {
		return nil, fmt.Errorf("%v: want 4 inputs, got %d", op, len(in))
	}
	z, u, t, beta, err := martOperands(op, in)
	if err != nil {
		return nil, err
	}
	k := z.Shape()[1]
	if z.Dtype() == tensor.Float32 {
		op.f32 = G.F32(martSum(z.Float32s(), u.Float32s(), t.Float32s(), k, beta))
		return &op.f32, nil
	}
	op.f64 = G.F64(martSum(z.Float64s(), u.Float64s(), t.Float64s(), k, beta))
	return &op.f64, nil
}

// ReturnsPtr is false: the output is not one of the inputs.
func (op *martLossOp) ReturnsPtr() bool { return false }

// CallsExtern is false: the op runs in Go.
func (op *martLossOp) CallsExtern() bool { return false }

// OverwritesInput is -1: no input is overwritten.
func (op *martLossOp) OverwritesInput() int { return -1 }

// DiffWRT: differentiable in z and u; T and beta are data.
func (op *martLossOp) DiffWRT(inputs int) []bool { return []bool{true, true, false, false} }

// SymDiff returns the gradients in z and u, nothing for T and beta.
func (op *martLossOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 4 {
		return nil, fmt.Errorf("%v: want 4 inputs to differentiate, got %d", op, len(inputs))
	}
	args := append(append(G.Nodes(nil), inputs...), grad)
	dz, err := G.ApplyOp(&martGradOp{}, args...)
	if err != nil {
		return nil, fmt.Errorf("%v: clean logits gradient: %w", op, err)
	}
	du, err := G.ApplyOp(&martGradOp{wrtAdv: true}, args...)
	if err != nil {
		return nil, fmt.Errorf("%v: adversarial logits gradient: %w", op, err)
	}
	return G.Nodes{dz, du, nil, nil}, nil
}

// WriteHash identifies the op for gorgonia's node deduplication.
func (op *martLossOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }

// Hashcode is the FNV hash of WriteHash.
func (op *martLossOp) Hashcode() uint32 { return martHash(op) }

// String names the op in graph dumps and errors.
func (op *martLossOp) String() string { return "MARTLoss" }

// martGradOp is g·dΣℓ/dz or g·dΣℓ/du: its inputs are martLossOp's four and
// the scalar upstream gradient g; its output is [B,K].
type martGradOp struct {
	wrtAdv bool
	out    *tensor.Dense
}

// Arity is 5: z, u, T, beta and g.
func (op *martGradOp) Arity() int { return 5 }

// Type is Tensor-2 a → Tensor-2 a → Tensor-2 a → a → a → Tensor-2 a.
func (op *martGradOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return martFnType(a, G.TensorType{Dims: 2, Of: a})
}

// InferShape is the logits' shape.
func (op *martGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return martShapes(op, in, 5)
}

// Do computes the gradient into the op's own reused output.
func (op *martGradOp) Do(in ...G.Value) (G.Value, error) {
	if len(in) != 5 {
		return nil, fmt.Errorf("%v: want 5 inputs, got %d", op, len(in))
	}
	z, u, t, beta, err := martOperands(op, in)
	if err != nil {
		return nil, err
	}
	g, err := ops.ScalarOf(in[4])
	if err != nil {
		return nil, fmt.Errorf("%v: upstream gradient: %w", op, err)
	}
	if op.out == nil || op.out.Dtype() != z.Dtype() || !op.out.Shape().Eq(z.Shape()) {
		op.out = tensor.New(tensor.WithShape(z.Shape()...), tensor.Of(z.Dtype()))
	}
	k := z.Shape()[1]
	if z.Dtype() == tensor.Float32 {
		martGrad(op.out.Float32s(), z.Float32s(), u.Float32s(), t.Float32s(), k, beta, g, op.wrtAdv)
	} else {
		martGrad(op.out.Float64s(), z.Float64s(), u.Float64s(), t.Float64s(), k, beta, g, op.wrtAdv)
	}
	return op.out, nil
}

// ReturnsPtr is false: the output is not one of the inputs.
func (op *martGradOp) ReturnsPtr() bool { return false }

// CallsExtern is false: the op runs in Go.
func (op *martGradOp) CallsExtern() bool { return false }

// OverwritesInput is -1: no input is overwritten.
func (op *martGradOp) OverwritesInput() int { return -1 }

// DiffWRT: the gradient has no gradient.
func (op *martGradOp) DiffWRT(inputs int) []bool { return make([]bool, inputs) }

// SymDiff is not defined: training differentiates once.
func (op *martGradOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	return nil, fmt.Errorf("%v: second derivatives are not supported", op)
}

// WriteHash identifies the op for gorgonia's node deduplication.
func (op *martGradOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }

// Hashcode is the FNV hash of WriteHash.
func (op *martGradOp) Hashcode() uint32 { return martHash(op) }

// String names the op in graph dumps and errors.
func (op *martGradOp) String() string {
	if op.wrtAdv {
		return "MARTGradAdv"
	}
	return "MARTGradClean"
}

// martHash is the 32-bit FNV-1a hash of an op's WriteHash.
func martHash(op G.Op) uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}
