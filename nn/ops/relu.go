package ops

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	"github.com/sglr-pipe/sglr-pipe/nn/elementwise"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ReLU's gradient op reads the forward output as the mask (dx = g where
// y > 0, else 0: PyTorch's threshold_backward). ReLUs that follow a
// BatchNorm or a max-pooling are fused into those ops (BatchNorm, MaxPool2).

// ReLU adds y = max(x, 0) to x's graph.
func ReLU(x *G.Node) (*G.Node, error) {
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
