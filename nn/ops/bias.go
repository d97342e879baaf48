package ops

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	"github.com/sglr-pipe/sglr-pipe/nn/internal/vec"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// The per-channel bias of a convolution is y[n,c,h,w] = x[n,c,h,w] + b[c];
// its gradient is g for x and Σ_{n,h,w} g for b.

// ChannelBias adds y = x + b (b [C] broadcast over N, H, W of an
// NCHW x) to x's graph.
func ChannelBias(x, b *G.Node) (*G.Node, error) {
	return G.ApplyOp(&channelBiasOp{}, x, b)
}

// channelBiasOp is y = x + b over the channel axis of an NCHW tensor. It
// differentiates into g (for x) and channelBiasGradOp (for b).
type channelBiasOp struct {
	pureGoOp
	out reusedOutput
}

// Arity is 2: x and b.
func (op *channelBiasOp) Arity() int { return 2 }

// Type is Tensor-4 a → Tensor-1 a → Tensor-4 a.
func (op *channelBiasOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	t4 := G.TensorType{Dims: 4, Of: a}
	return hm.NewFnType(t4, G.TensorType{Dims: 1, Of: a}, t4)
}

// InferShape is x's shape, once b is checked to have one value per channel.
func (op *channelBiasOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if len(in) != 2 {
		return nil, fmt.Errorf("%v: want 2 input shapes, got %d", op, len(in))
	}
	x, okX := in[0].(tensor.Shape)
	b, okB := in[1].(tensor.Shape)
	if !okX || !okB || x.Dims() != 4 || b.TotalSize() != x[1] {
		return nil, fmt.Errorf("%v: want an NCHW tensor and a bias of one value per channel, got %v and %v", op, in[0], in[1])
	}
	return x.Clone(), nil
}

// Do computes y into the op's own output.
func (op *channelBiasOp) Do(in ...G.Value) (G.Value, error) {
	if err := checkArity(op, in, 2); err != nil {
		return nil, err
	}
	x, err := floatDense(op, in, 0)
	if err != nil {
		return nil, err
	}
	return op.UsePreallocDo(op.out.get(x.Dtype(), x.Shape()...), in...)
}

// UsePreallocDo computes y into prealloc (x's shape and dtype).
func (op *channelBiasOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	if err := checkArity(op, in, 2); err != nil {
		return nil, err
	}
	x, err := floatDense(op, in, 0)
	if err != nil {
		return nil, err
	}
	s := x.Shape()
	if s.Dims() != 4 {
		return nil, fmt.Errorf("%v: x has shape %v, want NCHW", op, s)
	}
	b, err := floatDenseLike(op, in, 1, x.Dtype(), s[1:2])
	if err != nil {
		return nil, err
	}
	y, err := writableOutput(op, prealloc, x.Dtype(), s...)
	if err != nil {
		return nil, err
	}
	n, c, hw := s[0], s[1], s[2]*s[3]
	if x.Dtype() == tensor.Float32 {
		addChannelBias(y.Float32s(), x.Float32s(), b.Float32s(), n, c, hw)
	} else {
		addChannelBias(y.Float64s(), x.Float64s(), b.Float64s(), n, c, hw)
	}
	return y, nil
}

// DiffWRT: y is differentiable in x and b.
func (op *channelBiasOp) DiffWRT(inputs int) []bool { return []bool{true, true} }

// SymDiff returns dx = g and db = Σ_{n,h,w} g.
func (op *channelBiasOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 2 {
		return nil, fmt.Errorf("%v: want 2 inputs to differentiate, got %d", op, len(inputs))
	}
	db, err := G.ApplyOp(&channelBiasGradOp{}, grad)
	if err != nil {
		return nil, fmt.Errorf("%v: bias gradient: %w", op, err)
	}
	return G.Nodes{grad, db}, nil
}

// WriteHash identifies the op for gorgonia's node deduplication.
func (op *channelBiasOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }

// Hashcode is the FNV hash of WriteHash.
func (op *channelBiasOp) Hashcode() uint32 { return opHash(op) }

// String names the op in graph dumps and errors.
func (op *channelBiasOp) String() string { return "ChannelBias(x + b[c])" }

// channelBiasGradOp is db[c] = Σ_{n,h,w} g[n,c,h,w]: the bias gradient of
// channelBiasOp.
type channelBiasGradOp struct {
	pureGoOp
	out reusedOutput
}

// Arity is 1: g.
func (op *channelBiasGradOp) Arity() int { return 1 }

// Type is Tensor-4 a → Tensor-1 a.
func (op *channelBiasGradOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(G.TensorType{Dims: 4, Of: a}, G.TensorType{Dims: 1, Of: a})
}

// InferShape is [C].
func (op *channelBiasGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if len(in) != 1 {
		return nil, fmt.Errorf("%v: want 1 input shape, got %d", op, len(in))
	}
	g, ok := in[0].(tensor.Shape)
	if !ok || g.Dims() != 4 {
		return nil, fmt.Errorf("%v: want an NCHW gradient, got %v", op, in[0])
	}
	return tensor.Shape{g[1]}, nil
}

// Do computes db into the op's own output.
func (op *channelBiasGradOp) Do(in ...G.Value) (G.Value, error) {
	if err := checkArity(op, in, 1); err != nil {
		return nil, err
	}
	g, err := floatDense(op, in, 0)
	if err != nil {
		return nil, err
	}
	if g.Dims() != 4 {
		return nil, fmt.Errorf("%v: g has shape %v, want NCHW", op, g.Shape())
	}
	return op.UsePreallocDo(op.out.get(g.Dtype(), g.Shape()[1:2]...), in...)
}

// UsePreallocDo computes db into prealloc ([C], g's dtype).
func (op *channelBiasGradOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	if err := checkArity(op, in, 1); err != nil {
		return nil, err
	}
	g, err := floatDense(op, in, 0)
	if err != nil {
		return nil, err
	}
	s := g.Shape()
	if s.Dims() != 4 {
		return nil, fmt.Errorf("%v: g has shape %v, want NCHW", op, s)
	}
	db, err := writableOutput(op, prealloc, g.Dtype(), s[1:2]...)
	if err != nil {
		return nil, err
	}
	n, c, hw := s[0], s[1], s[2]*s[3]
	if g.Dtype() == tensor.Float32 {
		sumChannels(db.Float32s(), g.Float32s(), n, c, hw)
	} else {
		sumChannels(db.Float64s(), g.Float64s(), n, c, hw)
	}
	return db, nil
}

// WriteHash identifies the op for gorgonia's node deduplication.
func (op *channelBiasGradOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }

// Hashcode is the FNV hash of WriteHash.
func (op *channelBiasGradOp) Hashcode() uint32 { return opHash(op) }

// String names the op in graph dumps and errors.
func (op *channelBiasGradOp) String() string { return "ChannelBiasGrad(Σ_nhw g)" }

// addChannelBias writes x + b[c] into y, NCHW with hw values per plane.
func addChannelBias[E vec.Float](y, x, b []E, n, c, hw int) {
	for i := range n * c {
		bc := b[i%c]
		plane := x[i*hw : (i+1)*hw]
		out := y[i*hw : (i+1)*hw]
		for j, v := range plane {
			out[j] = v + bc
		}
	}
}

// sumChannels writes Σ_{n,h,w} g into db[c], accumulating in float64.
func sumChannels[E vec.Float](db, g []E, n, c, hw int) {
	for ch := range c {
		var s float64
		for img := range n {
			for _, v := range g[(img*c+ch)*hw : (img*c+ch+1)*hw] {
				s += float64(v)
			}
		}
		db[ch] = E(s)
	}
}
