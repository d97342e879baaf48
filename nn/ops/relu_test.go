package ops

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestReLUOpMatchesGorgoniaRectify compares ReLU with G.Rectify
// (outputs and input gradients) and checks its gradient against finite
// differences.
func TestReLUOpMatchesGorgoniaRectify(t *testing.T) {
	var cases []opCompareCase
	for _, shape := range [][]int{{1, 5}, {3, 4, 5, 6}, {8, 7}} {
		cases = append(cases, opCompareCase{
			name:   fmt.Sprintf("%v", shape),
			inputs: []opInput{{name: "x", shape: shape, diff: true}},
			ours: func(in map[string]*G.Node) (G.Nodes, error) {
				y, err := ReLU(in["x"])
				return G.Nodes{y}, err
			},
			ref: func(in map[string]*G.Node) (G.Nodes, error) {
				y, err := G.Rectify(in["x"])
				return G.Nodes{y}, err
			},
		})
	}
	runOpCompareCases(t, cases)
}

// TestOpsAllocateNothingAfterTheFirstRun runs every op of op_*.go (forward
// and gradient) a second time and checks, with testing.AllocsPerRun, that
// the run allocates nothing: the outputs and workspaces are the op's own,
// reused.
func TestOpsAllocateNothingAfterTheFirstRun(t *testing.T) {
	type opRun struct {
		name string
		op   G.Op
		in   []G.Value
	}
	rng := rand.New(rand.NewPCG(5, 6))
	var runs []opRun
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		rand := func(shape ...int) *tensor.Dense { return randomDense(rng, dt, shape...) }
		x4 := rand(4, 3, 6, 5)
		bnTrain := newBatchNormOp(true, true, tensor.Shape{4, 3, 6, 5})
		bnEval := newBatchNormOp(false, false, tensor.Shape{4, 3, 6, 5})
		pool := &maxPoolOp{relu: true, in: tensor.Shape{4, 3, 6, 5}, out: tensor.Shape{4, 3, 3, 2}}
		runs = append(runs,
			opRun{"relu", &reluOp{}, []G.Value{x4}},
			opRun{"relu grad", &reluGradOp{}, []G.Value{x4, rand(4, 3, 6, 5)}},
			opRun{"channel bias", &channelBiasOp{}, []G.Value{x4, rand(3)}},
			opRun{"channel bias grad", &channelBiasGradOp{}, []G.Value{x4}},
			opRun{"max pool", pool, []G.Value{x4}},
			opRun{"max pool grad", &maxPoolGradOp{fwd: pool}, []G.Value{rand(4, 3, 3, 2)}},
			opRun{"avg pool", &avgPool4Op{in: tensor.Shape{4, 3, 6, 5}}, []G.Value{x4}},
			opRun{"avg pool grad", &avgPool4GradOp{in: tensor.Shape{4, 3, 6, 5}}, []G.Value{rand(4, 3)}},
			opRun{"flatten", &reshapeCopyOp{from: tensor.Shape{4, 3, 6, 5}, to: tensor.Shape{4, 90}}, []G.Value{x4}},
			opRun{"batch norm train", bnTrain, []G.Value{x4, rand(3), rand(3)}},
			opRun{"batch norm mean", &bnStatOp{fwd: bnTrain}, []G.Value{x4}},
			opRun{"batch norm param grad", &bnParamGradOp{fwd: bnTrain}, []G.Value{rand(4, 3, 6, 5), x4, x4}},
			opRun{"batch norm pick", &bnPickOp{fwd: bnTrain, row: 1}, []G.Value{rand(2, 3)}},
			opRun{"batch norm input grad", &bnInputGradOp{fwd: bnTrain}, []G.Value{rand(4, 3, 6, 5), rand(3), x4, rand(2, 3), x4}},
			opRun{"batch norm eval", bnEval, []G.Value{x4, rand(3), rand(3), rand(3), positiveDense(rng, dt, 3)}},
			opRun{"batch norm eval input grad", &bnInputGradOp{fwd: bnEval}, []G.Value{rand(4, 3, 6, 5), rand(3)}},
			opRun{"soft cross-entropy", &softCrossEntropySumOp{}, []G.Value{rand(4, 10), rand(4, 10)}},
			opRun{"KL divergence", &klDivergenceSumOp{}, []G.Value{rand(4, 10), rand(4, 10)}},
			opRun{"softmax loss grad", &softmaxLossGradOp{kind: gradKLWrtP}, []G.Value{rand(4, 10), rand(4, 10), scalarDense(dt, 0.5)}},
		)
	}
	for _, r := range runs {
		t.Run(fmt.Sprintf("%v %v", r.name, r.in[0].Dtype()), func(t *testing.T) {
			if _, err := r.op.Do(r.in...); err != nil {
				t.Fatalf("first run: %v", err)
			}
			var err error
			allocs := testing.AllocsPerRun(5, func() { _, err = r.op.Do(r.in...) })
			if err != nil {
				t.Fatal(err)
			}
			if allocs != 0 {
				t.Errorf("%v allocates %.1f objects per run after the first", r.op, allocs)
			}
		})
	}
}

