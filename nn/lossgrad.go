package nn

import (
	"errors"
	"fmt"
	"hash"
	"sync"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// This file lets one graph run compute the logits, a loss of them written
// in Go, and the loss's input gradient. The evaluation attacks (APGD with
// the CE and DLR losses, CW∞, FAB) differentiate such losses; before, every
// iteration ran the forward pass twice: once for the logits the loss needs,
// once more inside the vector-Jacobian product that back-propagates
// dLoss/dlogits. A PurposeLossGrad net instead places logitsLossOp on the
// logits: its forward calls the Go loss row by row, keeps dLoss/dlogits,
// and returns the summed loss; its gradient (logitsLossGradOp) hands the
// kept upstream to the backward pass. The backward ops are those of the
// PurposeVJP net, which receive the same upstream, so the input gradient
// has the same bits as Logits followed by LogitsVJP.

// RowLoss computes the loss of sample i from its logits z (len K) and writes
// dLoss/dz into up (len K, zeroed by the caller). It must depend on sample
// i's logits and its own state only, so that rows can be evaluated in any
// order.
type RowLoss func(i int, z, up []float32) float64

// LossGrader is a GradModel that evaluates a loss of its logits and the
// loss's input gradient in one pass over the model, instead of a Logits
// call followed by a LogitsVJP call (two forward passes). The evaluation
// attacks use it when the model offers it and fall back to Logits and
// LogitsVJP otherwise.
type LossGrader interface {
	GradModel
	// LossGrad runs the n samples x (n*InputSize) once: it writes their
	// logits into logits (n*K), calls loss once per sample i (never
	// concurrently) and writes the returned loss into losses[i] (len n), and
	// writes J(x)ᵀ·up into grad (n*InputSize), up the dLoss/dlogits the
	// calls wrote and J the Jacobian of the Eval-mode logits.
	LossGrad(x []float32, n int, loss RowLoss, logits []float32, losses []float64, grad []float32) error
}

// logitsLoss is the Go side of a PurposeLossGrad net: the loss bound for
// the current run and the upstream it produced. Between runs the loss
// fields are nil.
type logitsLoss struct {
	upstream *tensor.Dense // [B,K] dLoss/dlogits of the last run

	f32 func(i int, z, up []float32) float64 // loss of a float32 net
	f64 func(i int, z, up []float64) float64 // loss of a float64 net (gradient tests)
	// first is the sample index of row 0: row r is sample first+r.
	first int
	// rows counts the rows that are samples; the rest are padding, with a
	// zero upstream and no loss call.
	rows   int
	losses []float64   // per-sample losses, indexed by sample
	mu     *sync.Mutex // serialises the loss calls of concurrent runs; nil for none
}

// errNoLossBound is the forward of a PurposeLossGrad graph run other than
// through LossGrad.
var errNoLossBound = errors.New("no loss bound to the run (run a loss-grad net through LossGrad)")

// apply evaluates the bound loss on the logits z ([B,K]) into h.upstream
// and returns the summed loss.
func (h *logitsLoss) apply(z *tensor.Dense) (float64, error) {
	if !z.Shape().Eq(h.upstream.Shape()) {
		return 0, fmt.Errorf("logits %v, the net was built for %v", z.Shape(), h.upstream.Shape())
	}
	if z.Dtype() != h.upstream.Dtype() {
		return 0, fmt.Errorf("logits are %v, the net was built for %v", z.Dtype(), h.upstream.Dtype())
	}
	k := z.Shape()[1]
	switch {
	case z.Dtype() == tensor.Float32 && h.f32 != nil:
		return applyRows(h, z.Float32s(), h.upstream.Float32s(), k, h.f32), nil
	case z.Dtype() == tensor.Float64 && h.f64 != nil:
		return applyRows(h, z.Float64s(), h.upstream.Float64s(), k, h.f64), nil
	}
	return 0, errNoLossBound
}

// applyRows calls loss on the sample rows of z, writing their upstream into
// up (zero for padding rows) and their losses into h.losses, and returns
// the sum of the losses.
func applyRows[E float32 | float64](h *logitsLoss, z, up []E, k int, loss func(i int, z, up []E) float64) float64 {
	clear(up)
	if h.mu != nil {
		h.mu.Lock()
		defer h.mu.Unlock()
	}
	total := 0.0
	for r := range h.rows {
		l := loss(h.first+r, z[r*k:(r+1)*k], up[r*k:(r+1)*k])
		h.losses[h.first+r] = l
		total += l
	}
	return total
}

// logitsLossOp is the Go loss of logitsLoss on logits z [B,K]: a scalar,
// the summed loss, whose gradient in z is the upstream the loss wrote.
type logitsLossOp struct {
	pureGoOp
	hook *logitsLoss
	loss reusedScalar
}

// Arity is 1: the logits.
func (op *logitsLossOp) Arity() int { return 1 }

// Type is Tensor-2 a → a.
func (op *logitsLossOp) Type() hm.Type { return tensorFnType(2, 0) }

// InferShape is the scalar shape.
func (op *logitsLossOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if len(in) != 1 {
		return nil, fmt.Errorf("%v: want 1 input shape, got %d", op, len(in))
	}
	return tensor.ScalarShape(), nil
}

// Do calls the bound loss and returns the summed loss.
func (op *logitsLossOp) Do(in ...G.Value) (G.Value, error) {
	if err := checkArity(op, in, 1); err != nil {
		return nil, err
	}
	z, err := floatDense(op, in, 0)
	if err != nil {
		return nil, err
	}
	loss, err := op.hook.apply(z)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	return op.loss.set(z.Dtype(), loss), nil
}

// DiffWRT: the loss is differentiable in the logits.
func (op *logitsLossOp) DiffWRT(inputs int) []bool { return []bool{true} }

// SymDiff returns dz = g·upstream. The gradient op reads the loss's output
// so that it runs after the forward that wrote the upstream.
func (op *logitsLossOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 1 {
		return nil, fmt.Errorf("%v: want 1 input to differentiate, got %d", op, len(inputs))
	}
	dz, err := G.ApplyOp(&logitsLossGradOp{hook: op.hook, shape: inputs[0].Shape().Clone()}, output, grad)
	if err != nil {
		return nil, fmt.Errorf("%v: logits gradient: %w", op, err)
	}
	return G.Nodes{dz}, nil
}

// WriteHash identifies the op for gorgonia's node deduplication.
func (op *logitsLossOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }

// Hashcode is the FNV hash of WriteHash.
func (op *logitsLossOp) Hashcode() uint32 { return opHash(op) }

// String names the op in graph dumps and errors.
func (op *logitsLossOp) String() string { return "LogitsLoss" }

// logitsLossGradOp is the gradient of logitsLossOp: g·upstream [B,K], its
// inputs the loss (for the ordering only) and the scalar upstream gradient
// g.
type logitsLossGradOp struct {
	pureGoOp
	hook   *logitsLoss
	shape  tensor.Shape
	output reusedOutput
}

// Arity is 2: the loss and g.
func (op *logitsLossGradOp) Arity() int { return 2 }

// Type is a → a → Tensor-2 a.
func (op *logitsLossGradOp) Type() hm.Type { return tensorFnType(0, 0, 2) }

// InferShape is the logits' shape.
func (op *logitsLossGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if len(in) != 2 {
		return nil, fmt.Errorf("%v: want 2 input shapes, got %d", op, len(in))
	}
	return op.shape.Clone(), nil
}

// Do writes g·upstream into the op's own output.
func (op *logitsLossGradOp) Do(in ...G.Value) (G.Value, error) {
	if err := checkArity(op, in, 2); err != nil {
		return nil, err
	}
	g, err := scalarOf(in[1])
	if err != nil {
		return nil, fmt.Errorf("%v: upstream gradient: %w", op, err)
	}
	up := op.hook.upstream
	if !up.Shape().Eq(op.shape) {
		return nil, fmt.Errorf("%v: upstream %v, built for %v", op, up.Shape(), op.shape)
	}
	out := op.output.get(up.Dtype(), op.shape...)
	if up.Dtype() == tensor.Float32 {
		scaleInto(out.Float32s(), up.Float32s(), g)
	} else {
		scaleInto(out.Float64s(), up.Float64s(), g)
	}
	return out, nil
}

// DiffWRT: the upstream is data; the op has no gradient.
func (op *logitsLossGradOp) DiffWRT(inputs int) []bool { return make([]bool, inputs) }

// SymDiff is not defined: a loss-grad net differentiates once.
func (op *logitsLossGradOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	return nil, fmt.Errorf("%v: second derivatives are not supported", op)
}

// WriteHash identifies the op for gorgonia's node deduplication.
func (op *logitsLossGradOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String(), op.shape) }

