package ops

import (
	"fmt"
	"math"
	"testing"

	G "gorgonia.org/gorgonia"
)

// TestSoftmaxLossOpsMatchGorgoniaComposition compares the fused soft-target
// cross-entropy and KL divergence with the equivalent gorgonia compositions
// (G.LogSoftMax, products, Exp, Sub, Sum, Neg): losses and gradients with
// respect to the logits (both sets of logits for the KL), at batch 1, 3
// and 8, and checks the gradients against finite differences.
func TestSoftmaxLossOpsMatchGorgoniaComposition(t *testing.T) {
	var cases []opCompareCase
	for _, shape := range [][]int{{1, 10}, {3, 7}, {8, 10}} {
		cases = append(cases,
			opCompareCase{
				name:   fmt.Sprintf("soft cross-entropy %v", shape),
				inputs: []opInput{{name: "z", shape: shape, diff: true}, {name: "T", shape: shape, probRows: true}},
				ours: func(in map[string]*G.Node) (G.Nodes, error) {
					l, err := SoftCrossEntropySum(in["z"], in["T"])
					return G.Nodes{l}, err
				},
				ref: func(in map[string]*G.Node) (G.Nodes, error) {
					l, err := gorgoniaSoftCrossEntropySum(in["z"], in["T"])
					return G.Nodes{l}, err
				},
			},
			opCompareCase{
				name:   fmt.Sprintf("KL divergence %v", shape),
				inputs: []opInput{{name: "p", shape: shape, diff: true}, {name: "q", shape: shape, diff: true}},
				ours: func(in map[string]*G.Node) (G.Nodes, error) {
					l, err := KLDivergenceSum(in["p"], in["q"])
					return G.Nodes{l}, err
				},
				ref: func(in map[string]*G.Node) (G.Nodes, error) {
					l, err := gorgoniaKLDivergenceSum(in["p"], in["q"])
					return G.Nodes{l}, err
				},
			})
	}
	runOpCompareCases(t, cases)
}

// TestSoftCrossEntropyKernelHandComputed checks the kernels on values worked
// out by hand, including logits large enough to overflow a naive exp.
func TestSoftCrossEntropyKernelHandComputed(t *testing.T) {
	ln2 := math.Log(2)
	cases := []struct {
		name   string
		z, tgt []float64
		want   float64
	}{
		{name: "uniform logits, one-hot", z: []float64{0, 0}, tgt: []float64{0, 1}, want: ln2},
		{name: "uniform logits, soft target", z: []float64{3, 3}, tgt: []float64{0.5, 0.5}, want: ln2},
		{name: "huge logits", z: []float64{1000, 1000 + ln2}, tgt: []float64{1, 0}, want: math.Log(3)},
		{name: "two rows", z: []float64{0, 0, 1000, 1000}, tgt: []float64{1, 0, 0, 2}, want: 3 * ln2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := softCrossEntropyKernel(tc.z, tc.tgt, 2); math.Abs(got-tc.want) > 1e-12 {
				t.Fatalf("loss %.15g, want %.15g", got, tc.want)
			}
		})
	}
	// KL(softmax(0, ln 3) ‖ softmax(0, 0)) = ¼·ln(½) + ¾·ln(3/2).
	want := 0.25*math.Log(0.5) + 0.75*math.Log(1.5)
	if got := klDivergenceKernel([]float64{0, math.Log(3)}, []float64{0, 0}, 2); math.Abs(got-want) > 1e-12 {
		t.Fatalf("KL %.15g, want %.15g", got, want)
	}
}

// gorgoniaSoftCrossEntropySum is SoftCrossEntropySum as a gorgonia
// composition.
func gorgoniaSoftCrossEntropySum(logits, target *G.Node) (*G.Node, error) {
	logp, err := G.LogSoftMax(logits, 1)
	if err != nil {
		return nil, err
	}
	prod, err := G.HadamardProd(target, logp)
	if err != nil {
		return nil, err
	}
	sum, err := G.Sum(prod)
	if err != nil {
		return nil, err
	}
	return G.Neg(sum)
}

// gorgoniaKLDivergenceSum is KLDivergenceSum as a gorgonia composition.
func gorgoniaKLDivergenceSum(p, q *G.Node) (*G.Node, error) {
	logP, err := G.LogSoftMax(p, 1)
	if err != nil {
		return nil, err
	}
	logQ, err := G.LogSoftMax(q, 1)
	if err != nil {
		return nil, err
	}
	probP, err := G.Exp(logP)
	if err != nil {
		return nil, err
	}
	diff, err := G.Sub(logP, logQ)
	if err != nil {
		return nil, err
	}
	prod, err := G.HadamardProd(probP, diff)
	if err != nil {
		return nil, err
	}
	return G.Sum(prod)
}