// opInput is one input of an op under test: its name, shape, whether the
// loss is differentiated with respect to it, and whether its values must be
// positive (variances) or a probability row (soft targets).
type opInput struct {
	name     string
	shape    []int
	diff     bool
	positive bool
	probRows bool
}

// opCompareCase builds the same computation with our ops (ours) and with
// gorgonia's own composition (ref), returning the outputs to compare; the
// loss is Σ out₀ ⊙ R (out₀ itself when it is a scalar).
type opCompareCase struct {
	name   string
	inputs []opInput
	ours   func(in map[string]*G.Node) (G.Nodes, error)
	ref    func(in map[string]*G.Node) (G.Nodes, error)
}

// runOpCompareCases runs every case in float64 (ours against gorgonia to
// 1e-10, and our gradients against central differences) and in float32
// (against gorgonia to 1e-5). Each comparison runs three rounds on fresh
// random values, so that an op keeping stale values in its reused buffers
// would be caught.
func runOpCompareCases(t *testing.T, cases []opCompareCase) {
	t.Helper()
	for ci, tc := range cases {
		for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
			t.Run(fmt.Sprintf("%s %v", tc.name, dt), func(t *testing.T) {
				tol := 1e-10
				if dt == tensor.Float32 {
					tol = 1e-5
				}
				rng := rand.New(rand.NewPCG(61, uint64(ci)))
				ours := newOpGraph(t, dt, tc.inputs, tc.ours)
				ref := newOpGraph(t, dt, tc.inputs, tc.ref)
				for round := range 3 {
					ours.randomise(rng)
					ref.setData(ours.data)
					got, want := ours.run(t), ref.run(t)
					for name, w := range want {
						g := got[name]
						if len(g) != len(w) {
							t.Fatalf("round %d: %s has %d values, gorgonia's %d", round, name, len(g), len(w))
						}
						for j := range w {
							if math.Abs(g[j]-w[j]) > tol*math.Max(1, math.Abs(w[j])) {
								t.Fatalf("round %d: %s[%d] = %.12g, gorgonia's composition gives %.12g", round, name, j, g[j], w[j])
							}
						}
					}
				}
				if dt == tensor.Float64 {
					ours.checkFiniteDifferences(t, rng)
				}
			})
		}
	}
}

// opGraph is a graph computing outputs of an op under test from bound
// inputs, loss = Σ out₀ ⊙ R, and the loss's gradients.
type opGraph struct {
	vm     G.VM
	inputs []opInput
	data   map[string][]float64 // caller-side values of the inputs and R
	bound  map[string]*tensor.Dense
	outs   G.Nodes
	loss   *G.Node
	grads  map[string]*G.Node // by input name
}

func newOpGraph(t *testing.T, dt tensor.Dtype, inputs []opInput, build func(map[string]*G.Node) (G.Nodes, error)) *opGraph {
	t.Helper()
	g := G.NewGraph()
	og := &opGraph{inputs: inputs, data: map[string][]float64{}, bound: map[string]*tensor.Dense{}, grads: map[string]*G.Node{}}
	bind := func(name string, shape []int) *G.Node {
		tn := tensor.New(tensor.WithShape(shape...), tensor.Of(dt))
		og.bound[name] = tn
		og.data[name] = make([]float64, tn.Shape().TotalSize())
		return G.NewTensor(g, dt, len(shape), G.WithShape(shape...), G.WithName(name), G.WithValue(tn))
	}
	nodes := map[string]*G.Node{}
	var wrt G.Nodes
	var wrtNames []string
	for _, in := range inputs {
		nodes[in.name] = bind(in.name, in.shape)
		if in.diff {
			wrt = append(wrt, nodes[in.name])
			wrtNames = append(wrtNames, in.name)
		}
	}
	outs, err := build(nodes)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	og.outs = outs
	out := outs[0]
	if out.Shape().IsScalar() {
		og.loss = out
	} else {
		prod, err := G.HadamardProd(out, bind("R", out.Shape().Clone()))
		if err != nil {
			t.Fatal(err)
		}
		if og.loss, err = G.Sum(prod); err != nil {
			t.Fatal(err)
		}
	}
	grads, err := G.Grad(og.loss, wrt...)
	if err != nil {
		t.Fatalf("grad: %v", err)
	}
	watch := []any{og.loss}
	for _, o := range outs {
		watch = append(watch, o)
	}
	for i, gn := range grads {
		og.grads[wrtNames[i]] = gn
		watch = append(watch, gn)
	}
	og.vm = G.NewTapeMachine(g, G.TraceExec(), G.WithWatchlist(watch...))
	return og
}

