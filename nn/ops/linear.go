package ops

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	"github.com/sglr-pipe/sglr-pipe/nn/internal/vec"
	"gonum.org/v1/gonum/blas"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// torch.nn.Linear is the forward op y = x·Wᵀ + b and one op per gradient
// (dx = g·W, dW = gᵀ·x, db = column sums of g). W is read in place in
// PyTorch's layout [out,in]: the GEMM (through the BLAS gorgonia uses)
// transposes on the fly.

// Linear adds y = x·Wᵀ + b to x's graph for x [B,in], W [out,in] and
// b [out], and returns y [B,out].
func Linear(x, w, b *G.Node) (*G.Node, error) {
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

// fillRowsWith copies row into every row of y (len(y) a multiple of len(row)).
func fillRowsWith[E vec.Float](y, row []E) {
	for off := 0; off < len(y); off += len(row) {
		copy(y[off:off+len(row)], row)
	}
}

// columnSums writes the column sums of the row-major matrix g, whose rows
// have len(sums) values, into sums.
func columnSums[E vec.Float](sums, g []E) {
	clear(sums)
	k := len(sums)
	for off := 0; off < len(g); off += k {
		for j, v := range g[off : off+k] {
			sums[j] += v
		}
	}
}
