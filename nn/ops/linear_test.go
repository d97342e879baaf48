package ops

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestLinearOpMatchesGorgoniaMulTranspose builds, in one graph, y = x·Wᵀ + b
// twice: with linearOp and with gorgonia's own Mul(x, Transpose(W)) +
// BroadcastAdd, and compares the outputs and the gradients of
// loss = sum(y ⊙ R) with respect to x, W and b, on random shapes in float32
// and float64. Every case runs three times on fresh random inputs, so an op
// that kept stale values in its reused output would be caught. The "shared
// weight" cases apply the layer to two inputs, as a TRADES graph does, so
// the weight gradient is the sum of two linearWeightGradOp outputs.
func TestLinearOpMatchesGorgoniaMulTranspose(t *testing.T) {
	cases := []struct {
		name         string
		batch, in    int
		out          int
		dtype        tensor.Dtype
		sharedWeight bool
		tol          float64
	}{
		{name: "1x1x1 float64", batch: 1, in: 1, out: 1, dtype: tensor.Float64, tol: 1e-12},
		{name: "3x4->5 float64", batch: 3, in: 4, out: 5, dtype: tensor.Float64, tol: 1e-12},
		{name: "7x33->2 float64", batch: 7, in: 33, out: 2, dtype: tensor.Float64, tol: 1e-12},
		{name: "64x97->31 float64", batch: 64, in: 97, out: 31, dtype: tensor.Float64, tol: 1e-11},
		{name: "5x6->7 float64 shared weight", batch: 5, in: 6, out: 7, dtype: tensor.Float64, sharedWeight: true, tol: 1e-12},
		{name: "3x4->5 float32", batch: 3, in: 4, out: 5, dtype: tensor.Float32, tol: 1e-5},
		{name: "64x97->31 float32", batch: 64, in: 97, out: 31, dtype: tensor.Float32, tol: 1e-4},
		{name: "9x10->11 float32 shared weight", batch: 9, in: 10, out: 11, dtype: tensor.Float32, sharedWeight: true, tol: 1e-5},
	}
	for ci, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(41, uint64(ci)))
			ours := newLinearCompare(t, tc.batch, tc.in, tc.out, tc.dtype, tc.sharedWeight, true)
			ref := newLinearCompare(t, tc.batch, tc.in, tc.out, tc.dtype, tc.sharedWeight, false)
			for round := range 3 {
				for name, d := range ours.data {
					for j := range d {
						d[j] = rng.NormFloat64()
					}
					copy(ref.data[name], d)
				}
				got, want := ours.run(t), ref.run(t)
				for name, w := range want {
					g := got[name]
					for j := range w {
						if math.Abs(g[j]-w[j]) > tc.tol*math.Max(1, math.Abs(w[j])) {
							t.Fatalf("round %d: %s[%d] = %.10g, gorgonia Mul+Transpose gives %.10g", round, name, j, g[j], w[j])
						}
					}
				}
			}
		})
	}
}

func TestLinearForwardRejectsMismatchedShapes(t *testing.T) {
	cases := []struct {
		name       string
		x, w, b    []int
		wantSubstr string
	}{
		{name: "input width", x: []int{2, 3}, w: []int{4, 5}, b: []int{4}, wantSubstr: "do not fit"},
		{name: "bias length", x: []int{2, 3}, w: []int{4, 3}, b: []int{5}, wantSubstr: "do not fit"},
		{name: "input not a matrix", x: []int{2, 3, 1}, w: []int{4, 3}, b: []int{4}, wantSubstr: "do not fit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := G.NewGraph()
			node := func(name string, shape []int) *G.Node {
				return G.NewTensor(g, tensor.Float64, len(shape), G.WithShape(shape...), G.WithName(name))
			}
			_, err := Linear(node("x", tc.x), node("w", tc.w), node("b", tc.b))
			if err == nil || !strings.Contains(err.Error(), tc.wantSubstr) {
				t.Fatalf("Linear(x %v, w %v, b %v) error %v, want one containing %q", tc.x, tc.w, tc.b, err, tc.wantSubstr)
			}
		})
	}
}

