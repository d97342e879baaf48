package ops

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	"github.com/sglr-pipe/sglr-pipe/nn/internal/vec"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// The pooling and reshaping layers are ops:
// nn.MaxPool2d(2) (optionally fused with the ReLU before it: max-pooling
// commutes with ReLU, so relu→pool is pool→relu and one op does both),
// F.avg_pool2d(x, 4) followed by flatten for the head of PreAct-ResNet18,
// and x.flatten(1).
//
// The max-pooling op stores the argmax of every window in a buffer it
// allocates once; its gradient op scatters the upstream gradient through
// it. Gradient ops hold a pointer to their forward op and run after it in
// the same pass (they read its output's gradient), so the forward op's
// private buffers are always those of the current pass.

// AvgPoolWindow is the window of AvgPool4: F.avg_pool2d(x, 4), the pooling
// of PreAct-ResNet18's head.
const AvgPoolWindow = 4

// MaxPool2 adds nn.MaxPool2d(2) (2x2 windows, stride 2, no padding,
// floor) on x [N,C,H,W] to x's graph, followed by a ReLU when relu is set.
func MaxPool2(x *G.Node, relu bool) (*G.Node, error) {
	s := x.Shape()
	if s.Dims() != 4 || s[2] < 2 || s[3] < 2 {
		return nil, fmt.Errorf("max_pool2d(2): input %v is not [N,C,H,W] with H, W >= 2", s)
	}
	op := &maxPoolOp{relu: relu, in: s.Clone(), out: tensor.Shape{s[0], s[1], s[2] / 2, s[3] / 2}}
	return G.ApplyOp(op, x)
}

// AvgPool4 adds F.avg_pool2d(x, 4) followed by flatten on x [N,C,H,W]
// with H and W from 4 to 7 to x's graph: the floor pooling reads only the
// top-left 4x4 window of each map and the output is [N,C].
func AvgPool4(x *G.Node) (*G.Node, error) {
	s := x.Shape()
	if s.Dims() != 4 || s[2] < AvgPoolWindow || s[3] < AvgPoolWindow || s[2] >= 2*AvgPoolWindow || s[3] >= 2*AvgPoolWindow {
		return nil, fmt.Errorf("avg_pool2d(%d)+flatten: input %v is not [N,C,H,W] with H, W from %d to %d",
			AvgPoolWindow, s, AvgPoolWindow, 2*AvgPoolWindow-1)
	}
	return G.ApplyOp(&avgPool4Op{in: s.Clone()}, x)
}

// Flatten adds x.flatten(1), [B, ...] → [B, prod(...)], to x's
// graph; a matrix is returned as it is.
func Flatten(x *G.Node) (*G.Node, error) {
	s := x.Shape()
	if s.Dims() == 2 {
		return x, nil
	}
	if s.Dims() < 2 {
		return nil, fmt.Errorf("flatten(1): input %v has no batch and feature axes", s)
	}
	return G.ApplyOp(&reshapeCopyOp{from: s.Clone(), to: tensor.Shape{s[0], s.TotalSize() / s[0]}}, x)
}

// maxPoolOp is nn.MaxPool2d(2) on x [N,C,H,W] → [N,C,H/2,W/2], followed by
// max(·, 0) when relu is set. Ties go to the first maximum in row-major
// window order and NaN propagates, as in PyTorch.
type maxPoolOp struct {
	pureGoOp
	relu    bool
	in, out tensor.Shape
	output  reusedOutput
	// argmax[k] is the index into x of output k's maximum, −1 when the
	// fused ReLU zeroed it (no gradient flows). Written by every run.
	argmax []int32
}

// Arity is 1: x.
func (op *maxPoolOp) Arity() int { return 1 }

// Type is Tensor-4 a → Tensor-4 a.
func (op *maxPoolOp) Type() hm.Type { return tensorFnType(4, 4) }

// InferShape is [N,C,H/2,W/2].
func (op *maxPoolOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if err := checkInputShapes(op, in, op.in); err != nil {
		return nil, err
	}
	return op.out.Clone(), nil
}