// randomise draws new values for every input (normal; positive inputs in
// [0.5, 1.5]; probability rows positive and summing to 1) and R.
func (og *opGraph) randomise(rng *rand.Rand) {
	kinds := map[string]opInput{}
	for _, in := range og.inputs {
		kinds[in.name] = in
	}
	for _, name := range slices.Sorted(maps.Keys(og.data)) {
		d, in := og.data[name], kinds[name]
		for j := range d {
			switch {
			case in.positive, in.probRows:
				d[j] = 0.5 + rng.Float64()
			default:
				d[j] = rng.NormFloat64()
			}
		}
		if in.probRows {
			k := in.shape[len(in.shape)-1]
			for off := 0; off < len(d); off += k {
				s := 0.0
				for _, v := range d[off : off+k] {
					s += v
				}
				for j := off; j < off+k; j++ {
					d[j] /= s
				}
			}
		}
	}
}

// setData copies values (by input name) into the graph's caller-side data.
func (og *opGraph) setData(values map[string][]float64) {
	for name, d := range og.data {
		copy(d, values[name])
	}
}

// run binds the data, runs the graph and returns the loss ("loss"), the
// outputs ("out0", …) and the gradients ("d"+input name).
func (og *opGraph) run(t *testing.T) map[string][]float64 {
	t.Helper()
	for name, d := range og.data {
		copyIntoDense(og.bound[name], d)
	}
	defer og.vm.Reset()
	if err := og.vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	res := map[string][]float64{"loss": {scalarOfValue(t, og.loss.Value())}}
	for i, o := range og.outs {
		if o.Shape().IsScalar() {
			res[fmt.Sprintf("out%d", i)] = []float64{scalarOfValue(t, o.Value())}
		} else {
			res[fmt.Sprintf("out%d", i)] = readValue(o.Value())
		}
	}
	for name, gn := range og.grads {
		res["d"+name] = readValue(gn.Value())
	}
	return res
}

// checkFiniteDifferences compares the analytic gradients with central
// differences of the loss at up to 40 random positions of each
// differentiated input.
func (og *opGraph) checkFiniteDifferences(t *testing.T, rng *rand.Rand) {
	t.Helper()
	analytic := og.run(t)
	for _, in := range og.inputs {
		if !in.diff {
			continue
		}
		d, want := og.data[in.name], analytic["d"+in.name]
		positions := rng.Perm(len(d))
		for _, j := range positions[:min(len(positions), 40)] {
			orig := d[j]
			d[j] = orig + fdStep
			up := og.run(t)["loss"][0]
			d[j] = orig - fdStep
			down := og.run(t)["loss"][0]
			d[j] = orig
			fd := (up - down) / (2 * fdStep)
			if diff := math.Abs(fd - want[j]); diff > fdAbsTol+fdRelTol*math.Max(math.Abs(fd), math.Abs(want[j])) {
				t.Errorf("d%s[%d]: analytic %.10g, finite difference %.10g", in.name, j, want[j], fd)
			}
		}
	}
}

// scalarOfValue reads a scalar graph value.
func scalarOfValue(t *testing.T, v G.Value) float64 {
	t.Helper()
	s, err := ScalarOf(v)
	if err != nil {
		t.Fatalf("loss: %v", err)
	}
	return s
}

// randomDense is a tensor of standard normal values.
func randomDense(rng *rand.Rand, dt tensor.Dtype, shape ...int) *tensor.Dense {
	t := tensor.New(tensor.WithShape(shape...), tensor.Of(dt))
	d := make([]float64, t.Shape().TotalSize())
	for i := range d {
		d[i] = rng.NormFloat64()
	}
	copyIntoDense(t, d)
	return t
}

