package ops

import (
	"fmt"
	"hash/fnv"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

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

// checkArity reports an op run on the wrong number of inputs.
func checkArity(op G.Op, in []G.Value, want int) error {
	if len(in) != want {
		return fmt.Errorf("%v: want %d inputs, got %d", op, want, len(in))
	}
	return nil
}

// writableOutput is outputDense that also refuses a view: the ops write the
// backing slice from its start.
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

// reusedScalar is a scalar op's output value, allocated on its first run
// and overwritten by every later run.
type reusedScalar struct {
	f32 *G.F32
	f64 *G.F64
}

// set stores v as a scalar of dtype dt and returns it.
func (r *reusedScalar) set(dt tensor.Dtype, v float64) G.Value {
	if dt == tensor.Float32 {
		if r.f32 == nil {
			r.f32 = new(G.F32)
		}
		*r.f32 = G.F32(v)
		return r.f32
	}
	if r.f64 == nil {
		r.f64 = new(G.F64)
	}
	*r.f64 = G.F64(v)
	return r.f64
}

// ScalarOf reads a scalar graph value (a gorgonia scalar or a one-value
// tensor) as float64 without allocating.
func ScalarOf(v G.Value) (float64, error) {
	switch s := v.(type) {
	case *G.F32:
		return float64(*s), nil
	case *G.F64:
		return float64(*s), nil
	case *tensor.Dense:
		if s.Shape().TotalSize() == 1 {
			switch s.Dtype() {
			case tensor.Float32:
				return float64(s.Float32s()[0]), nil
			case tensor.Float64:
				return s.Float64s()[0], nil
			}
		}
	}
	return 0, fmt.Errorf("%v (%T) is not a float scalar", v.Shape(), v)
}

// sameMatrixShapes checks that an op's two input shapes are one matrix
// shape, and returns it.
func sameMatrixShapes(op G.Op, in []G.DimSizer) (tensor.Shape, error) {
	a, b, err := twoMatrixShapes(in...)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	if !a.Eq(b) {
		return nil, fmt.Errorf("%v: input shapes %v and %v differ", op, a, b)
	}
	return a.Clone(), nil
}

// tensorFnType is the type of an op taking tensors of the given numbers of
// dimensions, one dtype a, to the last one: tensorFnType(4, 1, 4) is
// Tensor-4 a → Tensor-1 a → Tensor-4 a. Zero dimensions is the scalar a.
func tensorFnType(dims ...int) hm.Type {
	a := hm.TypeVariable('a')
	ts := make([]hm.Type, len(dims))
	for i, d := range dims {
		if d == 0 {
			ts[i] = a
		} else {
			ts[i] = G.TensorType{Dims: d, Of: a}
		}
	}
	return hm.NewFnType(ts...)
}

// checkInputShapes checks that an op built for the given input shapes gets
// them.
func checkInputShapes(op G.Op, in []G.DimSizer, want ...tensor.Shape) error {
	if len(in) != len(want) {
		return fmt.Errorf("%v: want %d input shapes, got %d", op, len(want), len(in))
	}
	for i, w := range want {
		s, ok := in[i].(tensor.Shape)
		if !ok || !s.Eq(w) {
			return fmt.Errorf("%v: input %d has shape %v, built for %v", op, i, in[i], w)
		}
	}
	return nil
}