// Do pools x into the op's own output.
func (op *maxPoolOp) Do(in ...G.Value) (G.Value, error) {
	if err := checkArity(op, in, 1); err != nil {
		return nil, err
	}
	x, err := floatDense(op, in, 0)
	if err != nil {
		return nil, err
	}
	return op.UsePreallocDo(op.output.get(x.Dtype(), op.out...), x)
}

// UsePreallocDo pools x into prealloc ([N,C,H/2,W/2]).
func (op *maxPoolOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	if err := checkArity(op, in, 1); err != nil {
		return nil, err
	}
	x, err := floatDense(op, in, 0)
	if err != nil {
		return nil, err
	}
	if !x.Shape().Eq(op.in) {
		return nil, fmt.Errorf("%v: input %v, built for %v", op, x.Shape(), op.in)
	}
	y, err := writableOutput(op, prealloc, x.Dtype(), op.out...)
	if err != nil {
		return nil, err
	}
	if n := op.out.TotalSize(); len(op.argmax) != n {
		op.argmax = make([]int32, n)
	}
	planes, h, w := op.in[0]*op.in[1], op.in[2], op.in[3]
	if x.Dtype() == tensor.Float32 {
		maxPool2Kernel(y.Float32s(), op.argmax, x.Float32s(), planes, h, w, op.relu)
	} else {
		maxPool2Kernel(y.Float64s(), op.argmax, x.Float64s(), planes, h, w, op.relu)
	}
	return y, nil
}

// DiffWRT: y is differentiable in x.
func (op *maxPoolOp) DiffWRT(inputs int) []bool { return []bool{true} }

// SymDiff returns dx: g scattered to the argmax of each window.
func (op *maxPoolOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 1 {
		return nil, fmt.Errorf("%v: want 1 input to differentiate, got %d", op, len(inputs))
	}
	dx, err := G.ApplyOp(&maxPoolGradOp{fwd: op}, grad)
	if err != nil {
		return nil, fmt.Errorf("%v: input gradient: %w", op, err)
	}
	return G.Nodes{dx}, nil
}

// WriteHash identifies the op for gorgonia's node deduplication.
func (op *maxPoolOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }

// Hashcode is the FNV hash of WriteHash.
func (op *maxPoolOp) Hashcode() uint32 { return opHash(op) }

// String names the op in graph dumps and errors.
func (op *maxPoolOp) String() string {
	if op.relu {
		return fmt.Sprintf("MaxPool2x2+ReLU%v", op.in)
	}
	return fmt.Sprintf("MaxPool2x2%v", op.in)
}

// maxPoolGradOp is dx [N,C,H,W] of maxPoolOp fwd from the gradient g of
// its output: each g lands on its window's argmax, every other dx is 0.
type maxPoolGradOp struct {
	pureGoOp
	fwd    *maxPoolOp
	output reusedOutput
}

// Arity is 1: g.
func (op *maxPoolGradOp) Arity() int { return 1 }

// Type is Tensor-4 a → Tensor-4 a.
func (op *maxPoolGradOp) Type() hm.Type { return tensorFnType(4, 4) }

// InferShape is the forward op's input shape.
func (op *maxPoolGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if err := checkInputShapes(op, in, op.fwd.out); err != nil {
		return nil, err
	}
	return op.fwd.in.Clone(), nil
}

// Do computes dx into the op's own output.
func (op *maxPoolGradOp) Do(in ...G.Value) (G.Value, error) {
	if err := checkArity(op, in, 1); err != nil {
		return nil, err
	}
	g, err := floatDense(op, in, 0)
	if err != nil {
		return nil, err
	}
	return op.UsePreallocDo(op.output.get(g.Dtype(), op.fwd.in...), g)
}