// positiveDense is a tensor of values in [0.5, 1.5].
func positiveDense(rng *rand.Rand, dt tensor.Dtype, shape ...int) *tensor.Dense {
	t := tensor.New(tensor.WithShape(shape...), tensor.Of(dt))
	d := make([]float64, t.Shape().TotalSize())
	for i := range d {
		d[i] = 0.5 + rng.Float64()
	}
	copyIntoDense(t, d)
	return t
}

// scalarDense is a one-value tensor holding v.
func scalarDense(dt tensor.Dtype, v float64) *tensor.Dense {
	t := tensor.New(tensor.WithShape(1), tensor.Of(dt))
	copyIntoDense(t, []float64{v})
	return t
}

// TestOpsRejectWrongValues checks that the ops report, rather than panic
// on, inputs and preallocated outputs that do not fit them: gorgonia falls
// back from a refused preallocated output to Do.
func TestOpsRejectWrongValues(t *testing.T) {
	f64 := func(shape ...int) *tensor.Dense {
		return tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float64))
	}
	f32 := func(shape ...int) *tensor.Dense {
		return tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float32))
	}
	ints := tensor.New(tensor.WithShape(2, 3), tensor.Of(tensor.Int))
	view, err := f64(4, 6).Slice(nil, tensor.S(0, 3))
	if err != nil {
		t.Fatal(err)
	}
	pool := &maxPoolOp{in: tensor.Shape{1, 2, 4, 4}, out: tensor.Shape{1, 2, 2, 2}}
	bn := newBatchNormOp(true, false, tensor.Shape{2, 3, 2, 2})
	cases := []struct {
		name     string
		op       G.UsePreallocDoer
		prealloc G.Value
		in       []G.Value
		want     string
	}{
		{name: "relu of ints", op: &reluOp{}, prealloc: f64(2, 3), in: []G.Value{ints}, want: "want float32 or float64"},
		{name: "relu into a wrong shape", op: &reluOp{}, prealloc: f64(3, 2), in: []G.Value{f64(2, 3)}, want: "is not a dense float64 tensor of shape [2 3]"},
		{name: "relu into a wrong dtype", op: &reluOp{}, prealloc: f32(2, 3), in: []G.Value{f64(2, 3)}, want: "is not a dense float64 tensor of shape [2 3]"},
		{name: "relu into a view", op: &reluOp{}, prealloc: view, in: []G.Value{f64(4, 3)}, want: "is a view"},
		{name: "relu of two inputs", op: &reluOp{}, prealloc: f64(2, 3), in: []G.Value{f64(2, 3), f64(2, 3)}, want: "want 1 inputs, got 2"},
		{name: "relu grad of mixed dtypes", op: &reluGradOp{}, prealloc: f64(2, 3), in: []G.Value{f64(2, 3), f32(2, 3)}, want: "want float64"},
		{name: "relu grad of mixed shapes", op: &reluGradOp{}, prealloc: f64(2, 3), in: []G.Value{f64(2, 3), f64(3, 2)}, want: "want float64 (2, 3)"},
		{name: "max pool of another shape", op: pool, prealloc: f64(1, 2, 2, 2), in: []G.Value{f64(1, 2, 4, 6)}, want: "input (1, 2, 4, 6), built for (1, 2, 4, 4)"},
		{name: "max pool grad before the forward op ran", op: &maxPoolGradOp{fwd: pool}, prealloc: f64(1, 2, 4, 4), in: []G.Value{f64(1, 2, 2, 2)}, want: "or the forward op has not run"},
		{name: "batch norm with a short γ", op: bn, prealloc: f64(2, 3, 2, 2), in: []G.Value{f64(2, 3, 2, 2), f64(2), f64(3)}, want: "input 1 is float64 (2), want float64 (3)"},
		{name: "batch norm grad before the forward op ran", op: &bnInputGradOp{fwd: bn}, prealloc: f64(2, 3, 2, 2),
			in: []G.Value{f64(2, 3, 2, 2), f64(3), f64(2, 3, 2, 2), f64(2, 3)}, want: "the forward op has not run"},
		{name: "softmax loss grad of a vector gradient", op: &softmaxLossGradOp{}, prealloc: f64(2, 3), in: []G.Value{f64(2, 3), f64(2, 3), f64(3)}, want: "is not a float scalar"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.op.UsePreallocDo(tc.prealloc, tc.in...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v into %v: error %v, want one containing %q", tc.op, tc.prealloc.Shape(), err, tc.want)
			}
		})
	}
}
