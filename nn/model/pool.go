package model

import (
	"fmt"
	"hash"
	"hash/fnv"

	"github.com/chewxy/hm"
	"github.com/sglr-pipe/sglr-pipe/nn/internal/vec"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// avgPoolFlatten adds F.avg_pool2d(x, k) followed by flatten on x
// [N,C,H,W] with H and W from k to 2k−1 to x's graph: the floor pooling
// reads only the top-left k×k window of each map and the output is [N,C].
// It is the head pooling of the WideResNets (k = 8); the k = 4 pooling of
// the ResNets is ops.AvgPool4.
func avgPoolFlatten(x *G.Node, k int) (*G.Node, error) {
	s := x.Shape()
	if k < 1 || s.Dims() != 4 || s[2] < k || s[3] < k || s[2] >= 2*k || s[3] >= 2*k {
		return nil, fmt.Errorf("avg_pool2d(%d)+flatten: input %v is not [N,C,H,W] with H, W from %d to %d", k, s, k, 2*k-1)
	}
	return G.ApplyOp(&avgPoolOp{k: k, in: s.Clone()}, x)
}

// avgPoolOp is F.avg_pool2d(x, k) followed by flatten: y[n,c] is the mean
// of x[n,c,0:k,0:k]. Its gradient op writes g/k² over each window.
type avgPoolOp struct {
	k    int
	in   tensor.Shape
	grad bool // the gradient op: g [N,C] → dx [N,C,H,W]
	out  *tensor.Dense
}

func (op *avgPoolOp) Arity() int { return 1 }

func (op *avgPoolOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	if op.grad {
		return hm.NewFnType(G.TensorType{Dims: 2, Of: a}, G.TensorType{Dims: 4, Of: a})
	}
	return hm.NewFnType(G.TensorType{Dims: 4, Of: a}, G.TensorType{Dims: 2, Of: a})
}

// shapes are the op's input and output shapes.
func (op *avgPoolOp) shapes() (in, out tensor.Shape) {
	if op.grad {
		return op.in[:2].Clone(), op.in.Clone()
	}
	return op.in.Clone(), op.in[:2].Clone()
}

func (op *avgPoolOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	want, out := op.shapes()
	if len(in) != 1 {
		return nil, fmt.Errorf("%v: want 1 input shape, got %d", op, len(in))
	}
	if s, ok := in[0].(tensor.Shape); !ok || !s.Eq(want) {
		return nil, fmt.Errorf("%v: input has shape %v, built for %v", op, in[0], want)
	}
	return out, nil
}

// Do pools x (or spreads g) into the op's own output, reused between runs.
func (op *avgPoolOp) Do(in ...G.Value) (G.Value, error) {
	want, outShape := op.shapes()
	if len(in) != 1 {
		return nil, fmt.Errorf("%v: want 1 input, got %d", op, len(in))
	}
	x, ok := in[0].(*tensor.Dense)
	if !ok || !x.IsNativelyAccessible() || x.IsView() || !x.Shape().Eq(want) {
		return nil, fmt.Errorf("%v: input %v (%T) is not a dense tensor of shape %v", op, in[0].Shape(), in[0], want)
	}
	dt := x.Dtype()
	if dt != tensor.Float32 && dt != tensor.Float64 {
		return nil, fmt.Errorf("%v: input has dtype %v, want float32 or float64", op, dt)
	}
	if op.out == nil || op.out.Dtype() != dt {
		op.out = tensor.New(tensor.WithShape(outShape...), tensor.Of(dt))
	}
	h, w := op.in[2], op.in[3]
	switch {
	case dt == tensor.Float32 && op.grad:
		avgPoolGradKernel(op.out.Float32s(), x.Float32s(), op.k, h, w)
	case dt == tensor.Float32:
		avgPoolKernel(op.out.Float32s(), x.Float32s(), op.k, h, w)
	case op.grad:
		avgPoolGradKernel(op.out.Float64s(), x.Float64s(), op.k, h, w)
	default:
		avgPoolKernel(op.out.Float64s(), x.Float64s(), op.k, h, w)
	}
	return op.out, nil
}

func (op *avgPoolOp) ReturnsPtr() bool     { return false }
func (op *avgPoolOp) CallsExtern() bool    { return false }
func (op *avgPoolOp) OverwritesInput() int { return -1 }

// DiffWRT: the pooling is differentiable in x (its gradient op is not
// differentiated again).
func (op *avgPoolOp) DiffWRT(inputs int) []bool { return []bool{!op.grad} }

// SymDiff returns dx: g/k² over each top-left window, 0 elsewhere.
func (op *avgPoolOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if op.grad || len(inputs) != 1 {
		return nil, fmt.Errorf("%v: cannot differentiate with respect to %d inputs", op, len(inputs))
	}
	dx, err := G.ApplyOp(&avgPoolOp{k: op.k, in: op.in, grad: true}, grad)
	if err != nil {
		return nil, fmt.Errorf("%v: input gradient: %w", op, err)
	}
	return G.Nodes{dx}, nil
}

func (op *avgPoolOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }

func (op *avgPoolOp) Hashcode() uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}

func (op *avgPoolOp) String() string {
	if op.grad {
		return fmt.Sprintf("AvgPool%d+FlattenGrad%v", op.k, op.in)
	}
	return fmt.Sprintf("AvgPool%d+Flatten%v", op.k, op.in)
}

// avgPoolKernel writes the mean of the top-left k×k window of each h×w map
// of x into y.
func avgPoolKernel[E vec.Float](y, x []E, k, h, w int) {
	for p := range y {
		base := p * h * w
		var s E
		for i := range k {
			for _, v := range x[base+i*w : base+i*w+k] {
				s += v
			}
		}
		y[p] = s / E(k*k)
	}
}

// avgPoolGradKernel writes g/k² over the top-left k×k window of each h×w map
// of dx and 0 elsewhere.
func avgPoolGradKernel[E vec.Float](dx, g []E, k, h, w int) {
	clear(dx)
	for p, v := range g {
		v /= E(k * k)
		base := p * h * w
		for i := range k {
			row := dx[base+i*w : base+i*w+k]
			for j := range row {
				row[j] = v
			}
		}
	}
}
