package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestBatchNormOpMatchesGorgoniaComposition compares the fused BatchNorm
// op, in train and eval mode, alone and fused with the ReLU after it, with
// the equivalent gorgonia composition (PyTorch's formula from Sum,
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
						y, mean, variance, err := BatchNorm(in["x"], in["gamma"], in["beta"], in["mean"], in["var"], train, relu)
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
			_, _, _, err := BatchNorm(x, node("gamma", tc.param), node("beta", tc.param), nil, nil, tc.train, false)
			if err == nil || !strings.Contains(err.Error(), tc.wantSubstr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantSubstr)
			}
		})
	}
}

// gorgoniaBatchNorm is BatchNorm as a gorgonia composition; in train
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
	ve, err := G.Add(variance, scalarConst(dt, BatchNormEps))
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

// TestMaskedBatchNormKernels32MatchGenericKernels checks the branch-free
// float32 kernels of a BatchNorm fused with a ReLU against the generic
// kernels (checked against gorgonia in float64 above) on random gradients
// and ReLU outputs of which about half are zero, with and without x (train
// and eval mode), including the edge values +Inf, the smallest subnormal
// and −0 in y.
func TestMaskedBatchNormKernels32MatchGenericKernels(t *testing.T) {
	cases := []struct {
		name      string
		n, c, hw  int
		withInput bool
	}{
		{name: "train 2x3x5", n: 2, c: 3, hw: 5, withInput: true},
		{name: "eval 2x3x5", n: 2, c: 3, hw: 5},
		{name: "train 4x2x16", n: 4, c: 2, hw: 16, withInput: true},
		{name: "eval 1x1x1", n: 1, c: 1, hw: 1},
	}
	for ci, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(53, uint64(ci)))
			size := tc.n * tc.c * tc.hw
			g, x, y := make([]float32, size), make([]float32, size), make([]float32, size)
			edges := []float32{float32(math.Inf(1)), math.SmallestNonzeroFloat32, float32(math.Copysign(0, -1))}
			for i := range size {
				g[i], x[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
				if rng.IntN(2) == 0 {
					y[i] = float32(rng.ExpFloat64())
				}
				if i < len(edges) {
					y[i] = edges[i]
				}
			}
			mean, coef, invStd := make([]float64, tc.c), make([]float64, 3*tc.c), make([]float64, tc.c)
			for ch := range tc.c {
				mean[ch], invStd[ch] = rng.NormFloat64(), 0.5+rng.Float64()
				for j := range 3 {
					coef[3*ch+j] = rng.NormFloat64()
				}
			}
			var xin []float32
			if tc.withInput {
				xin = x
			}
			got, want := make([]float32, size), make([]float32, size)
			maskedInputGradKernel32(got, g, xin, y, tc.n, tc.c, tc.hw, mean, coef)
			inputGradKernel(want, g, xin, y, tc.n, tc.c, tc.hw, mean, coef)
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("input gradient [%d] = %g, generic kernel %g (y %g)", i, got[i], want[i], y[i])
				}
			}
			gotP, wantP := make([]float32, 2*tc.c), make([]float32, 2*tc.c)
			maskedParamGradKernel32(gotP, g, x, y, tc.n, tc.c, tc.hw, mean, invStd)
			paramGradKernel(wantP, g, x, y, tc.n, tc.c, tc.hw, mean, invStd)
			for i := range wantP {
				if gotP[i] != wantP[i] {
					t.Fatalf("parameter gradient [%d] = %g, generic kernel %g", i, gotP[i], wantP[i])
				}
			}
		})
	}
}
