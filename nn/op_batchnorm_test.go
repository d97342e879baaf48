package nn

import (
	"fmt"
	"math"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestBatchNormOpMatchesGorgoniaComposition compares the fused BatchNorm
// op, in train and eval mode, alone and fused with the ReLU after it, with
// the gorgonia composition it replaced (PyTorch's formula from Sum,
// BroadcastSub, Square, Sqrt and broadcast ops, then G.Rectify): outputs,
// the batch mean and variance in train mode, and the gradients with respect
// to x, γ and β, at batch 1, 3 and 8. It also checks the gradients against
// finite differences, which in train mode flow through the batch
// statistics.
func TestBatchNormOpMatchesGorgoniaComposition(t *testing.T) {
	var cases []opCompareCase
	for _, train := range []bool{true, false} {
		for _, relu := range []bool{false, true} {
			for _, shape := range [][]int{{1, 3, 4, 5}, {3, 2, 3, 2}, {8, 4, 5, 3}} {
				c := shape[1]
				inputs := []opInput{
					{name: "x", shape: shape, diff: true},
					{name: "gamma", shape: []int{c}, diff: true},
					{name: "beta", shape: []int{c}, diff: true},
				}
				if !train {
					inputs = append(inputs, opInput{name: "mean", shape: []int{c}}, opInput{name: "var", shape: []int{c}, positive: true})
				}
				mode := map[bool]string{true: "train", false: "eval"}[train]
				cases = append(cases, opCompareCase{
					name:   fmt.Sprintf("%s relu=%v %v", mode, relu, shape),
					inputs: inputs,
					ours: func(in map[string]*G.Node) (G.Nodes, error) {
						y, mean, variance, err := batchNormForward(in["x"], in["gamma"], in["beta"], in["mean"], in["var"], train, relu)
						if !train {
							return G.Nodes{y}, err
						}
						return G.Nodes{y, mean, variance}, err
					},
					ref: func(in map[string]*G.Node) (G.Nodes, error) {
						return gorgoniaBatchNorm(in["x"], in["gamma"], in["beta"], in["mean"], in["var"], train, relu)
					},
				})
			}
		}
	}
	runOpCompareCases(t, cases)
}

// TestBatchNormOpLargeMean checks that the batch variance of channels whose
// mean is far from zero keeps its precision (the moments are accumulated
// around the channel's first value).
func TestBatchNormOpLargeMean(t *testing.T) {
	cases := []struct {
		name   string
		offset float64
	}{
		{name: "mean 0", offset: 0},
		{name: "mean 1e4", offset: 1e4},
		{name: "mean -1e6", offset: -1e6},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x := []float32{1, 2, 3, 4, 5, 6, 7, 8}
			for i := range x {
				x[i] += float32(tc.offset)
			}
			mean, variance := make([]float64, 1), make([]float64, 1)
			batchMoments(x, 2, 1, 4, mean, variance)
			if math.Abs(mean[0]-(4.5+tc.offset)) > 1e-9*math.Max(1, math.Abs(tc.offset)) || math.Abs(variance[0]-5.25) > 1e-9 {
				t.Fatalf("mean %.10g, variance %.10g; want %.10g and 5.25", mean[0], variance[0], 4.5+tc.offset)
			}
		})
	}
}

func TestBatchNormForwardRejectsUnfitShapes(t *testing.T) {
	cases := []struct {
		name       string
		x, param   []int
		train      bool
		wantSubstr string
	}{
		{name: "matrix input", x: []int{3, 4}, param: []int{4}, train: true, wantSubstr: "is not [N,C,H,W]"},
		{name: "wrong channel count", x: []int{2, 3, 4, 4}, param: []int{4}, train: true, wantSubstr: "per-channel vectors of 3"},
		{name: "eval without running statistics", x: []int{2, 3, 4, 4}, param: []int{3}, wantSubstr: "per-channel vectors of 3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := G.NewGraph()
			node := func(name string, shape []int) *G.Node {
				return G.NewTensor(g, tensor.Float64, len(shape), G.WithShape(shape...), G.WithName(name))
			}
			x := node("x", tc.x)
			_, _, _, err := batchNormForward(x, node("gamma", tc.param), node("beta", tc.param), nil, nil, tc.train, false)
			if err == nil || !strings.Contains(err.Error(), tc.wantSubstr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantSubstr)
			}
		})
	}
}

// gorgoniaBatchNorm is the composition the BatchNorm op replaced; in train
// mode it returns y, the batch mean and the biased batch variance.
func gorgoniaBatchNorm(x, gamma, beta, runMean, runVar *G.Node, train, relu bool) (G.Nodes, error) {
	dt := x.Dtype()
	var centred, mean, variance *G.Node
	var err error
	if train {
		if mean, err = gorgoniaMeanOverAxes(x, dt, 0, 2, 3); err != nil {
			return nil, err
		}
		if centred, err = G.BroadcastSub(x, mean, nil, nchwChannelAxes); err != nil {
			return nil, err
		}
		sq, err := G.Square(centred)
		if err != nil {
			return nil, err
		}
		if variance, err = gorgoniaMeanOverAxes(sq, dt, 0, 2, 3); err != nil {
			return nil, err
		}
	} else {
		variance = runVar
		if centred, err = G.BroadcastSub(x, runMean, nil, nchwChannelAxes); err != nil {
			return nil, err
		}
	}
	ve, err := G.Add(variance, scalarConst(dt, batchNormEps))
	if err != nil {
		return nil, err
	}
	std, err := G.Sqrt(ve)
	if err != nil {
		return nil, err
	}
	scale, err := G.HadamardDiv(gamma, std)
	if err != nil {
		return nil, err
	}
	out, err := G.BroadcastHadamardProd(centred, scale, nil, nchwChannelAxes)
	if err != nil {
		return nil, err
	}
	if out, err = G.BroadcastAdd(out, beta, nil, nchwChannelAxes); err != nil {
		return nil, err
	}
	if relu {
		if out, err = G.Rectify(out); err != nil {
			return nil, err
		}
	}
	if !train {
		return G.Nodes{out}, nil
	}
	return G.Nodes{out, mean, variance}, nil
}
