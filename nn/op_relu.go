package nn

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	"github.com/sglr-pipe/sglr-pipe/nn/elementwise"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// This file holds ReLU as a custom gorgonia op, replacing G.Rectify: the
// forward op writes max(x, 0) into an output it owns (allocated on the first
// run, reused after), and its gradient op reads the forward output as the
// mask (dx = g where y > 0, else 0: PyTorch's threshold_backward), so no
// comparison tensor is built on every pass. ReLUs that follow a BatchNorm or
// a max-pooling are fused into those ops instead (op_batchnorm.go,
// op_pool.go). The helpers at the end are shared by the ops of
// op_batchnorm.go, op_pool.go and op_softmax_loss.go.
//
// Like linearOp (op_linear.go), every op here reads its inputs' backing
// slices through Float32s/Float64s, which, unlike Dense.Data, allocate
// nothing, and keeps any state its gradient ops need in private buffers
// allocated once per graph.

// reluForward adds y = max(x, 0) to x's graph.
func reluForward(x *G.Node) (*G.Node, error) {
	return G.ApplyOp(&reluOp{}, x)
}

// reluOp is y = max(x, 0), elementwise, any shape. It differentiates into
// reluGradOp.
type reluOp struct {
	pureGoOp
	out reusedOutput
}

// Arity is 1: x.
func (op *reluOp) Arity() int { return 1 }

// Type is a → a.
func (op *reluOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(a, a)
}

// InferShape is x's shape.
func (op *reluOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return sameShapeAs(op, 1, 0, in)
}

// Do computes y into the op's own output.
func (op *reluOp) Do(in ...G.Value) (G.Value, error) {
	if err := checkArity(op, in, 1); err != nil {
		return nil, err
	}
	x, err := floatDense(op, in, 0)
	if err != nil {
		return nil, err
	}
	return op.UsePreallocDo(op.out.get(x.Dtype(), x.Shape()...), x)
}

// UsePreallocDo computes y into prealloc (x's shape and dtype).
func (op *reluOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	if err := checkArity(op, in, 1); err != nil {
		return nil, err
	}
	x, err := floatDense(op, in, 0)
	if err != nil {
		return nil, err
	}
	y, err := writableOutput(op, prealloc, x.Dtype(), x.Shape()...)
	if err != nil {
		return nil, err
	}
	if x.Dtype() == tensor.Float32 {
		elementwise.ReLU(y.Float32s(), x.Float32s())
	} else {
		elementwise.ReLU(y.Float64s(), x.Float64s())
	}
	return y, nil
}

// DiffWRT: y is differentiable in x.
func (op *reluOp) DiffWRT(inputs int) []bool { return []bool{true} }

// SymDiff returns dx = g ⊙ [y > 0].
func (op *reluOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 1 {
		return nil, fmt.Errorf("%v: want 1 input to differentiate, got %d", op, len(inputs))
	}
	dx, err := G.ApplyOp(&reluGradOp{}, output, grad)
	if err != nil {
		return nil, fmt.Errorf("%v: input gradient: %w", op, err)
	}
	return G.Nodes{dx}, nil
}

// WriteHash identifies the op for gorgonia's node deduplication.
func (op *reluOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }

// Hashcode is the FNV hash of WriteHash.
func (op *reluOp) Hashcode() uint32 { return opHash(op) }

// String names the op in graph dumps and errors.
func (op *reluOp) String() string { return "ReLU" }

// reluGradOp is dx = g ⊙ [y > 0] for the ReLU output y and the upstream
// gradient g (same shape): the gradient of reluOp.
type reluGradOp struct {
	pureGoOp
	out reusedOutput
}

// Arity is 2: y and g.
func (op *reluGradOp) Arity() int { return 2 }

// Type is a → a → a.
func (op *reluGradOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(a, a, a)
}

// InferShape is y's shape.
func (op *reluGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return sameShapeAs(op, 2, 0, in)
}

// Do computes dx into the op's own output.
func (op *reluGradOp) Do(in ...G.Value) (G.Value, error) {
	if err := checkArity(op, in, 2); err != nil {
		return nil, err
	}
	y, err := floatDense(op, in, 0)
	if err != nil {
		return nil, err
	}
	return op.UsePreallocDo(op.out.get(y.Dtype(), y.Shape()...), in...)
}

