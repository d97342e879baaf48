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

// convCase is one convolution geometry: input [batch,inC,h,w], weight
// [outC,inC,k,k], stride and padding.
type convCase struct {
	name                string
	batch, inC, h, w    int
	outC, k, stride, pd int
}

func (c convCase) String() string {
	return fmt.Sprintf("%s B%d %dx%dx%d->%d k%d s%d p%d", c.name, c.batch, c.inC, c.h, c.w, c.outC, c.k, c.stride, c.pd)
}

// convCases cover strides 1 and 2, paddings 0 to 2, kernels 1, 3 and 5,
// batches 1 and 3, non-square images, a kernel wider than the image, and
// the kernels' four paths: one image per product (output plane of 256
// values or more), several images per product (smaller planes, including a
// last group with fewer images), the 1x1 stride-1 path that multiplies
// the image in place, and Winograd F(2×2,3×3) for 3x3 stride-1 padding-1
// convolutions with 16 or more channels (odd sizes, tiles hanging over
// the edges, a last group with fewer images).
var convCases = []convCase{
	{name: "single image", batch: 1, inC: 1, h: 5, w: 5, outC: 1, k: 3, stride: 1, pd: 0},
	{name: "grouped", batch: 3, inC: 2, h: 7, w: 6, outC: 4, k: 3, stride: 1, pd: 1},
	{name: "grouped 5x5 stride 2", batch: 3, inC: 3, h: 9, w: 8, outC: 5, k: 5, stride: 2, pd: 2},
	{name: "grouped, last group short", batch: 3, inC: 2, h: 10, w: 10, outC: 3, k: 3, stride: 1, pd: 1},
	{name: "pad 2 stride 2", batch: 3, inC: 2, h: 5, w: 6, outC: 2, k: 3, stride: 2, pd: 2},
	{name: "kernel wider than image", batch: 1, inC: 2, h: 3, w: 2, outC: 2, k: 5, stride: 1, pd: 2},
	{name: "pointwise grouped", batch: 3, inC: 2, h: 6, w: 7, outC: 3, k: 1, stride: 1, pd: 0},
	{name: "pointwise in place", batch: 3, inC: 2, h: 17, w: 16, outC: 3, k: 1, stride: 1, pd: 0},
	{name: "1x1 stride 2 shortcut", batch: 1, inC: 3, h: 8, w: 9, outC: 2, k: 1, stride: 2, pd: 0},
	{name: "one image per product", batch: 3, inC: 2, h: 16, w: 17, outC: 4, k: 3, stride: 1, pd: 0},
	{name: "one image per product stride 2", batch: 3, inC: 2, h: 33, w: 31, outC: 4, k: 3, stride: 2, pd: 1},
	{name: "5x5 pad 1", batch: 1, inC: 2, h: 20, w: 18, outC: 3, k: 5, stride: 1, pd: 1},
	{name: "same size, one image per product", batch: 2, inC: 3, h: 16, w: 18, outC: 4, k: 3, stride: 1, pd: 1},
	{name: "same size 5x5 grouped", batch: 3, inC: 2, h: 6, w: 5, outC: 3, k: 5, stride: 1, pd: 2},
	{name: "same size, channels in blocks", batch: 1, inC: 6, h: 32, w: 32, outC: 2, k: 3, stride: 1, pd: 1},
	{name: "same size 7x7 on 2x3", batch: 2, inC: 2, h: 2, w: 3, outC: 2, k: 7, stride: 1, pd: 3},
	{name: "winograd", batch: 1, inC: 16, h: 4, w: 4, outC: 16, k: 3, stride: 1, pd: 1},
	{name: "winograd odd sizes, last group short", batch: 3, inC: 17, h: 20, w: 19, outC: 18, k: 3, stride: 1, pd: 1},
	{name: "winograd 1x1 and 3x2 images", batch: 2, inC: 16, h: 1, w: 1, outC: 16, k: 3, stride: 1, pd: 1},
	{name: "winograd 3x2 image, fewer outputs", batch: 2, inC: 20, h: 3, w: 2, outC: 16, k: 3, stride: 1, pd: 1},
}

