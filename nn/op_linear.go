package nn

import (
	"fmt"
	"hash"
	"hash/fnv"

	"github.com/chewxy/hm"
	"gonum.org/v1/gonum/blas"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// This file holds torch.nn.Linear as custom gorgonia ops: the forward op
// y = x·Wᵀ + b and, for gorgonia's symbolic differentiation, one op per
// gradient (dx = g·W, dW = gᵀ·x, db = column sums of g). They replace
// G.Mul(x, G.Transpose(W)) + BroadcastAdd, which copied Wᵀ through a generic
// iterator on every pass and allocated every output afresh: here W is read in
// place in PyTorch's layout [out,in] (the GEMM transposes on the fly, through
// the BLAS gorgonia uses: gonum's pure Go one or OpenBLAS with -tags
// openblas), and each op writes into an output it allocates once, on its
// first run, and reuses on every later run of the same graph.
//
// Owning the output is safe under a TapeMachine: each node runs once per
// run, a value later overwritten in place by another op is dead by then (the
// compiler only lets an op overwrite an input whose last reader it is), and
// the values read after a run (the Net's watch list) are copied out by the
// machine. A Net is not used by several goroutines at once, so neither are
// its ops.

// linearForward adds y = x·Wᵀ + b to x's graph for x [B,in], W [out,in] and
// b [out], and returns y [B,out].
func linearForward(x, w, b *G.Node) (*G.Node, error) {
	xs, ws, bs := x.Shape(), w.Shape(), b.Shape()
	if xs.Dims() != 2 || ws.Dims() != 2 || bs.Dims() != 1 || xs[1] != ws[1] || bs[0] != ws[0] {
		return nil, fmt.Errorf("linear: x %v, weight %v and bias %v do not fit [B,in], [out,in], [out]", xs, ws, bs)
	}
	return G.ApplyOp(&linearOp{}, x, w, b)
}

// linearOp is y = x·Wᵀ + b (inputs x [B,in], W [out,in], b [out]; output
// [B,out]). It differentiates symbolically into linearInputGradOp,
// linearWeightGradOp and biasGradOp.
type linearOp struct {
	pureGoOp
	out reusedOutput
}

// Arity is 3: x, W and b.
func (op *linearOp) Arity() int { return 3 }

// Type is Tensor-2 a → Tensor-2 a → Tensor-1 a → Tensor-2 a.
func (op *linearOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	mat, vec := G.TensorType{Dims: 2, Of: a}, G.TensorType{Dims: 1, Of: a}
	return hm.NewFnType(mat, mat, vec, mat)
}

// InferShape is [B,out] from x [B,in] and W [out,in].
func (op *linearOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if len(in) != 3 {
		return nil, fmt.Errorf("linear: want 3 input shapes, got %d", len(in))
	}
	xs, ws, err := twoMatrixShapes(in[0], in[1])
	if err != nil {
		return nil, fmt.Errorf("linear: %w", err)
	}
	if xs[1] != ws[1] {
		return nil, fmt.Errorf("linear: x %v and weight %v disagree on the input width", xs, ws)
	}
	return tensor.Shape{xs[0], ws[0]}, nil
}

// Do computes y into the op's own output.
func (op *linearOp) Do(in ...G.Value) (G.Value, error) {
	x, w, b, err := denseInputs3(op, in)
	if err != nil {
		return nil, err
	}
	return op.UsePreallocDo(op.out.get(x.Dtype(), x.Shape()[0], w.Shape()[0]), x, w, b)
}

// UsePreallocDo computes y into prealloc ([B,out], the inputs' dtype).
func (op *linearOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	x, w, b, err := denseInputs3(op, in)
	if err != nil {
		return nil, err
	}
	bsz, nin, nout := x.Shape()[0], x.Shape()[1], w.Shape()[0]
	if w.Shape()[1] != nin || b.Shape().TotalSize() != nout {
		return nil, fmt.Errorf("%v: x %v, weight %v, bias %v", op, x.Shape(), w.Shape(), b.Shape())
	}
	y, err := outputDense(op, prealloc, x.Dtype(), bsz, nout)
	if err != nil {
		return nil, err
	}
	switch y.Dtype() {
	case tensor.Float32:
		yd := y.Float32s()
		fillRowsWith(yd, b.Float32s())
		G.WhichBLAS().Sgemm(blas.NoTrans, blas.Trans, bsz, nout, nin, 1, x.Float32s(), nin, w.Float32s(), nin, 1, yd, nout)
	case tensor.Float64:
		yd := y.Float64s()
		fillRowsWith(yd, b.Float64s())
		G.WhichBLAS().Dgemm(blas.NoTrans, blas.Trans, bsz, nout, nin, 1, x.Float64s(), nin, w.Float64s(), nin, 1, yd, nout)
	}
	return y, nil
}

// DiffWRT: y is differentiable in x, W and b.
func (op *linearOp) DiffWRT(inputs int) []bool { return []bool{true, true, true} }

// SymDiff returns the nodes dx = g·W, dW = gᵀ·x and db = Σ_rows g.
func (op *linearOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 3 {
		return nil, fmt.Errorf("%v: want 3 inputs to differentiate, got %d", op, len(inputs))
	}
	x, w := inputs[0], inputs[1]
	dx, err := G.ApplyOp(&linearInputGradOp{}, grad, w)
	if err != nil {
		return nil, fmt.Errorf("%v: input gradient: %w", op, err)
	}
	dw, err := G.ApplyOp(&linearWeightGradOp{}, grad, x)
	if err != nil {
		return nil, fmt.Errorf("%v: weight gradient: %w", op, err)
	}
	db, err := G.ApplyOp(&biasGradOp{}, grad)
	if err != nil {
		return nil, fmt.Errorf("%v: bias gradient: %w", op, err)
	}
	return G.Nodes{dx, dw, db}, nil
}

// WriteHash identifies the op for gorgonia's node deduplication.
func (op *linearOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }

// Hashcode is the FNV hash of WriteHash.
func (op *linearOp) Hashcode() uint32 { return opHash(op) }

// String names the op in graph dumps and errors.
func (op *linearOp) String() string { return "Linear(x·Wᵀ+b)" }

// linearInputGradOp is dx = g·W for g [B,out] and W [out,in]: the gradient
// of linearOp with respect to x.
type linearInputGradOp struct {
	pureGoOp
	out reusedOutput
}

// Arity is 2: g and W.
func (op *linearInputGradOp) Arity() int { return 2 }

// Type is Tensor-2 a → Tensor-2 a → Tensor-2 a.
func (op *linearInputGradOp) Type() hm.Type { return matrixBinaryType() }

// InferShape is [B,in] from g [B,out] and W [out,in].
func (op *linearInputGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	gs, ws, err := twoMatrixShapes(in...)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	if gs[1] != ws[0] {
		return nil, fmt.Errorf("%v: gradient %v and weight %v disagree on the output width", op, gs, ws)
	}
	return tensor.Shape{gs[0], ws[1]}, nil
}

// Do computes dx into the op's own output.
func (op *linearInputGradOp) Do(in ...G.Value) (G.Value, error) {
	g, w, err := denseInputs2(op, in)
	if err != nil {
		return nil, err
	}
	return op.UsePreallocDo(op.out.get(g.Dtype(), g.Shape()[0], w.Shape()[1]), g, w)
}

// UsePreallocDo computes dx into prealloc ([B,in]).
func (op *linearInputGradOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	g, w, err := denseInputs2(op, in)
	if err != nil {
		return nil, err
	}
	bsz, nout, nin := g.Shape()[0], g.Shape()[1], w.Shape()[1]
	if w.Shape()[0] != nout {
		return nil, fmt.Errorf("%v: gradient %v, weight %v", op, g.Shape(), w.Shape())
	}
	dx, err := outputDense(op, prealloc, g.Dtype(), bsz, nin)
	if err != nil {
		return nil, err
	}
	switch dx.Dtype() {
	case tensor.Float32:
		d := dx.Float32s()
		G.WhichBLAS().Sgemm(blas.NoTrans, blas.NoTrans, bsz, nin, nout, 1, g.Float32s(), nout, w.Float32s(), nin, 0, d, nin)
	case tensor.Float64:
		d := dx.Float64s()
		G.WhichBLAS().Dgemm(blas.NoTrans, blas.NoTrans, bsz, nin, nout, 1, g.Float64s(), nout, w.Float64s(), nin, 0, d, nin)
	}
	return dx, nil
}

// WriteHash identifies the op for gorgonia's node deduplication.
func (op *linearInputGradOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }

// Hashcode is the FNV hash of WriteHash.
func (op *linearInputGradOp) Hashcode() uint32 { return opHash(op) }

// String names the op in graph dumps and errors.
func (op *linearInputGradOp) String() string { return "LinearInputGrad(g·W)" }

// linearWeightGradOp is dW = gᵀ·x for g [B,out] and x [B,in]: the gradient
// of linearOp with respect to W, [out,in].
type linearWeightGradOp struct {
	pureGoOp
	out reusedOutput
}

// Arity is 2: g and x.
func (op *linearWeightGradOp) Arity() int { return 2 }

// Type is Tensor-2 a → Tensor-2 a → Tensor-2 a.
func (op *linearWeightGradOp) Type() hm.Type { return matrixBinaryType() }

// InferShape is [out,in] from g [B,out] and x [B,in].
func (op *linearWeightGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	gs, xs, err := twoMatrixShapes(in...)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	if gs[0] != xs[0] {
		return nil, fmt.Errorf("%v: gradient %v and input %v disagree on the batch size", op, gs, xs)
	}
	return tensor.Shape{gs[1], xs[1]}, nil
}

// Do computes dW into the op's own output.
func (op *linearWeightGradOp) Do(in ...G.Value) (G.Value, error) {
	g, x, err := denseInputs2(op, in)
	if err != nil {
		return nil, err
	}
	return op.UsePreallocDo(op.out.get(g.Dtype(), g.Shape()[1], x.Shape()[1]), g, x)
}

// UsePreallocDo computes dW into prealloc ([out,in]).
func (op *linearWeightGradOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	g, x, err := denseInputs2(op, in)
	if err != nil {
		return nil, err
	}
	bsz, nout, nin := g.Shape()[0], g.Shape()[1], x.Shape()[1]
	if x.Shape()[0] != bsz {
		return nil, fmt.Errorf("%v: gradient %v, input %v", op, g.Shape(), x.Shape())
	}
	dw, err := outputDense(op, prealloc, g.Dtype(), nout, nin)
	if err != nil {
		return nil, err
	}
	switch dw.Dtype() {
	case tensor.Float32:
		d := dw.Float32s()
		G.WhichBLAS().Sgemm(blas.Trans, blas.NoTrans, nout, nin, bsz, 1, g.Float32s(), nout, x.Float32s(), nin, 0, d, nin)
	case tensor.Float64:
		d := dw.Float64s()
		G.WhichBLAS().Dgemm(blas.Trans, blas.NoTrans, nout, nin, bsz, 1, g.Float64s(), nout, x.Float64s(), nin, 0, d, nin)
	}
	return dw, nil
}

// WriteHash identifies the op for gorgonia's node deduplication.
func (op *linearWeightGradOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }

// Hashcode is the FNV hash of WriteHash.
func (op *linearWeightGradOp) Hashcode() uint32 { return opHash(op) }

// String names the op in graph dumps and errors.
func (op *linearWeightGradOp) String() string { return "LinearWeightGrad(gᵀ·x)" }

// biasGradOp is db = Σ_rows g for g [B,out]: the gradient of linearOp with
// respect to b, [out].
type biasGradOp struct {
	pureGoOp
	out reusedOutput
}

// Arity is 1: g.
func (op *biasGradOp) Arity() int { return 1 }

// Type is Tensor-2 a → Tensor-1 a.
func (op *biasGradOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(G.TensorType{Dims: 2, Of: a}, G.TensorType{Dims: 1, Of: a})
}

// InferShape is [out] from g [B,out].
func (op *biasGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if len(in) != 1 {
		return nil, fmt.Errorf("%v: want 1 input shape, got %d", op, len(in))
	}
	gs, ok := in[0].(tensor.Shape)
	if !ok || gs.Dims() != 2 {
		return nil, fmt.Errorf("%v: gradient shape %v is not a matrix", op, in[0])
	}
	return tensor.Shape{gs[1]}, nil
}

// Do computes db into the op's own output.
func (op *biasGradOp) Do(in ...G.Value) (G.Value, error) {
	if len(in) != 1 {
		return nil, fmt.Errorf("%v: want 1 input, got %d", op, len(in))
	}
	g, ok := in[0].(*tensor.Dense)
	if !ok || g.Dims() != 2 {
		return nil, fmt.Errorf("%v: gradient %v is not a dense matrix", op, in[0].Shape())
	}
	return op.UsePreallocDo(op.out.get(g.Dtype(), g.Shape()[1]), g)
}

// UsePreallocDo computes db into prealloc ([out]).
func (op *biasGradOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	if len(in) != 1 {
		return nil, fmt.Errorf("%v: want 1 input, got %d", op, len(in))
	}
	g, ok := in[0].(*tensor.Dense)
	if !ok || g.Dims() != 2 {
		return nil, fmt.Errorf("%v: gradient %v is not a dense matrix", op, in[0].Shape())
	}
	db, err := outputDense(op, prealloc, g.Dtype(), g.Shape()[1])
	if err != nil {
		return nil, err
	}
	switch db.Dtype() {
	case tensor.Float32:
		d := db.Float32s()
		columnSums(d, g.Float32s())
	case tensor.Float64:
		d := db.Float64s()
		columnSums(d, g.Float64s())
	}
	return db, nil
}

// WriteHash identifies the op for gorgonia's node deduplication.
func (op *biasGradOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }

// Hashcode is the FNV hash of WriteHash.
func (op *biasGradOp) Hashcode() uint32 { return opHash(op) }

// String names the op in graph dumps and errors.
func (op *biasGradOp) String() string { return "BiasGrad(Σ_rows g)" }

// reusedOutput is an op's output tensor, allocated on the op's first run and
// reused while the dtype and shape stay the same.
type reusedOutput struct{ t *tensor.Dense }

// get returns the output for dtype dt and the given shape.
func (r *reusedOutput) get(dt tensor.Dtype, shape ...int) *tensor.Dense {
	if r.t == nil || r.t.Dtype() != dt || !r.t.Shape().Eq(tensor.Shape(shape)) {
		r.t = tensor.New(tensor.WithShape(shape...), tensor.Of(dt))
	}
	return r.t
}

// outputDense checks that prealloc is a dense tensor of dtype dt and the
// given shape, and returns it.
func outputDense(op G.Op, prealloc G.Value, dt tensor.Dtype, shape ...int) (*tensor.Dense, error) {
	d, ok := prealloc.(*tensor.Dense)
	if !ok || d.Dtype() != dt || !d.Shape().Eq(tensor.Shape(shape)) || !d.IsNativelyAccessible() {
		return nil, fmt.Errorf("%v: preallocated output %v (%T) is not a dense %v tensor of shape %v", op, prealloc.Shape(), prealloc, dt, shape)
	}
	return d, nil
}

// denseInputs2 checks that an op got two dense float32 or float64 matrices
// of one dtype.
func denseInputs2(op G.Op, in []G.Value) (a, b *tensor.Dense, err error) {
	if len(in) != 2 {
		return nil, nil, fmt.Errorf("%v: want 2 inputs, got %d", op, len(in))
	}
	ds, err := denseFloats(op, in)
	if err != nil {
		return nil, nil, err
	}
	if ds[0].Dims() != 2 || ds[1].Dims() != 2 {
		return nil, nil, fmt.Errorf("%v: inputs %v and %v are not both matrices", op, ds[0].Shape(), ds[1].Shape())
	}
	return ds[0], ds[1], nil
}

// denseInputs3 checks linearOp's inputs: matrices x and W, vector b, one
// float dtype.
func denseInputs3(op G.Op, in []G.Value) (x, w, b *tensor.Dense, err error) {
	if len(in) != 3 {
		return nil, nil, nil, fmt.Errorf("%v: want 3 inputs, got %d", op, len(in))
	}
	ds, err := denseFloats(op, in)
	if err != nil {
		return nil, nil, nil, err
	}
	if ds[0].Dims() != 2 || ds[1].Dims() != 2 {
		return nil, nil, nil, fmt.Errorf("%v: x %v and weight %v are not both matrices", op, ds[0].Shape(), ds[1].Shape())
	}
	return ds[0], ds[1], ds[2], nil
}

// denseFloats converts op inputs to dense tensors sharing one float dtype.
// It returns a fixed-size array, not a slice, so that a call allocates nothing.
func denseFloats(op G.Op, in []G.Value) (out [3]*tensor.Dense, err error) {
	if len(in) > len(out) {
		return out, fmt.Errorf("%v: %d inputs, at most %d supported", op, len(in), len(out))
	}
	for i, v := range in {
		d, ok := v.(*tensor.Dense)
		if !ok || !d.IsNativelyAccessible() {
			return out, fmt.Errorf("%v: input %d (%T) is not a dense tensor", op, i, v)
		}
		if d.Dtype() != tensor.Float32 && d.Dtype() != tensor.Float64 {
			return out, fmt.Errorf("%v: input %d has dtype %v, want float32 or float64", op, i, d.Dtype())
		}
		if i > 0 && d.Dtype() != out[0].Dtype() {
			return out, fmt.Errorf("%v: input %d has dtype %v, input 0 %v", op, i, d.Dtype(), out[0].Dtype())
		}
		out[i] = d
	}
	return out, nil
}

// twoMatrixShapes reads two input shapes that must both be matrices.
func twoMatrixShapes(in ...G.DimSizer) (a, b tensor.Shape, err error) {
	if len(in) != 2 {
		return nil, nil, fmt.Errorf("want 2 input shapes, got %d", len(in))
	}
	a, okA := in[0].(tensor.Shape)
	b, okB := in[1].(tensor.Shape)
	if !okA || !okB || a.Dims() != 2 || b.Dims() != 2 {
		return nil, nil, fmt.Errorf("shapes %v and %v are not both matrices", in[0], in[1])
	}
	return a, b, nil
}

// matrixBinaryType is Tensor-2 a → Tensor-2 a → Tensor-2 a.
func matrixBinaryType() hm.Type {
	a := hm.TypeVariable('a')
	mat := G.TensorType{Dims: 2, Of: a}
	return hm.NewFnType(mat, mat, mat)
}

// pureGoOp holds the gorgonia Op methods that every op of this package
// answers alike: each writes its own output (never an input, never a pointer
// into one) and runs in Go. CallsExtern is false even with OpenBLAS: true
// would make the TapeMachine allocate a fresh output before every run, which
// the ops do not need.
type pureGoOp struct{}

// ReturnsPtr is false: the output is not one of the inputs.
func (pureGoOp) ReturnsPtr() bool { return false }

// CallsExtern is false: see pureGoOp.
func (pureGoOp) CallsExtern() bool { return false }

// OverwritesInput is -1: no input is overwritten.
func (pureGoOp) OverwritesInput() int { return -1 }

// opHash is the 32-bit FNV-1a hash of an op's WriteHash.
func opHash(op G.Op) uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}

// fillRowsWith copies row into every row of y (len(y) a multiple of len(row)).
func fillRowsWith[E float32 | float64](y, row []E) {
	for off := 0; off < len(y); off += len(row) {
		copy(y[off:off+len(row)], row)
	}
}

// columnSums writes the column sums of the row-major matrix g, whose rows
// have len(sums) values, into sums.
func columnSums[E float32 | float64](sums, g []E) {
	clear(sums)
	k := len(sums)
	for off := 0; off < len(g); off += k {
		for j, v := range g[off : off+k] {
			sums[j] += v
		}
	}
}
