package ops

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// torch.nn.functional.conv2d (no bias, square kernel, equal stride and zero
// padding on both axes, dilation 1) is the forward op and one op per
// gradient (input gradient: col2im of Wᵀ·g, or for a size-preserving
// stride-1 convolution the convolution of g by the flipped kernel; weight
// gradient: Σ_b g_b·colᵀ). The weight is read in place in PyTorch's layout
// [O,C,k,k], each image is unrolled into a ConvWorkspace (conv_kernels.go)
// and the product is written straight into the NCHW output. The gradient
// ops are not differentiable themselves: a graph differentiates once.

// Conv2d adds y = conv2d(x, w, stride, padding) to x's graph for x
// [B,C,H,W] and w [O,C,k,k], and returns y [B,O,Ho,Wo] with
// Ho = (H + 2·pad − k)/stride + 1 (and Wo alike). The op and its gradient
// ops take their scratch memory from shared, which every convolution of
// one graph may share (a graph's ops run one at a time); nil gives the op a
// workspace of its own.
func Conv2d(x, w *G.Node, stride, pad int, shared *ConvWorkspace) (*G.Node, error) {
	xs, ws := x.Shape(), w.Shape()
	if xs.Dims() != 4 || ws.Dims() != 4 || xs[1] != ws[1] || ws[2] != ws[3] {
		return nil, fmt.Errorf("conv2d: input %v and weight %v do not fit [B,C,H,W] and [O,C,k,k]", xs, ws)
	}
	if _, ok := newConvGeometry(xs[0], xs[1], xs[2], xs[3], ws[0], ws[2], stride, pad); !ok {
		return nil, fmt.Errorf("conv2d: kernel %dx%d with stride %d and padding %d does not fit input %v", ws[2], ws[3], stride, pad, xs)
	}
	return G.ApplyOp(&conv2dOp{stride: stride, pad: pad, ws: shared}, x, w)
}

// conv2dOp is y = conv2d(x, w) (inputs x [B,C,H,W] and w [O,C,k,k]; output
// [B,O,Ho,Wo]). It differentiates symbolically into conv2dInputGradOp and
// conv2dWeightGradOp.
type conv2dOp struct {
	pureGoOp
	stride, pad int
	out         reusedOutput
	ws          *ConvWorkspace
}

// Arity is 2: x and w.
func (op *conv2dOp) Arity() int { return 2 }

// Type is Tensor-4 a → Tensor-4 a → Tensor-4 a.
func (op *conv2dOp) Type() hm.Type { return tensor4BinaryType() }

// InferShape is [B,O,Ho,Wo] from x [B,C,H,W] and w [O,C,k,k].
func (op *conv2dOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	xs, ws, err := twoTensor4Shapes(in...)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	g, err := op.geometry(xs, ws)
	if err != nil {
		return nil, err
	}
	return g.outputShape().shape(), nil
}

// Do computes y into the op's own output.
func (op *conv2dOp) Do(in ...G.Value) (G.Value, error) {
	x, w, err := denseTensor4Inputs(op, in)
	if err != nil {
		return nil, err
	}
	g, err := op.geometry(x.Shape(), w.Shape())
	if err != nil {
		return nil, err
	}
	return op.UsePreallocDo(reusedOutput4(&op.out, x.Dtype(), g.outputShape()), x, w)
}

// UsePreallocDo computes y into prealloc ([B,O,Ho,Wo], the inputs' dtype).
func (op *conv2dOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	x, w, err := denseTensor4Inputs(op, in)
	if err != nil {
		return nil, err
	}
	g, err := op.geometry(x.Shape(), w.Shape())
	if err != nil {
		return nil, err
	}
	y, err := outputDense4(op, prealloc, x.Dtype(), g.outputShape())
	if err != nil {
		return nil, err
	}
	if y.Dtype() == tensor.Float32 {
		convForward(g, x.Float32s(), w.Float32s(), y.Float32s(), &scratch(&op.ws).f32, sgemm)
	} else {
		convForward(g, x.Float64s(), w.Float64s(), y.Float64s(), &scratch(&op.ws).f64, dgemm)
	}
	return y, nil
}

// DiffWRT: y is differentiable in x and w.
func (op *conv2dOp) DiffWRT(inputs int) []bool { return []bool{true, true} }