// Hashcode is the FNV hash of WriteHash.
func (op *logitsLossGradOp) Hashcode() uint32 { return opHash(op) }

// String names the op in graph dumps and errors.
func (op *logitsLossGradOp) String() string { return "LogitsLossGrad" }

// scaleInto writes g·src into dst (same length); g = 1 copies the bits.
func scaleInto[E float32 | float64](dst, src []E, g float64) {
	if g == 1 {
		copy(dst, src)
		return
	}
	for i, v := range src {
		dst[i] = E(g * float64(v))
	}
}

// lossCall is one run's loss for netLossGrad: loss on rows samples,
// starting at sample first, losses written at their sample index.
type lossCall[T float] struct {
	loss   func(i int, z, up []T) float64
	first  int
	rows   int
	losses []float64
	mu     *sync.Mutex
}

// bind sets the hook of a net of dtype dt to the call's loss.
func (c lossCall[T]) bind(h *logitsLoss, dt tensor.Dtype) error {
	switch f := any(c.loss).(type) {
	case func(int, []float32, []float32) float64:
		if dt != tensor.Float32 {
			return fmt.Errorf("the net computes in %v, the loss takes float32 logits", dt)
		}
		h.f32 = f
	case func(int, []float64, []float64) float64:
		if dt != tensor.Float64 {
			return fmt.Errorf("the net computes in %v, the loss takes float64 logits", dt)
		}
		h.f64 = f
	default:
		return fmt.Errorf("loss of type %T", c.loss)
	}
	h.first, h.rows, h.losses, h.mu = c.first, c.rows, c.losses, c.mu
	return nil
}

// unbind clears the hook so that the net keeps no caller state.
func (h *logitsLoss) unbind() {
	h.f32, h.f64, h.losses, h.mu = nil, nil, nil, nil
	h.first, h.rows = 0, 0
}