// TestConv2dOpMatchesGorgoniaConv2d builds loss = sum(y ⊙ R) for
// y = conv2d(x, w) twice, with conv2dOp and with gorgonia's own G.Conv2d,
// and compares y and the gradients with respect to x and w, in float64 and
// float32. Every case runs three times on fresh random inputs, so an op that
// kept stale values in its reused output or workspace would be caught. The
// "shared weight" variant applies the convolution to two inputs, as a TRADES
// graph does, so the weight gradient is the sum of two weight-gradient ops.
func TestConv2dOpMatchesGorgoniaConv2d(t *testing.T) {
	type variant struct {
		dtype  tensor.Dtype
		shared bool
		tol    float64
	}
	variants := []variant{
		{dtype: tensor.Float64, tol: 1e-10},
		{dtype: tensor.Float32, tol: 1e-5},
	}
	for ci, cc := range convCases {
		vs := variants
		if ci%4 == 1 {
			vs = append(vs, variant{dtype: tensor.Float64, shared: true, tol: 1e-10}, variant{dtype: tensor.Float32, shared: true, tol: 1e-5})
		}
		for vi, v := range vs {
			name := fmt.Sprintf("%v %v", cc, v.dtype)
			if v.shared {
				name += " shared weight"
			}
			t.Run(name, func(t *testing.T) {
				rng := rand.New(rand.NewPCG(43, uint64(ci*10+vi)))
				ours := newConvCompare(t, cc, v.dtype, v.shared, true)
				ref := newConvCompare(t, cc, v.dtype, v.shared, false)
				for round := range 3 {
					ours.randomise(rng)
					ref.copyInputs(ours)
					got, want := ours.run(t), ref.run(t)
					for name, w := range want {
						g := got[name]
						if len(g) != len(w) {
							t.Fatalf("%s has %d values, gorgonia's %d", name, len(g), len(w))
						}
						// Relative to the largest magnitude: a float32
						// sum of hundreds of products keeps ~1e-7 of
						// its terms' size, not of a small result's.
						scale := 1.0
						for _, x := range w {
							scale = math.Max(scale, math.Abs(x))
						}
						for j := range w {
							if math.Abs(g[j]-w[j]) > v.tol*scale {
								t.Fatalf("round %d: %s[%d] = %.12g, gorgonia Conv2d gives %.12g", round, name, j, g[j], w[j])
							}
						}
					}
				}
			})
		}
	}
}

// TestConv2dOpMatchesHandComputedCases checks the forward pass on a 3x3
// image 1..9 and a 2x2 kernel of ones, where every output is a sum of
// image values counted by hand.
func TestConv2dOpMatchesHandComputedCases(t *testing.T) {
	image := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9}
	cases := []struct {
		name        string
		stride, pad int
		want        []float64
	}{
		// windows {1,2,4,5}, {2,3,5,6}, {4,5,7,8}, {5,6,8,9}
		{name: "stride 1", stride: 1, pad: 0, want: []float64{12, 16, 24, 28}},
		// windows over rows/cols -1..0 and 1..2: {1}, {2,3}, {4,7}, {5,6,8,9}
		{name: "stride 2 pad 1", stride: 2, pad: 1, want: []float64{1, 5, 11, 28}},
		// the 4x4 output of a padded 3x3: corners see one value, edges two
		{name: "stride 1 pad 1", stride: 1, pad: 1, want: []float64{1, 3, 5, 3, 5, 12, 16, 9, 11, 24, 28, 15, 7, 15, 17, 9}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
				x := tensor.New(tensor.WithShape(1, 1, 3, 3), tensor.Of(dt))
				w := tensor.New(tensor.WithShape(1, 1, 2, 2), tensor.Of(dt))
				copyIntoDense(x, image)
				copyIntoDense(w, []float64{1, 1, 1, 1})
				y, err := (&conv2dOp{stride: tc.stride, pad: tc.pad}).Do(x, w)
				if err != nil {
					t.Fatal(err)
				}
				got := readValue(y)
				if len(got) != len(tc.want) {
					t.Fatalf("%v: %d outputs %v, want %d", dt, len(got), y.Shape(), len(tc.want))
				}
				for i := range got {
					if got[i] != tc.want[i] {
						t.Fatalf("%v: output %v, want %v", dt, got, tc.want)
					}
				}
			}
		})
	}
}