// SymDiff returns the nodes dx (conv2dInputGradOp of grad and w) and dw
// (conv2dWeightGradOp of grad and x).
func (op *conv2dOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 2 {
		return nil, fmt.Errorf("%v: want 2 inputs to differentiate, got %d", op, len(inputs))
	}
	x, w := inputs[0], inputs[1]
	xs, ws := x.Shape(), w.Shape()
	if xs.Dims() != 4 || ws.Dims() != 4 {
		return nil, fmt.Errorf("%v: input %v and weight %v are not both 4-D", op, xs, ws)
	}
	dx, err := G.ApplyOp(&conv2dInputGradOp{stride: op.stride, pad: op.pad, inH: xs[2], inW: xs[3], ws: op.ws}, grad, w)
	if err != nil {
		return nil, fmt.Errorf("%v: input gradient: %w", op, err)
	}
	dw, err := G.ApplyOp(&conv2dWeightGradOp{stride: op.stride, pad: op.pad, k: ws[2], ws: op.ws}, grad, x)
	if err != nil {
		return nil, fmt.Errorf("%v: weight gradient: %w", op, err)
	}
	return G.Nodes{dx, dw}, nil
}

// WriteHash identifies the op (with its stride and padding) for gorgonia's
// node deduplication.
func (op *conv2dOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }

// Hashcode is the FNV hash of WriteHash.
func (op *conv2dOp) Hashcode() uint32 { return opHash(op) }

// String names the op in graph dumps and errors.
func (op *conv2dOp) String() string {
	return fmt.Sprintf("Conv2d(stride %d, pad %d)", op.stride, op.pad)
}

// geometry checks x [B,C,H,W] against w [O,C,k,k] and the op's stride and
// padding.
func (op *conv2dOp) geometry(xs, ws tensor.Shape) (convGeometry, error) {
	if xs[1] != ws[1] || ws[2] != ws[3] {
		return convGeometry{}, fmt.Errorf("%v: input %v and weight %v do not fit [B,C,H,W] and [O,C,k,k]", op, xs, ws)
	}
	g, ok := newConvGeometry(xs[0], xs[1], xs[2], xs[3], ws[0], ws[2], op.stride, op.pad)
	if !ok {
		return convGeometry{}, fmt.Errorf("%v: weight %v does not fit input %v", op, ws, xs)
	}
	return g, nil
}

// conv2dInputGradOp is dx = ∂⟨y,g⟩/∂x for y = conv2d(x, w): inputs g
// [B,O,Ho,Wo] and w [O,C,k,k], output [B,C,H,W]. H and W are stored: with a
// stride above 1 several input sizes give the same output size.
type conv2dInputGradOp struct {
	pureGoOp
	stride, pad int
	inH, inW    int
	out         reusedOutput
	ws          *ConvWorkspace
}

// Arity is 2: g and w.
func (op *conv2dInputGradOp) Arity() int { return 2 }

// Type is Tensor-4 a → Tensor-4 a → Tensor-4 a.
func (op *conv2dInputGradOp) Type() hm.Type { return tensor4BinaryType() }

// InferShape is [B,C,H,W] from g [B,O,Ho,Wo] and w [O,C,k,k].
func (op *conv2dInputGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	gs, ws, err := twoTensor4Shapes(in...)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	g, err := op.geometry(gs, ws)
	if err != nil {
		return nil, err
	}
	return g.inputShape().shape(), nil
}

// Do computes dx into the op's own output.
func (op *conv2dInputGradOp) Do(in ...G.Value) (G.Value, error) {
	gy, w, err := denseTensor4Inputs(op, in)
	if err != nil {
		return nil, err
	}
	g, err := op.geometry(gy.Shape(), w.Shape())
	if err != nil {
		return nil, err
	}
	return op.UsePreallocDo(reusedOutput4(&op.out, gy.Dtype(), g.inputShape()), gy, w)
}

// UsePreallocDo computes dx into prealloc ([B,C,H,W]).
func (op *conv2dInputGradOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	gy, w, err := denseTensor4Inputs(op, in)
	if err != nil {
		return nil, err
	}
	g, err := op.geometry(gy.Shape(), w.Shape())
	if err != nil {
		return nil, err
	}
	dx, err := outputDense4(op, prealloc, gy.Dtype(), g.inputShape())
	if err != nil {
		return nil, err
	}
	if dx.Dtype() == tensor.Float32 {
		convInputGrad(g, gy.Float32s(), w.Float32s(), dx.Float32s(), &scratch(&op.ws).f32, sgemm)
	} else {
		convInputGrad(g, gy.Float64s(), w.Float64s(), dx.Float64s(), &scratch(&op.ws).f64, dgemm)
	}
	return dx, nil
}

// WriteHash identifies the op for gorgonia's node deduplication.
func (op *conv2dInputGradOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }

// Hashcode is the FNV hash of WriteHash.
func (op *conv2dInputGradOp) Hashcode() uint32 { return opHash(op) }

// String names the op in graph dumps and errors.
func (op *conv2dInputGradOp) String() string {
	return fmt.Sprintf("Conv2dInputGrad(stride %d, pad %d, input %dx%d)", op.stride, op.pad, op.inH, op.inW)
}

// geometry checks g [B,O,Ho,Wo] against w [O,C,k,k] and the stored input
// size, stride and padding.
func (op *conv2dInputGradOp) geometry(gs, ws tensor.Shape) (convGeometry, error) {
	if gs[1] != ws[0] || ws[2] != ws[3] {
		return convGeometry{}, fmt.Errorf("%v: gradient %v and weight %v do not fit [B,O,Ho,Wo] and [O,C,k,k]", op, gs, ws)
	}
	g, ok := newConvGeometry(gs[0], ws[1], op.inH, op.inW, ws[0], ws[2], op.stride, op.pad)
	if !ok || g.outH != gs[2] || g.outW != gs[3] {
		return convGeometry{}, fmt.Errorf("%v: gradient %v is not the output of weight %v", op, gs, ws)
	}
	return g, nil
}

// conv2dWeightGradOp is dw = ∂⟨y,g⟩/∂w for y = conv2d(x, w): inputs g
// [B,O,Ho,Wo] and x [B,C,H,W], output [O,C,k,k].
type conv2dWeightGradOp struct {
	pureGoOp
	stride, pad, k int
	out            reusedOutput
	ws             *ConvWorkspace
}

// Arity is 2: g and x.
func (op *conv2dWeightGradOp) Arity() int { return 2 }

// Type is Tensor-4 a → Tensor-4 a → Tensor-4 a.
func (op *conv2dWeightGradOp) Type() hm.Type { return tensor4BinaryType() }

// InferShape is [O,C,k,k] from g [B,O,Ho,Wo] and x [B,C,H,W].
func (op *conv2dWeightGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	gs, xs, err := twoTensor4Shapes(in...)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	g, err := op.geometry(gs, xs)
	if err != nil {
		return nil, err
	}
	return g.weightShape().shape(), nil
}

// Do computes dw into the op's own output.
func (op *conv2dWeightGradOp) Do(in ...G.Value) (G.Value, error) {
	gy, x, err := denseTensor4Inputs(op, in)
	if err != nil {
		return nil, err
	}
	g, err := op.geometry(gy.Shape(), x.Shape())
	if err != nil {
		return nil, err
	}
	return op.UsePreallocDo(reusedOutput4(&op.out, gy.Dtype(), g.weightShape()), gy, x)
}

// UsePreallocDo computes dw into prealloc ([O,C,k,k]).
func (op *conv2dWeightGradOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	gy, x, err := denseTensor4Inputs(op, in)
	if err != nil {
		return nil, err
	}
	g, err := op.geometry(gy.Shape(), x.Shape())
	if err != nil {
		return nil, err
	}
	dw, err := outputDense4(op, prealloc, gy.Dtype(), g.weightShape())
	if err != nil {
		return nil, err
	}
	if dw.Dtype() == tensor.Float32 {
		convWeightGrad(g, gy.Float32s(), x.Float32s(), dw.Float32s(), &scratch(&op.ws).f32, sgemm)
	} else {
		convWeightGrad(g, gy.Float64s(), x.Float64s(), dw.Float64s(), &scratch(&op.ws).f64, dgemm)
	}
	return dw, nil
}

// WriteHash identifies the op for gorgonia's node deduplication.
func (op *conv2dWeightGradOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }

// Hashcode is the FNV hash of WriteHash.
func (op *conv2dWeightGradOp) Hashcode() uint32 { return opHash(op) }

// String names the op in graph dumps and errors.
func (op *conv2dWeightGradOp) String() string {
	return fmt.Sprintf("Conv2dWeightGrad(stride %d, pad %d, kernel %d)", op.stride, op.pad, op.k)
}

// geometry checks g [B,O,Ho,Wo] against x [B,C,H,W] and the stored kernel
// size, stride and padding.
func (op *conv2dWeightGradOp) geometry(gs, xs tensor.Shape) (convGeometry, error) {
	g, ok := newConvGeometry(xs[0], xs[1], xs[2], xs[3], gs[1], op.k, op.stride, op.pad)
	if !ok || gs[0] != xs[0] || g.outH != gs[2] || g.outW != gs[3] {
		return convGeometry{}, fmt.Errorf("%v: gradient %v is not the output of a convolution of input %v", op, gs, xs)
	}
	return g, nil
}