// UsePreallocDo computes dx into prealloc ([N,C,H,W]).
func (op *maxPoolGradOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	if err := checkArity(op, in, 1); err != nil {
		return nil, err
	}
	g, err := floatDense(op, in, 0)
	if err != nil {
		return nil, err
	}
	if !g.Shape().Eq(op.fwd.out) || len(op.fwd.argmax) != op.fwd.out.TotalSize() {
		return nil, fmt.Errorf("%v: gradient %v for an output %v, or the forward op has not run", op, g.Shape(), op.fwd.out)
	}
	dx, err := writableOutput(op, prealloc, g.Dtype(), op.fwd.in...)
	if err != nil {
		return nil, err
	}
	if g.Dtype() == tensor.Float32 {
		scatterKernel(dx.Float32s(), g.Float32s(), op.fwd.argmax)
	} else {
		scatterKernel(dx.Float64s(), g.Float64s(), op.fwd.argmax)
	}
	return dx, nil
}

// WriteHash identifies the op and its forward op for gorgonia's node
// deduplication: the result depends on the forward op's argmax.
func (op *maxPoolGradOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "%v of %p", op, op.fwd) }

// Hashcode is the FNV hash of WriteHash.
func (op *maxPoolGradOp) Hashcode() uint32 { return opHash(op) }

// String names the op in graph dumps and errors.
func (op *maxPoolGradOp) String() string { return fmt.Sprintf("%vGrad", op.fwd) }

// avgPool4Op is F.avg_pool2d(x, 4) followed by flatten on x [N,C,H,W] with
// H, W from 4 to 7: y[n,c] is the mean of x[n,c,0:4,0:4].
type avgPool4Op struct {
	pureGoOp
	in     tensor.Shape
	output reusedOutput
}

// Arity is 1: x.
func (op *avgPool4Op) Arity() int { return 1 }

// Type is Tensor-4 a → Tensor-2 a.
func (op *avgPool4Op) Type() hm.Type { return tensorFnType(4, 2) }

// InferShape is [N,C].
func (op *avgPool4Op) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if err := checkInputShapes(op, in, op.in); err != nil {
		return nil, err
	}
	return tensor.Shape{op.in[0], op.in[1]}, nil
}

// Do pools x into the op's own output.
func (op *avgPool4Op) Do(in ...G.Value) (G.Value, error) {
	if err := checkArity(op, in, 1); err != nil {
		return nil, err
	}
	x, err := floatDense(op, in, 0)
	if err != nil {
		return nil, err
	}
	return op.UsePreallocDo(op.output.get(x.Dtype(), op.in[:2]...), x)
}

// UsePreallocDo pools x into prealloc ([N,C]).
func (op *avgPool4Op) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	if err := checkArity(op, in, 1); err != nil {
		return nil, err
	}
	x, err := floatDenseLike(op, in, 0, in[0].Dtype(), op.in)
	if err != nil {
		return nil, err
	}
	y, err := writableOutput(op, prealloc, x.Dtype(), op.in[:2]...)
	if err != nil {
		return nil, err
	}
	if x.Dtype() == tensor.Float32 {
		avgPool4Kernel(y.Float32s(), x.Float32s(), op.in[2], op.in[3])
	} else {
		avgPool4Kernel(y.Float64s(), x.Float64s(), op.in[2], op.in[3])
	}
	return y, nil
}

// DiffWRT: y is differentiable in x.
func (op *avgPool4Op) DiffWRT(inputs int) []bool { return []bool{true} }

// SymDiff returns dx: g/16 over each top-left window, 0 elsewhere.
func (op *avgPool4Op) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 1 {
		return nil, fmt.Errorf("%v: want 1 input to differentiate, got %d", op, len(inputs))
	}
	dx, err := G.ApplyOp(&avgPool4GradOp{in: op.in}, grad)
	if err != nil {
		return nil, fmt.Errorf("%v: input gradient: %w", op, err)
	}
	return G.Nodes{dx}, nil
}

// WriteHash identifies the op for gorgonia's node deduplication.
func (op *avgPool4Op) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }

// Hashcode is the FNV hash of WriteHash.
func (op *avgPool4Op) Hashcode() uint32 { return opHash(op) }

// String names the op in graph dumps and errors.
func (op *avgPool4Op) String() string { return fmt.Sprintf("AvgPool4+Flatten%v", op.in) }