// TestConv2dGradientsMatchFiniteDifferences compares the gradients of
// loss = sum(conv2d(x, w) ⊙ R) that gorgonia's autodiff builds from the
// gradient ops with central differences of the forward op, in float64, on
// every entry of x and w. The loss is linear in each of x and w, so the
// differences are exact up to rounding and the tolerance is tight.
func TestConv2dGradientsMatchFiniteDifferences(t *testing.T) {
	const h, tol = 1e-3, 1e-9
	for ci, cc := range convCases {
		if cc.batch*cc.inC*cc.h*cc.w > 400 {
			continue // the large-plane cases are checked against G.Conv2d
		}
		t.Run(cc.String(), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(47, uint64(ci)))
			c := newConvCompare(t, cc, tensor.Float64, false, true)
			c.randomise(rng)
			grads := c.run(t)
			loss := func() float64 {
				x := tensor.New(tensor.WithShape(cc.batch, cc.inC, cc.h, cc.w), tensor.WithBacking(append([]float64(nil), c.data["x"]...)))
				w := tensor.New(tensor.WithShape(cc.outC, cc.inC, cc.k, cc.k), tensor.WithBacking(append([]float64(nil), c.data["w"]...)))
				y, err := (&conv2dOp{stride: cc.stride, pad: cc.pd}).Do(x, w)
				if err != nil {
					t.Fatal(err)
				}
				sum := 0.0
				for i, v := range y.Data().([]float64) {
					sum += v * c.data["r"][i]
				}
				return sum
			}
			for _, wrt := range []string{"x", "w"} {
				d, grad := c.data[wrt], grads["d"+wrt]
				for i := range d {
					orig := d[i]
					d[i] = orig + h
					up := loss()
					d[i] = orig - h
					down := loss()
					d[i] = orig
					fd := (up - down) / (2 * h)
					if math.Abs(grad[i]-fd) > tol*math.Max(1, math.Abs(fd)) {
						t.Fatalf("d loss/d %s[%d] = %.12g, central difference %.12g", wrt, i, grad[i], fd)
					}
				}
			}
		})
	}
}

func TestConv2dForwardRejectsBadShapes(t *testing.T) {
	cases := []struct {
		name        string
		x, w        []int
		stride, pad int
		wantSubstr  string
	}{
		{name: "channels differ", x: []int{2, 3, 8, 8}, w: []int{4, 2, 3, 3}, stride: 1, pad: 1, wantSubstr: "do not fit"},
		{name: "kernel not square", x: []int{2, 3, 8, 8}, w: []int{4, 3, 3, 2}, stride: 1, pad: 1, wantSubstr: "do not fit"},
		{name: "input 3-D", x: []int{3, 8, 8}, w: []int{4, 3, 3, 3}, stride: 1, pad: 1, wantSubstr: "do not fit"},
		{name: "kernel larger than padded input", x: []int{2, 3, 2, 2}, w: []int{4, 3, 5, 5}, stride: 1, pad: 1, wantSubstr: "does not fit input"},
		{name: "stride 0", x: []int{2, 3, 8, 8}, w: []int{4, 3, 3, 3}, stride: 0, pad: 1, wantSubstr: "stride 0"},
		{name: "negative padding", x: []int{2, 3, 8, 8}, w: []int{4, 3, 3, 3}, stride: 1, pad: -1, wantSubstr: "padding -1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := G.NewGraph()
			node := func(name string, shape []int) *G.Node {
				return G.NewTensor(g, tensor.Float64, len(shape), G.WithShape(shape...), G.WithName(name))
			}
			_, err := Conv2d(node("x", tc.x), node("w", tc.w), tc.stride, tc.pad, nil)
			if err == nil || !strings.Contains(err.Error(), tc.wantSubstr) {
				t.Fatalf("Conv2d(x %v, w %v, stride %d, pad %d) error %v, want one containing %q", tc.x, tc.w, tc.stride, tc.pad, err, tc.wantSubstr)
			}
		})
	}
}

