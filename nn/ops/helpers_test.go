package ops

import (
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Central differences of the op gradient checks: step and tolerances.
const (
	fdStep   = 1e-6
	fdRelTol = 1e-5
	fdAbsTol = 1e-7
)

// scalarConst is a constant scalar node of the given dtype.
func scalarConst(dt tensor.Dtype, v float64) *G.Node {
	if dt == tensor.Float32 {
		return G.NewConstant(float32(v))
	}
	return G.NewConstant(v)
}

// copyIntoDense writes src into the backing slice of dst (same length),
// converting to dst's dtype.
func copyIntoDense(dst *tensor.Dense, src []float64) {
	switch dst.Dtype() {
	case tensor.Float32:
		d := dst.Float32s()
		for i, v := range src {
			d[i] = float32(v)
		}
	case tensor.Float64:
		copy(dst.Float64s(), src)
	}
}

// readValue copies a graph value (a dense tensor or a scalar) after a run.
func readValue(v G.Value) []float64 {
	switch x := v.(type) {
	case *G.F32:
		return []float64{float64(*x)}
	case *G.F64:
		return []float64{float64(*x)}
	}
	out := make([]float64, v.Shape().TotalSize())
	switch s := v.Data().(type) {
	case []float32:
		for i, e := range s {
			out[i] = float64(e)
		}
	case []float64:
		copy(out, s)
	case float32:
		out[0] = float64(s)
	case float64:
		out[0] = s
	}
	return out
}

// The pooling layers as one-input builders.
func maxPool2(x *G.Node) (*G.Node, error)     { return MaxPool2(x, false) }
func reluMaxPool2(x *G.Node) (*G.Node, error) { return MaxPool2(x, true) }
func avgPool4(x *G.Node) (*G.Node, error)     { return AvgPool4(x) }
func flatten(x *G.Node) (*G.Node, error)      { return Flatten(x) }
