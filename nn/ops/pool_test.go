package ops

import (
	"fmt"
	"math"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestPoolingOpsMatchGorgonia compares the max-pooling (alone and fused
// with the ReLU before it), the average pooling and flatten ops with
// gorgonia's own compositions (G.MaxPool2D, G.Rectify, Slice+Sum+Div,
// G.Reshape), outputs and input gradients, on odd and even map sizes
// (floor pooling) at batch 1, 3 and 8, and checks their gradients against
// finite differences.
func TestPoolingOpsMatchGorgonia(t *testing.T) {
	one := func(f func(*G.Node) (*G.Node, error)) func(map[string]*G.Node) (G.Nodes, error) {
		return func(in map[string]*G.Node) (G.Nodes, error) {
			y, err := f(in["x"])
			return G.Nodes{y}, err
		}
	}
	gorgoniaMaxPool := func(x *G.Node) (*G.Node, error) {
		return G.MaxPool2D(x, tensor.Shape{2, 2}, []int{0, 0}, []int{2, 2})
	}
	gorgoniaReLUMaxPool := func(x *G.Node) (*G.Node, error) {
		r, err := G.Rectify(x)
		if err != nil {
			return nil, err
		}
		return gorgoniaMaxPool(r)
	}
	var cases []opCompareCase
	for _, shape := range [][]int{{1, 1, 2, 2}, {3, 2, 5, 7}, {8, 3, 6, 9}, {1, 4, 7, 7}} {
		x := []opInput{{name: "x", shape: shape, diff: true}}
		cases = append(cases,
			opCompareCase{name: fmt.Sprintf("maxpool %v", shape), inputs: x, ours: one(maxPool2), ref: one(gorgoniaMaxPool)},
			opCompareCase{name: fmt.Sprintf("relu maxpool %v", shape), inputs: x, ours: one(reluMaxPool2), ref: one(gorgoniaReLUMaxPool)},
		)
	}
	for _, shape := range [][]int{{1, 3, 4, 4}, {3, 2, 6, 5}, {8, 5, 7, 7}} {
		x := []opInput{{name: "x", shape: shape, diff: true}}
		cases = append(cases, opCompareCase{name: fmt.Sprintf("avgpool %v", shape), inputs: x, ours: one(avgPool4), ref: one(gorgoniaAvgPool4)})
	}
	for _, shape := range [][]int{{1, 3, 2, 2}, {3, 2, 5, 7}, {8, 1, 4, 3}} {
		x := []opInput{{name: "x", shape: shape, diff: true}}
		cases = append(cases, opCompareCase{name: fmt.Sprintf("flatten %v", shape), inputs: x, ours: one(flatten),
			ref: one(func(x *G.Node) (*G.Node, error) {
				s := x.Shape()
				return G.Reshape(x, tensor.Shape{s[0], s.TotalSize() / s[0]})
			})})
	}
	runOpCompareCases(t, cases)
}

func TestPoolingOpsRejectUnfitInputs(t *testing.T) {
	cases := []struct {
		name       string
		shape      []int
		build      func(*G.Node) (*G.Node, error)
		wantSubstr string
	}{
		{name: "maxpool of a matrix", shape: []int{3, 4}, build: maxPool2, wantSubstr: "is not [N,C,H,W]"},
		{name: "maxpool of a 1-wide map", shape: []int{2, 3, 1, 4}, build: maxPool2, wantSubstr: "H, W >= 2"},
		{name: "avgpool of a 3x3 map", shape: []int{2, 3, 3, 3}, build: avgPool4, wantSubstr: "H, W from 4 to 7"},
		{name: "avgpool of an 8x8 map", shape: []int{2, 3, 8, 8}, build: avgPool4, wantSubstr: "H, W from 4 to 7"},
		{name: "flatten of a vector", shape: []int{5}, build: flatten, wantSubstr: "no batch and feature axes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := G.NewGraph()
			x := G.NewTensor(g, tensor.Float64, len(tc.shape), G.WithShape(tc.shape...), G.WithName("x"))
			if _, err := tc.build(x); err == nil || !strings.Contains(err.Error(), tc.wantSubstr) {
				t.Fatalf("input %v: error %v, want one containing %q", tc.shape, err, tc.wantSubstr)
			}
		})
	}
}

// TestMaxPoolOpTiesAndNaN checks PyTorch's conventions on hand-made
// windows: the first maximum in row-major order takes the gradient, NaN
// propagates, and the fused ReLU passes no gradient to a window whose
// maximum is not positive.
func TestMaxPoolOpTiesAndNaN(t *testing.T) {
	nan := math.NaN()
	cases := []struct {
		name       string
		relu       bool
		window     []float64 // 2x2, row-major
		wantOut    float64
		wantArgmax int32
	}{
		{name: "tie goes to the first", window: []float64{1, 3, 3, 2}, wantOut: 3, wantArgmax: 1},
		{name: "NaN propagates", window: []float64{1, nan, 3, 2}, wantOut: nan, wantArgmax: 1},
		{name: "negative window without relu", window: []float64{-4, -1, -3, -2}, wantOut: -1, wantArgmax: 1},
		{name: "negative window with relu", relu: true, window: []float64{-4, -1, -3, -2}, wantOut: 0, wantArgmax: -1},
		{name: "zero maximum with relu", relu: true, window: []float64{-4, 0, -3, -2}, wantOut: 0, wantArgmax: -1},
		{name: "positive window with relu", relu: true, window: []float64{-4, 0, 5, -2}, wantOut: 5, wantArgmax: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			y, argmax := make([]float64, 1), make([]int32, 1)
			maxPool2Kernel(y, argmax, tc.window, 1, 2, 2, tc.relu)
			sameOut := y[0] == tc.wantOut || (y[0] != y[0] && tc.wantOut != tc.wantOut)
			if !sameOut || argmax[0] != tc.wantArgmax {
				t.Fatalf("pool of %v = %v at %d, want %v at %d", tc.window, y[0], argmax[0], tc.wantOut, tc.wantArgmax)
			}
		})
	}
}

// gorgoniaAvgPool4 is AvgPool4 as a gorgonia composition:
// slice the top-left 4x4 window, sum the last axis then the one before,
// divide by 16.
func gorgoniaAvgPool4(x *G.Node) (*G.Node, error) {
	s := x.Shape()
	var err error
	if s[2] != AvgPoolWindow || s[3] != AvgPoolWindow {
		if x, err = G.Slice(x, nil, nil, G.S(0, AvgPoolWindow), G.S(0, AvgPoolWindow)); err != nil {
			return nil, err
		}
	}
	return gorgoniaMeanOverAxes(x, x.Dtype(), 2, 3)
}

// gorgoniaMeanOverAxes averages x over the given axes (ascending), one axis
// at a time from the last (gorgonia v0.9.18 differentiates a Sum over
// several axes at once wrongly).
func gorgoniaMeanOverAxes(x *G.Node, dt tensor.Dtype, axes ...int) (*G.Node, error) {
	count := 1
	out := x
	var err error
	for i := len(axes) - 1; i >= 0; i-- {
		count *= x.Shape()[axes[i]]
		if out, err = G.Sum(out, axes[i]); err != nil {
			return nil, err
		}
	}
	return G.HadamardDiv(out, scalarConst(dt, float64(count)))
}