func TestConv2dOpsRejectBadValues(t *testing.T) {
	dense := func(dt tensor.Dtype, shape ...int) *tensor.Dense {
		return tensor.New(tensor.WithShape(shape...), tensor.Of(dt))
	}
	f64 := tensor.Float64
	x, w, gy := dense(f64, 2, 3, 6, 5), dense(f64, 4, 3, 3, 3), dense(f64, 2, 4, 6, 5)
	fwd := &conv2dOp{stride: 1, pad: 1}
	dx := &conv2dInputGradOp{stride: 1, pad: 1, inH: 6, inW: 5}
	dw := &conv2dWeightGradOp{stride: 1, pad: 1, k: 3}
	cases := []struct {
		name     string
		op       G.UsePreallocDoer
		prealloc *tensor.Dense
		in       []G.Value
	}{
		{name: "forward output wrong shape", op: fwd, prealloc: dense(f64, 2, 4, 5, 6), in: []G.Value{x, w}},
		{name: "forward output wrong dtype", op: fwd, prealloc: dense(tensor.Float32, 2, 4, 6, 5), in: []G.Value{x, w}},
		{name: "forward mixed dtypes", op: fwd, prealloc: dense(f64, 2, 4, 6, 5), in: []G.Value{x, dense(tensor.Float32, 4, 3, 3, 3)}},
		{name: "forward channels differ", op: fwd, prealloc: dense(f64, 2, 4, 6, 5), in: []G.Value{x, dense(f64, 4, 2, 3, 3)}},
		{name: "input grad output wrong shape", op: dx, prealloc: dense(f64, 2, 3, 5, 6), in: []G.Value{gy, w}},
		{name: "input grad not the output size", op: dx, prealloc: dense(f64, 2, 3, 6, 5), in: []G.Value{dense(f64, 2, 4, 5, 5), w}},
		{name: "weight grad output wrong shape", op: dw, prealloc: dense(f64, 4, 3, 1, 1), in: []G.Value{gy, x}},
		{name: "weight grad batch differs", op: dw, prealloc: dense(f64, 4, 3, 3, 3), in: []G.Value{dense(f64, 3, 4, 6, 5), x}},
		{name: "integer input", op: fwd, prealloc: dense(f64, 2, 4, 6, 5), in: []G.Value{dense(tensor.Int, 2, 3, 6, 5), w}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.op.UsePreallocDo(tc.prealloc, tc.in...); err == nil {
				t.Fatalf("UsePreallocDo into %v %v succeeded", tc.prealloc.Dtype(), tc.prealloc.Shape())
			}
		})
	}
	for _, ok := range []struct {
		op       G.UsePreallocDoer
		prealloc *tensor.Dense
		in       []G.Value
	}{{fwd, dense(f64, 2, 4, 6, 5), []G.Value{x, w}}, {dx, dense(f64, 2, 3, 6, 5), []G.Value{gy, w}}, {dw, dense(f64, 4, 3, 3, 3), []G.Value{gy, x}}} {
		if _, err := ok.op.UsePreallocDo(ok.prealloc, ok.in...); err != nil {
			t.Fatalf("%v into the right output: %v", ok.op, err)
		}
	}
}

// TestConv2dOpsDoNotAllocateAfterFirstRun runs the forward, input-gradient
// and weight-gradient ops, as a graph runs them on every step, and requires
// no heap allocation after the first run. The shapes keep every matrix
// product under gonum's threshold for going parallel (4 blocks of 64x64),
// since its parallel Sgemm starts goroutines, which allocate.
func TestConv2dOpsDoNotAllocateAfterFirstRun(t *testing.T) {
	cases := []convCase{
		{name: "grouped", batch: 3, inC: 2, h: 8, w: 8, outC: 4, k: 3, stride: 1, pd: 1},
		{name: "one image per product", batch: 2, inC: 2, h: 12, w: 12, outC: 4, k: 3, stride: 1, pd: 1},
		{name: "pointwise", batch: 2, inC: 2, h: 12, w: 12, outC: 4, k: 1, stride: 1, pd: 0},
		{name: "stride 2", batch: 3, inC: 2, h: 9, w: 9, outC: 4, k: 3, stride: 2, pd: 1},
	}
	for _, cc := range cases {
		for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
			t.Run(fmt.Sprintf("%v %v", cc, dt), func(t *testing.T) {
				geom, ok := newConvGeometry(cc.batch, cc.inC, cc.h, cc.w, cc.outC, cc.k, cc.stride, cc.pd)
				if !ok {
					t.Fatalf("bad case %v", cc)
				}
				x := tensor.New(tensor.WithShape(cc.batch, cc.inC, cc.h, cc.w), tensor.Of(dt))
				w := tensor.New(tensor.WithShape(cc.outC, cc.inC, cc.k, cc.k), tensor.Of(dt))
				gy := tensor.New(tensor.WithShape(cc.batch, cc.outC, geom.outH, geom.outW), tensor.Of(dt))
				fwd := &conv2dOp{stride: cc.stride, pad: cc.pd}
				dx := &conv2dInputGradOp{stride: cc.stride, pad: cc.pd, inH: cc.h, inW: cc.w}
				dw := &conv2dWeightGradOp{stride: cc.stride, pad: cc.pd, k: cc.k}
				fwdIn, dxIn, dwIn := []G.Value{x, w}, []G.Value{gy, w}, []G.Value{gy, x}
				pass := func() {
					for _, step := range []struct {
						op G.Op
						in []G.Value
					}{{fwd, fwdIn}, {dx, dxIn}, {dw, dwIn}} {
						if _, err := step.op.Do(step.in...); err != nil {
							t.Fatal(err)
						}
					}
				}
				if allocs := testing.AllocsPerRun(20, pass); allocs != 0 {
					t.Fatalf("forward + both gradients allocate %.1f times per run after the first", allocs)
				}
			})
		}
	}
}