// avgPool4GradOp is dx [N,C,H,W] of avgPool4Op from g [N,C].
type avgPool4GradOp struct {
	pureGoOp
	in     tensor.Shape
	output reusedOutput
}

// Arity is 1: g.
func (op *avgPool4GradOp) Arity() int { return 1 }

// Type is Tensor-2 a → Tensor-4 a.
func (op *avgPool4GradOp) Type() hm.Type { return tensorFnType(2, 4) }

// InferShape is the pooled input's shape.
func (op *avgPool4GradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if err := checkInputShapes(op, in, op.in[:2]); err != nil {
		return nil, err
	}
	return op.in.Clone(), nil
}

// Do computes dx into the op's own output.
func (op *avgPool4GradOp) Do(in ...G.Value) (G.Value, error) {
	if err := checkArity(op, in, 1); err != nil {
		return nil, err
	}
	g, err := floatDense(op, in, 0)
	if err != nil {
		return nil, err
	}
	return op.UsePreallocDo(op.output.get(g.Dtype(), op.in...), g)
}

// UsePreallocDo computes dx into prealloc ([N,C,H,W]).
func (op *avgPool4GradOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	if err := checkArity(op, in, 1); err != nil {
		return nil, err
	}
	g, err := floatDenseLike(op, in, 0, in[0].Dtype(), op.in[:2])
	if err != nil {
		return nil, err
	}
	dx, err := writableOutput(op, prealloc, g.Dtype(), op.in...)
	if err != nil {
		return nil, err
	}
	if g.Dtype() == tensor.Float32 {
		avgPool4GradKernel(dx.Float32s(), g.Float32s(), op.in[2], op.in[3])
	} else {
		avgPool4GradKernel(dx.Float64s(), g.Float64s(), op.in[2], op.in[3])
	}
	return dx, nil
}

// WriteHash identifies the op for gorgonia's node deduplication.
func (op *avgPool4GradOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }

// Hashcode is the FNV hash of WriteHash.
func (op *avgPool4GradOp) Hashcode() uint32 { return opHash(op) }

// String names the op in graph dumps and errors.
func (op *avgPool4GradOp) String() string { return fmt.Sprintf("AvgPool4+FlattenGrad%v", op.in) }

// reshapeCopyOp copies x of shape from into its own output of shape to
// (same number of values, row-major order). It is x.flatten(1) and, for the
// gradient, its inverse. Unlike G.Reshape, which makes a new tensor header
// on every run, it reuses one output; the copy is a memmove of the batch.
type reshapeCopyOp struct {
	pureGoOp
	from, to tensor.Shape
	output   reusedOutput
}

// Arity is 1: x.
func (op *reshapeCopyOp) Arity() int { return 1 }

// Type is Tensor-len(from) a → Tensor-len(to) a.
func (op *reshapeCopyOp) Type() hm.Type { return tensorFnType(op.from.Dims(), op.to.Dims()) }

// InferShape is to.
func (op *reshapeCopyOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if err := checkInputShapes(op, in, op.from); err != nil {
		return nil, err
	}
	return op.to.Clone(), nil
}

// Do copies x into the op's own output.
func (op *reshapeCopyOp) Do(in ...G.Value) (G.Value, error) {
	if err := checkArity(op, in, 1); err != nil {
		return nil, err
	}
	x, err := floatDense(op, in, 0)
	if err != nil {
		return nil, err
	}
	return op.UsePreallocDo(op.output.get(x.Dtype(), op.to...), x)
}

// UsePreallocDo copies x into prealloc (shape to).
func (op *reshapeCopyOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	if err := checkArity(op, in, 1); err != nil {
		return nil, err
	}
	x, err := floatDenseLike(op, in, 0, in[0].Dtype(), op.from)
	if err != nil {
		return nil, err
	}
	y, err := writableOutput(op, prealloc, x.Dtype(), op.to...)
	if err != nil {
		return nil, err
	}
	if x.Dtype() == tensor.Float32 {
		copy(y.Float32s(), x.Float32s())
	} else {
		copy(y.Float64s(), x.Float64s())
	}
	return y, nil
}

