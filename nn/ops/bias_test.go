package ops

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// nchwChannelAxes are the axes a per-channel vector [C] is broadcast along to
// meet an NCHW tensor, for the gorgonia reference graphs.
var nchwChannelAxes = []byte{0, 2, 3}

// TestChannelBiasOpMatchesGorgoniaBroadcastAdd compares ChannelBias
// with G.BroadcastAdd (outputs, and gradients for x and b) and checks its
// gradients against finite differences.
func TestChannelBiasOpMatchesGorgoniaBroadcastAdd(t *testing.T) {
	var cases []opCompareCase
	for _, shape := range [][]int{{1, 1, 1, 1}, {2, 3, 4, 5}, {3, 8, 7, 1}} {
		cases = append(cases, opCompareCase{
			name: fmt.Sprintf("%v", shape),
			inputs: []opInput{
				{name: "x", shape: shape, diff: true},
				{name: "b", shape: []int{shape[1]}, diff: true},
			},
			ours: func(in map[string]*G.Node) (G.Nodes, error) {
				y, err := ChannelBias(in["x"], in["b"])
				return G.Nodes{y}, err
			},
			ref: func(in map[string]*G.Node) (G.Nodes, error) {
				y, err := G.BroadcastAdd(in["x"], in["b"], nil, nchwChannelAxes)
				return G.Nodes{y}, err
			},
		})
	}
	runOpCompareCases(t, cases)
}

// TestChannelBiasHandComputed checks both kernels on a case small enough to
// add up by hand.
func TestChannelBiasHandComputed(t *testing.T) {
	// x [2,2,1,2]: image 0 channels (1,2) and (3,4), image 1 (5,6) and (7,8).
	x := tensor.New(tensor.WithShape(2, 2, 1, 2), tensor.WithBacking([]float64{1, 2, 3, 4, 5, 6, 7, 8}))
	b := tensor.New(tensor.WithShape(2), tensor.WithBacking([]float64{10, -1}))
	y, err := (&channelBiasOp{}).Do(x, b)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := y.Data().([]float64), []float64{11, 12, 2, 3, 15, 16, 6, 7}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("y = %v, want %v", got, want)
	}
	db, err := (&channelBiasGradOp{}).Do(x)
	if err != nil {
		t.Fatal(err)
	}
	// channel 0: 1+2+5+6, channel 1: 3+4+7+8.
	if got, want := db.Data().([]float64), []float64{14, 22}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("db = %v, want %v", got, want)
	}
}

// TestChannelBiasRejectsMismatchedBias checks that a bias of the wrong
// length is refused when the graph is built.
func TestChannelBiasRejectsMismatchedBias(t *testing.T) {
	g := G.NewGraph()
	rng := rand.New(rand.NewPCG(1, 2))
	x := G.NewTensor(g, tensor.Float64, 4, G.WithShape(2, 3, 4, 4), G.WithValue(randomDense(rng, tensor.Float64, 2, 3, 4, 4)))
	b := G.NewVector(g, tensor.Float64, G.WithShape(4), G.WithValue(randomDense(rng, tensor.Float64, 4)))
	if _, err := ChannelBias(x, b); err == nil || !strings.Contains(err.Error(), "a bias of one value per channel") {
		t.Fatalf("a 4-value bias on 3 channels: error %v, want one about the bias length", err)
	}
}