// BenchmarkConv2dCNNLayer times forward + backward (input and weight
// gradients) of the second convolution of the benchmark cnn (batch 128, 32
// to 64 channels, 14x14, 3x3 kernel, padding 1) in float32, as a gorgonia
// graph computing sum(y ⊙ R) and its gradients: with conv2dOp ("ours") and
// with gorgonia's G.Conv2d ("gorgonia"). "ours-ops-only" runs the three ops
// alone, without the loss, the graph and the machine around them.
//
//	go test ./nn/ops -bench Conv -run XXX
func BenchmarkConv2dCNNLayer(b *testing.B) {
	cc := convCase{name: "cnn conv2", batch: 128, inC: 32, h: 14, w: 14, outC: 64, k: 3, stride: 1, pd: 1}
	b.Run("ours-ops-only", func(b *testing.B) {
		geom, _ := newConvGeometry(cc.batch, cc.inC, cc.h, cc.w, cc.outC, cc.k, cc.stride, cc.pd)
		rng := rand.New(rand.NewPCG(1, 2))
		random := func(s shape4) *tensor.Dense {
			t := tensor.New(tensor.WithShape(s.shape()...), tensor.Of(tensor.Float32))
			for i := range t.Float32s() {
				t.Float32s()[i] = float32(rng.NormFloat64())
			}
			return t
		}
		x, w, gy := random(geom.inputShape()), random(geom.weightShape()), random(geom.outputShape())
		fwd := &conv2dOp{stride: cc.stride, pad: cc.pd}
		dx := &conv2dInputGradOp{stride: cc.stride, pad: cc.pd, inH: cc.h, inW: cc.w}
		dw := &conv2dWeightGradOp{stride: cc.stride, pad: cc.pd, k: cc.k}
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			for _, err := range []error{second(fwd.Do(x, w)), second(dx.Do(gy, w)), second(dw.Do(gy, x))} {
				if err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	for _, impl := range []struct {
		name  string
		useOp bool
	}{{"ours", true}, {"gorgonia", false}} {
		b.Run(impl.name, func(b *testing.B) {
			c := newConvCompare(b, cc, tensor.Float32, false, impl.useOp)
			c.randomise(rand.New(rand.NewPCG(1, 2)))
			for name, d := range c.data {
				copyIntoDense(c.bound[name], d)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := c.vm.RunAll(); err != nil {
					b.Fatal(err)
				}
				c.vm.Reset()
			}
		})
	}
}

// second returns the error of a (value, error) pair.
func second(_ G.Value, err error) error { return err }

// convCompare is a graph computing loss = sum(y ⊙ R) for y = conv2d(x, w)
// (plus the same for a second input x2 when the weight is shared) and its
// gradients with respect to x (x2) and w.
type convCompare struct {
	vm    G.VM
	data  map[string][]float64 // x, x2, w, r, r2: caller-side values, copied in before each run
	bound map[string]*tensor.Dense
	watch map[string]*G.Node // y, y2 and the gradients dx, dx2, dw
}

func newConvCompare(tb testing.TB, cc convCase, dt tensor.Dtype, sharedWeight, useOp bool) *convCompare {
	tb.Helper()
	g := G.NewGraph()
	c := &convCompare{data: map[string][]float64{}, bound: map[string]*tensor.Dense{}, watch: map[string]*G.Node{}}
	input := func(name string, shape ...int) *G.Node {
		tn := tensor.New(tensor.WithShape(shape...), tensor.Of(dt))
		c.bound[name] = tn
		c.data[name] = make([]float64, tn.Shape().TotalSize())
		return G.NewTensor(g, dt, len(shape), G.WithShape(shape...), G.WithName(name), G.WithValue(tn))
	}
	w := input("w", cc.outC, cc.inC, cc.k, cc.k)
	apply := func(x *G.Node) *G.Node {
		var y *G.Node
		var err error
		if useOp {
			y, err = Conv2d(x, w, cc.stride, cc.pd, nil)
		} else {
			y, err = G.Conv2d(x, w, tensor.Shape{cc.k, cc.k}, []int{cc.pd, cc.pd}, []int{cc.stride, cc.stride}, []int{1, 1})
		}
		if err != nil {
			tb.Fatal(err)
		}
		return y
	}
	suffixes := []string{""}
	if sharedWeight {
		suffixes = append(suffixes, "2")
	}
	wrt := G.Nodes{w}
	var loss *G.Node
	for _, s := range suffixes {
		x := input("x"+s, cc.batch, cc.inC, cc.h, cc.w)
		y := apply(x)
		r := input("r"+s, y.Shape()...)
		c.watch["y"+s] = y
		prod, err := G.HadamardProd(y, r)
		if err != nil {
			tb.Fatal(err)
		}
		sum, err := G.Sum(prod)
		if err != nil {
			tb.Fatal(err)
		}
		if loss == nil {
			loss = sum
		} else if loss, err = G.Add(loss, sum); err != nil {
			tb.Fatal(err)
		}
		wrt = append(wrt, x)
	}
	grads, err := G.Grad(loss, wrt...)
	if err != nil {
		tb.Fatalf("grad: %v", err)
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

// randomise draws every caller-side input from a standard normal, in
// name order so that a seed gives the same values on every run.
func (c *convCompare) randomise(rng *rand.Rand) {
	for _, name := range slices.Sorted(maps.Keys(c.data)) {
		d := c.data[name]
		for j := range d {
			d[j] = rng.NormFloat64()
		}
	}
}

// copyInputs copies the caller-side inputs of src, a graph of the same
// case.
func (c *convCompare) copyInputs(src *convCompare) {
	for name, d := range src.data {
		copy(c.data[name], d)
	}
}

// run copies the caller-side values in, runs the graph and returns every
// watched value.
func (c *convCompare) run(tb testing.TB) map[string][]float64 {
	tb.Helper()
	for name, d := range c.data {
		copyIntoDense(c.bound[name], d)
	}
	defer c.vm.Reset()
	if err := c.vm.RunAll(); err != nil {
		tb.Fatal(err)
	}
	out := map[string][]float64{}
	for name, n := range c.watch {
		out[name] = readValue(n.Value())
	}
	return out
}

// BenchmarkConvForwardResNet times the 3x3 stride-1 convolutions of
// preact-resnet18's four stages at batch 64 (one replica's half of a
// 128-batch) by Winograd F(2×2,3×3) and by im2col, in float32.
func BenchmarkConvForwardResNet(b *testing.B) {
	for _, s := range []struct{ c, hw int }{{64, 32}, {128, 16}, {256, 8}, {512, 4}} {
		g, _ := newConvGeometry(64, s.c, s.hw, s.hw, s.c, 3, 1, 1)
		rng := rand.New(rand.NewPCG(1, 2))
		x := make([]float32, g.batch*g.inC*g.inPlane())
		w := make([]float32, g.outC*g.colRows())
		y := make([]float32, g.batch*g.outC*g.outPlane())
		for i := range x {
			x[i] = rng.Float32()
		}
		for i := range w {
			w[i] = rng.Float32() - 0.5
		}
		flops := 2 * float64(g.batch*g.outC*g.outPlane()*g.colRows())
		for _, path := range []struct {
			name string
			run  func(ws *[]float32)
		}{
			{"winograd", func(ws *[]float32) { winogradForward(g, x, w, y, ws, sgemm) }},
			{"im2col", func(ws *[]float32) { im2colForward(g, x, w, y, ws, sgemm) }},
		} {
			b.Run(fmt.Sprintf("%dx%d^2/%s", s.c, s.hw, path.name), func(b *testing.B) {
				var ws []float32
				path.run(&ws)
				b.ResetTimer()
				for range b.N {
					path.run(&ws)
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "direct-GFLOP/s")
			})
		}
	}
}