// ConvWorkspace is scratch memory of the convolution ops, grown on first
// use and reused: one per graph, shared by its convolutions, which run one
// at a time, so that a ResNet keeps one largest workspace instead of one
// per layer and direction. One slice per dtype; a graph has one dtype.
type ConvWorkspace struct {
	f32 []float32
	f64 []float64
}

// scratch is *ws, created on first use for an op built without a shared
// workspace.
func scratch(ws **ConvWorkspace) *ConvWorkspace {
	if *ws == nil {
		*ws = new(ConvWorkspace)
	}
	return *ws
}

// denseTensor4Inputs checks that an op got two dense, contiguous 4-D
// float32 or float64 tensors of one dtype. Unlike denseFloats it allocates
// nothing, so that a steady-state pass does not either.
func denseTensor4Inputs(op G.Op, in []G.Value) (a, b *tensor.Dense, err error) {
	if len(in) != 2 {
		return nil, nil, fmt.Errorf("%v: want 2 inputs, got %d", op, len(in))
	}
	a, okA := in[0].(*tensor.Dense)
	b, okB := in[1].(*tensor.Dense)
	if !okA || !okB || !a.IsNativelyAccessible() || !b.IsNativelyAccessible() || a.IsMaterializable() || b.IsMaterializable() {
		return nil, nil, fmt.Errorf("%v: inputs (%T, %T) are not both dense, contiguous tensors", op, in[0], in[1])
	}
	if dt := a.Dtype(); (dt != tensor.Float32 && dt != tensor.Float64) || b.Dtype() != dt {
		return nil, nil, fmt.Errorf("%v: inputs have dtypes %v and %v, want both float32 or both float64", op, a.Dtype(), b.Dtype())
	}
	if a.Dims() != 4 || b.Dims() != 4 {
		return nil, nil, fmt.Errorf("%v: inputs %v and %v are not both 4-D", op, a.Shape(), b.Shape())
	}
	return a, b, nil
}

// shape4 is a 4-D shape held by value, so that the checks a steady-state
// pass makes allocate nothing.
type shape4 [4]int

// shape is s as a tensor.Shape.
func (s shape4) shape() tensor.Shape { return tensor.Shape{s[0], s[1], s[2], s[3]} }

// matches reports whether t is s.
func (s shape4) matches(t tensor.Shape) bool {
	return len(t) == 4 && t[0] == s[0] && t[1] == s[1] && t[2] == s[2] && t[3] == s[3]
}

// reusedOutput4 is r's tensor when it already has dtype dt and shape s,
// and a new one (kept in r) otherwise.
func reusedOutput4(r *reusedOutput, dt tensor.Dtype, s shape4) *tensor.Dense {
	if r.t != nil && r.t.Dtype() == dt && s.matches(r.t.Shape()) {
		return r.t
	}
	return r.get(dt, s.shape()...)
}

// outputDense4 checks that prealloc is a dense, contiguous tensor of dtype
// dt and shape s, and returns it.
func outputDense4(op G.Op, prealloc G.Value, dt tensor.Dtype, s shape4) (*tensor.Dense, error) {
	d, ok := prealloc.(*tensor.Dense)
	if !ok || d.Dtype() != dt || !s.matches(d.Shape()) || !d.IsNativelyAccessible() || d.IsMaterializable() {
		return nil, fmt.Errorf("%v: preallocated output %v (%T) is not a dense %v tensor of shape %v", op, prealloc.Shape(), prealloc, dt, s.shape())
	}
	return d, nil
}

// twoTensor4Shapes reads two input shapes that must both be 4-D.
func twoTensor4Shapes(in ...G.DimSizer) (a, b tensor.Shape, err error) {
	if len(in) != 2 {
		return nil, nil, fmt.Errorf("want 2 input shapes, got %d", len(in))
	}
	a, okA := in[0].(tensor.Shape)
	b, okB := in[1].(tensor.Shape)
	if !okA || !okB || a.Dims() != 4 || b.Dims() != 4 {
		return nil, nil, fmt.Errorf("shapes %v and %v are not both 4-D", in[0], in[1])
	}
	return a, b, nil
}

// tensor4BinaryType is Tensor-4 a → Tensor-4 a → Tensor-4 a.
func tensor4BinaryType() hm.Type {
	a := hm.TypeVariable('a')
	t4 := G.TensorType{Dims: 4, Of: a}
	return hm.NewFnType(t4, t4, t4)
}