func TestLinearOpRejectsWrongPreallocatedOutput(t *testing.T) {
	x := tensor.New(tensor.WithShape(2, 3), tensor.WithBacking(make([]float64, 6)))
	w := tensor.New(tensor.WithShape(4, 3), tensor.WithBacking(make([]float64, 12)))
	b := tensor.New(tensor.WithShape(4), tensor.WithBacking(make([]float64, 4)))
	cases := []struct {
		name     string
		prealloc *tensor.Dense
	}{
		{name: "wrong shape", prealloc: tensor.New(tensor.WithShape(4, 2), tensor.Of(tensor.Float64))},
		{name: "wrong dtype", prealloc: tensor.New(tensor.WithShape(2, 4), tensor.Of(tensor.Float32))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			const want = "is not a dense float64 tensor of shape [2 4]"
			if _, err := (&linearOp{}).UsePreallocDo(tc.prealloc, x, w, b); err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("UsePreallocDo into %v %v: error %v, want one containing %q", tc.prealloc.Dtype(), tc.prealloc.Shape(), err, want)
			}
		})
	}
	if _, err := (&linearOp{}).UsePreallocDo(tensor.New(tensor.WithShape(2, 4), tensor.Of(tensor.Float64)), x, w, b); err != nil {
		t.Fatalf("UsePreallocDo into the right output: %v", err)
	}
}

// linearCompare is a graph computing loss = sum(y ⊙ R) (plus the same for a
// second input when the weight is shared) and its gradients.
type linearCompare struct {
	vm    G.VM
	data  map[string][]float64 // x, x2, w, b, r, r2: caller-side values, copied in before each run
	bound map[string]*tensor.Dense
	watch map[string]*G.Node // y, y2 and the gradients
}

func newLinearCompare(t *testing.T, batch, in, out int, dt tensor.Dtype, sharedWeight, useOp bool) *linearCompare {
	t.Helper()
	g := G.NewGraph()
	c := &linearCompare{data: map[string][]float64{}, bound: map[string]*tensor.Dense{}, watch: map[string]*G.Node{}}
	input := func(name string, shape ...int) *G.Node {
		tn := tensor.New(tensor.WithShape(shape...), tensor.Of(dt))
		c.bound[name] = tn
		c.data[name] = make([]float64, tn.Shape().TotalSize())
		return G.NewTensor(g, dt, len(shape), G.WithShape(shape...), G.WithName(name), G.WithValue(tn))
	}
	w, b := input("w", out, in), input("b", out)
	apply := func(x *G.Node) *G.Node {
		if useOp {
			y, err := Linear(x, w, b)
			if err != nil {
				t.Fatal(err)
			}
			return y
		}
		wt, err := G.Transpose(w)
		if err != nil {
			t.Fatal(err)
		}
		y, err := G.Mul(x, wt)
		if err != nil {
			t.Fatal(err)
		}
		if y, err = G.BroadcastAdd(y, b, nil, []byte{0}); err != nil {
			t.Fatal(err)
		}
		return y
	}
	suffixes := []string{""}
	if sharedWeight {
		suffixes = append(suffixes, "2")
	}
	wrt := G.Nodes{w, b}
	var loss *G.Node
	for _, s := range suffixes {
		x := input("x"+s, batch, in)
		r := input("r"+s, batch, out)
		y := apply(x)
		c.watch["y"+s] = y
		prod, err := G.HadamardProd(y, r)
		if err != nil {
			t.Fatal(err)
		}
		sum, err := G.Sum(prod)
		if err != nil {
			t.Fatal(err)
		}
		if loss == nil {
			loss = sum
		} else if loss, err = G.Add(loss, sum); err != nil {
			t.Fatal(err)
		}
		wrt = append(wrt, x)
	}
	grads, err := G.Grad(loss, wrt...)
	if err != nil {
		t.Fatalf("grad: %v", err)
	}
	for i, gn := range grads {
		c.watch["d"+wrt[i].Name()] = gn
	}
	watch := []any{}
	for _, n := range c.watch {
		watch = append(watch, n)
	}
	c.vm = G.NewTapeMachine(g, G.TraceExec(), G.WithWatchlist(watch...))
	return c
}

// run copies the caller-side values in, runs the graph and returns every
// watched value.
func (c *linearCompare) run(t *testing.T) map[string][]float64 {
	t.Helper()
	for name, d := range c.data {
		copyIntoDense(c.bound[name], d)
	}
	defer c.vm.Reset()
	if err := c.vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	out := map[string][]float64{}
	for name, n := range c.watch {
		out[name] = readValue(n.Value())
	}
	return out
}