// UsePreallocDo computes dx into prealloc (y's shape and dtype).
func (op *reluGradOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	if err := checkArity(op, in, 2); err != nil {
		return nil, err
	}
	y, g, err := sameShapeFloats(op, in)
	if err != nil {
		return nil, err
	}
	dx, err := writableOutput(op, prealloc, y.Dtype(), y.Shape()...)
	if err != nil {
		return nil, err
	}
	if y.Dtype() == tensor.Float32 {
		elementwise.ReLUGrad(dx.Float32s(), y.Float32s(), g.Float32s())
	} else {
		elementwise.ReLUGrad(dx.Float64s(), y.Float64s(), g.Float64s())
	}
	return dx, nil
}

// WriteHash identifies the op for gorgonia's node deduplication.
func (op *reluGradOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }

// Hashcode is the FNV hash of WriteHash.
func (op *reluGradOp) Hashcode() uint32 { return opHash(op) }

// String names the op in graph dumps and errors.
func (op *reluGradOp) String() string { return "ReLUGrad(g⊙[y>0])" }

// checkArity reports an op run on the wrong number of inputs.
func checkArity(op G.Op, in []G.Value, want int) error {
	if len(in) != want {
		return fmt.Errorf("%v: want %d inputs, got %d", op, want, len(in))
	}
	return nil
}

// writableOutput is outputDense (op_linear.go) for the ops of this file and
// op_batchnorm.go, op_pool.go, op_softmax_loss.go, which also refuse a
// view: they write the backing slice from its start.
func writableOutput(op G.Op, prealloc G.Value, dt tensor.Dtype, shape ...int) (*tensor.Dense, error) {
	d, err := outputDense(op, prealloc, dt, shape...)
	if err != nil {
		return nil, err
	}
	if d.IsView() {
		return nil, fmt.Errorf("%v: preallocated output %v is a view", op, d.Shape())
	}
	return d, nil
}

// floatDense returns input i of an op as a dense float32 or float64 tensor,
// without allocating.
func floatDense(op G.Op, in []G.Value, i int) (*tensor.Dense, error) {
	d, ok := in[i].(*tensor.Dense)
	if !ok || !d.IsNativelyAccessible() || d.IsView() {
		return nil, fmt.Errorf("%v: input %d (%T) is not a dense tensor", op, i, in[i])
	}
	if dt := d.Dtype(); dt != tensor.Float32 && dt != tensor.Float64 {
		return nil, fmt.Errorf("%v: input %d has dtype %v, want float32 or float64", op, i, dt)
	}
	return d, nil
}

// floatDenseLike returns input i of an op as a dense tensor of dtype dt and
// the given shape.
func floatDenseLike(op G.Op, in []G.Value, i int, dt tensor.Dtype, shape tensor.Shape) (*tensor.Dense, error) {
	d, err := floatDense(op, in, i)
	if err != nil {
		return nil, err
	}
	if d.Dtype() != dt || !d.Shape().Eq(shape) {
		return nil, fmt.Errorf("%v: input %d is %v %v, want %v %v", op, i, d.Dtype(), d.Shape(), dt, shape)
	}
	return d, nil
}

// sameShapeFloats returns an op's two inputs, dense tensors of one float
// dtype and one shape.
func sameShapeFloats(op G.Op, in []G.Value) (a, b *tensor.Dense, err error) {
	if a, err = floatDense(op, in, 0); err != nil {
		return nil, nil, err
	}
	if b, err = floatDenseLike(op, in, 1, a.Dtype(), a.Shape()); err != nil {
		return nil, nil, err
	}
	return a, b, nil
}

// sameShapeAs is the InferShape of an op with arity inputs whose output has
// the shape of input i.
func sameShapeAs(op G.Op, arity, i int, in []G.DimSizer) (tensor.Shape, error) {
	if len(in) != arity {
		return nil, fmt.Errorf("%v: want %d input shapes, got %d", op, arity, len(in))
	}
	s, ok := in[i].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("%v: input %d has no tensor shape (%v)", op, i, in[i])
	}
	return s.Clone(), nil
}
