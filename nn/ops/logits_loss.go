package ops

import (
	"errors"
	"fmt"
	"hash"
	"sync"

	"github.com/chewxy/hm"
	"github.com/sglr-pipe/sglr-pipe/nn/internal/vec"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// LossHook is the Go side of a LogitsLoss node: the loss of the logits bound
// to the current run (BindLoss) and the dLoss/dlogits it wrote, which the
// node's gradient hands to the backward pass. Between runs nothing is bound
// and the node's forward fails, so a graph keeps no caller state. The hook
// belongs to one graph and is used by one goroutine at a time, except for
// the loss calls, which mu serialises across graphs when set.
type LossHook struct {
	upstream *tensor.Dense // [B,K] dLoss/dlogits of the last run

	f32 func(i int, z, up []float32) float64 // loss of a float32 graph
	f64 func(i int, z, up []float64) float64 // loss of a float64 graph (gradient tests)
	// first is the sample index of row 0: row r is sample first+r.
	first int
	// rows counts the rows that are samples; the rest are padding, with a
	// zero upstream and no loss call.
	rows   int
	losses []float64   // per-sample losses, indexed by sample
	mu     *sync.Mutex // serialises the loss calls of concurrent runs; nil for none
}

// NewLossHook returns the hook of a LogitsLoss node on [batch,k] logits of
// dtype dt.
func NewLossHook(dt tensor.Dtype, batch, k int) *LossHook {
	return &LossHook{upstream: tensor.New(tensor.WithShape(batch, k), tensor.Of(dt))}
}

// errNoLossBound is the forward of a LogitsLoss node run with nothing bound.
var errNoLossBound = errors.New("no loss bound to the run (run a loss-grad net through LossGrad)")

// BindLoss binds loss to h for the next run: row r of the logits is sample
// first+r for r < rows (the other rows are padding: zero upstream, no call),
// and the loss of sample i goes to losses[i]. mu, when not nil, serialises
// the loss calls of graphs run concurrently. T must be the graph's dtype.
func BindLoss[T vec.Float](h *LossHook, loss func(i int, z, up []T) float64, first, rows int, losses []float64, mu *sync.Mutex) error {
	dt := h.upstream.Dtype()
	switch f := any(loss).(type) {
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
	}
	h.first, h.rows, h.losses, h.mu = first, rows, losses, mu
	return nil
}

// Unbind clears what BindLoss bound.
func (h *LossHook) Unbind() {
	h.f32, h.f64, h.losses, h.mu = nil, nil, nil, nil
	h.first, h.rows = 0, 0
}

// LogitsLoss adds the loss bound to hook, summed over the rows of the
// logits [B,K], to the logits' graph: its forward calls the Go loss row by
// row and keeps dLoss/dlogits in hook, and its gradient is that upstream
// (scaled by the incoming gradient). A graph differentiating it computes
// the loss's input gradient in the pass that computes the logits.
func LogitsLoss(logits *G.Node, hook *LossHook) (*G.Node, error) {
	if s := logits.Shape(); s.Dims() != 2 || !s.Eq(hook.upstream.Shape()) {
		return nil, fmt.Errorf("loss of the logits: logits %v, the hook holds %v", s, hook.upstream.Shape())
	}
	loss, err := G.ApplyOp(&logitsLossOp{hook: hook}, logits)
	if err != nil {
		return nil, fmt.Errorf("loss of the logits: %w", err)
	}
	return loss, nil
}

// apply evaluates the bound loss on the logits z ([B,K]) into h.upstream
// and returns the summed loss.
func (h *LossHook) apply(z *tensor.Dense) (float64, error) {
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
func applyRows[E vec.Float](h *LossHook, z, up []E, k int, loss func(i int, z, up []E) float64) float64 {
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

// logitsLossOp is the Go loss of a LossHook on logits z [B,K]: a scalar,
// the summed loss, whose gradient in z is the upstream the loss wrote.
type logitsLossOp struct {
	pureGoOp
	hook *LossHook
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
	hook   *LossHook
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
	g, err := ScalarOf(in[1])
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
func scaleInto[E vec.Float](dst, src []E, g float64) {
	if g == 1 {
		copy(dst, src)
		return
	}
	for i, v := range src {
		dst[i] = E(g * float64(v))
	}
}