// DiffWRT: y is differentiable in x.
func (op *reshapeCopyOp) DiffWRT(inputs int) []bool { return []bool{true} }

// SymDiff returns dx: g reshaped back.
func (op *reshapeCopyOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 1 {
		return nil, fmt.Errorf("%v: want 1 input to differentiate, got %d", op, len(inputs))
	}
	dx, err := G.ApplyOp(&reshapeCopyOp{from: op.to, to: op.from}, grad)
	if err != nil {
		return nil, fmt.Errorf("%v: input gradient: %w", op, err)
	}
	return G.Nodes{dx}, nil
}

// WriteHash identifies the op for gorgonia's node deduplication.
func (op *reshapeCopyOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }

// Hashcode is the FNV hash of WriteHash.
func (op *reshapeCopyOp) Hashcode() uint32 { return opHash(op) }

// String names the op in graph dumps and errors.
func (op *reshapeCopyOp) String() string { return fmt.Sprintf("ReshapeCopy%v→%v", op.from, op.to) }

// maxPool2Kernel pools planes maps of h×w values of x into y (h/2×w/2 each)
// and records each window's argmax (−1 when relu zeroes the output). The
// maximum is taken first and its position found by comparison, which
// branches less than a running argmax.
func maxPool2Kernel[E vec.Float](y []E, argmax []int32, x []E, planes, h, w int, relu bool) {
	oh, ow := h/2, w/2
	k := 0
	for p := range planes {
		base := p * h * w
		for i := range oh {
			r0 := base + 2*i*w
			r1 := r0 + w
			row0, row1 := x[r0:r0+2*ow], x[r1:r1+2*ow]
			ys, as := y[k:k+ow], argmax[k:k+ow]
			for j := range ys {
				c := 2 * j
				a, b, cc, d := row0[c], row0[c+1], row1[c], row1[c+1]
				m := max(max(a, b), max(cc, d)) // NaN if any is NaN
				at := int32(r1 + c + 1)
				if cc == m {
					at = int32(r1 + c)
				}
				if b == m {
					at = int32(r0 + c + 1)
				}
				if a == m {
					at = int32(r0 + c)
				}
				if m != m { // the first NaN of the window
					at = int32(r1 + c + 1)
					if cc != cc {
						at = int32(r1 + c)
					}
					if b != b {
						at = int32(r0 + c + 1)
					}
					if a != a {
						at = int32(r0 + c)
					}
				}
				if relu && m <= 0 {
					m, at = 0, -1
				}
				ys[j], as[j] = m, at
			}
			k += ow
		}
	}
}

// scatterKernel clears dx and adds g[k] at dx[argmax[k]] (skipping −1).
func scatterKernel[E vec.Float](dx, g []E, argmax []int32) {
	clear(dx)
	for k, at := range argmax {
		if at >= 0 {
			dx[at] += g[k]
		}
	}
}

// avgPool4Kernel writes the mean of the top-left 4x4 window of each h×w map
// of x into y.
func avgPool4Kernel[E vec.Float](y, x []E, h, w int) {
	for p := range y {
		base := p * h * w
		var s E
		for i := range AvgPoolWindow {
			for _, v := range x[base+i*w : base+i*w+AvgPoolWindow] {
				s += v
			}
		}
		y[p] = s / (AvgPoolWindow * AvgPoolWindow)
	}
}

// avgPool4GradKernel writes g/16 over the top-left 4x4 window of each h×w
// map of dx and 0 elsewhere.
func avgPool4GradKernel[E vec.Float](dx, g []E, h, w int) {
	clear(dx)
	for p, v := range g {
		v /= AvgPoolWindow * AvgPoolWindow
		base := p * h * w
		for i := range AvgPoolWindow {
			row := dx[base+i*w : base+i*w+AvgPoolWindow]
			for j := range row {
				row[j] = v
			}
		}
	}
}
