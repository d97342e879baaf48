package model

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/nn/ops"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// layerCase is one layer checked in isolation: loss = sum(out ⊙ R) for a
// random R, differentiated with respect to the layer's trainable tensors and
// its input, compared with central differences.
type layerCase struct {
	name   string
	input  []int
	params []paramSpec
	mode   Mode
	build  func(fb *forwardBuilder, x *G.Node, pass *forwardPass) (*G.Node, error)
}

// blockCase is one residual block of design d in isolation.
func blockCase(name string, d residualDesign, b residualBlock, input []int, mode Mode) layerCase {
	return layerCase{name: name, input: input, params: d.blockSpecs(b), mode: mode,
		build: func(fb *forwardBuilder, x *G.Node, pass *forwardPass) (*G.Node, error) {
			return fb.residualBlock(x, d, b, pass)
		}}
}

func layerCases() []layerCase {
	preAct := residualDesign{block: blockPreAct, expansion: 1, shortcut: "shortcut.0"}
	wide := residualDesign{block: blockPreAct, expansion: 1, shortcut: "convShortcut"}
	basic := residualDesign{block: blockBasic, expansion: 1, shortcut: "shortcut.0", shortcutBN: "shortcut.1"}
	bottleneck := residualDesign{block: blockBottleneck, expansion: 4, shortcut: "shortcut.0", shortcutBN: "shortcut.1"}
	conv := func(stride, pad int) func(fb *forwardBuilder, x *G.Node, _ *forwardPass) (*G.Node, error) {
		return func(fb *forwardBuilder, x *G.Node, _ *forwardPass) (*G.Node, error) {
			return fb.conv(x, "c.weight", stride, pad)
		}
	}
	return []layerCase{
		{name: "linear", input: []int{3, 4}, params: linearSpecs("l", 4, 5),
			build: func(fb *forwardBuilder, x *G.Node, _ *forwardPass) (*G.Node, error) { return fb.linear(x, "l") }},
		{name: "conv 3x3 pad 1", input: []int{2, 2, 5, 4}, params: []paramSpec{convSpec("c.weight", 2, 3, 3)}, build: conv(1, 1)},
		{name: "conv 3x3 stride 2 pad 1", input: []int{2, 2, 5, 6}, params: []paramSpec{convSpec("c.weight", 2, 3, 3)}, build: conv(2, 1)},
		{name: "conv 1x1 stride 2", input: []int{2, 2, 5, 6}, params: []paramSpec{convSpec("c.weight", 2, 3, 1)}, build: conv(2, 0)},
		{name: "conv bias", input: []int{2, 3, 3, 2}, params: []paramSpec{{name: "b", shape: []int{3}, role: roleBias, fan: 27}},
			build: func(fb *forwardBuilder, x *G.Node, _ *forwardPass) (*G.Node, error) { return fb.addChannelBias(x, "b") }},
		{name: "relu", input: []int{3, 5},
			build: func(_ *forwardBuilder, x *G.Node, _ *forwardPass) (*G.Node, error) { return G.Rectify(x) }},
		{name: "maxpool odd size", input: []int{2, 2, 5, 7},
			build: func(_ *forwardBuilder, x *G.Node, _ *forwardPass) (*G.Node, error) { return ops.MaxPool2(x, false) }},
		{name: "avgpool 4x4", input: []int{2, 3, 4, 4},
			build: func(_ *forwardBuilder, x *G.Node, _ *forwardPass) (*G.Node, error) { return ops.AvgPool4(x) }},
		{name: "avgpool 6x5 window", input: []int{2, 3, 6, 5},
			build: func(_ *forwardBuilder, x *G.Node, _ *forwardPass) (*G.Node, error) { return ops.AvgPool4(x) }},
		{name: "batchnorm train", input: []int{3, 2, 3, 2}, params: batchNormSpecs("bn", 2), mode: Train,
			build: func(fb *forwardBuilder, x *G.Node, pass *forwardPass) (*G.Node, error) {
				return fb.batchNorm(x, "bn", pass)
			}},
		{name: "batchnorm eval", input: []int{3, 2, 3, 2}, params: batchNormSpecs("bn", 2), mode: Eval,
			build: func(fb *forwardBuilder, x *G.Node, pass *forwardPass) (*G.Node, error) {
				return fb.batchNorm(x, "bn", pass)
			}},
		{name: "avgpool 8x8", input: []int{2, 3, 8, 8},
			build: func(_ *forwardBuilder, x *G.Node, _ *forwardPass) (*G.Node, error) { return avgPoolFlatten(x, 8) }},
		{name: "avgpool 8 on 9x15", input: []int{2, 2, 9, 15},
			build: func(_ *forwardBuilder, x *G.Node, _ *forwardPass) (*G.Node, error) { return avgPoolFlatten(x, 8) }},
		blockCase("residual block with shortcut", preAct, residualBlock{name: "b", in: 2, planes: 3, out: 3, stride: 2, shortcut: true}, []int{2, 2, 6, 5}, Train),
		blockCase("residual block identity", preAct, residualBlock{name: "b", in: 2, planes: 2, out: 2, stride: 1}, []int{2, 2, 4, 4}, Eval),
		blockCase("wide block with convShortcut", wide, residualBlock{name: "b", in: 2, planes: 3, out: 3, stride: 1, shortcut: true}, []int{2, 2, 4, 5}, Train),
		blockCase("basic block with shortcut", basic, residualBlock{name: "b", in: 2, planes: 3, out: 3, stride: 2, shortcut: true}, []int{2, 2, 6, 5}, Train),
		blockCase("basic block identity", basic, residualBlock{name: "b", in: 2, planes: 2, out: 2, stride: 1}, []int{2, 2, 4, 4}, Eval),
		blockCase("bottleneck with shortcut", bottleneck, residualBlock{name: "b", in: 3, planes: 2, out: 8, stride: 2, shortcut: true}, []int{2, 3, 5, 6}, Train),
		blockCase("bottleneck identity", bottleneck, residualBlock{name: "b", in: 8, planes: 2, out: 8, stride: 1}, []int{2, 8, 3, 3}, Eval),
	}
}

func TestLayerGradientsMatchFiniteDifferences(t *testing.T) {
	for _, tc := range layerCases() {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(21, 22))
			h := newLayerHarness(t, tc, rng)
			h.run(t)
			want := make([][]float64, len(h.grads))
			for i, g := range h.grads {
				want[i] = make([]float64, g.Shape().TotalSize())
				copyFromValue(want[i], g.Value())
			}
			for i, data := range h.wrtData {
				for j := range data {
					orig := data[j]
					data[j] = orig + fdStep
					up := h.run(t)
					data[j] = orig - fdStep
					down := h.run(t)
					data[j] = orig
					fd := (up - down) / (2 * fdStep)
					if d := math.Abs(fd - want[i][j]); d > fdAbsTol+fdRelTol*math.Max(math.Abs(fd), math.Abs(want[i][j])) {
						t.Errorf("%s[%d]: analytic %.10g, finite difference %.10g", h.wrtNames[i], j, want[i][j], fd)
					}
				}
			}
		})
	}
}

// layerHarness is a float64 graph around one layer.
type layerHarness struct {
	vm       G.VM
	loss     *G.Node
	out      *G.Node
	grads    G.Nodes
	wrtNames []string
	wrtData  [][]float64
	values   map[string][]float64
	pass     *forwardPass
}

func newLayerHarness(t *testing.T, tc layerCase, rng *rand.Rand) *layerHarness {
	t.Helper()
	g := G.NewGraph()
	h := &layerHarness{values: map[string][]float64{}, pass: &forwardPass{}}
	fb := &forwardBuilder{g: g, mode: tc.mode, dtype: tensor.Float64, param: map[string]*G.Node{}}
	var wrt G.Nodes
	for _, s := range tc.params {
		if s.role == roleBatchCount || (tc.mode == Train && (s.role == roleRunningMean || s.role == roleRunningVar)) {
			continue
		}
		data := make([]float64, s.numel())
		for j := range data {
			switch s.role {
			case roleRunningVar:
				data[j] = 0.5 + rng.Float64()
			case roleOnes:
				data[j] = 1 + 0.3*rng.NormFloat64()
			default:
				data[j] = 0.5 * rng.NormFloat64()
			}
		}
		tn := tensor.New(tensor.WithShape(s.shape...), tensor.WithBacking(data))
		node := G.NewTensor(g, tensor.Float64, len(s.shape), G.WithShape(s.shape...), G.WithName(s.name), G.WithValue(tn))
		fb.param[s.name] = node
		h.values[s.name] = data
		if !s.role.isBuffer() {
			wrt = append(wrt, node)
			h.wrtNames = append(h.wrtNames, s.name)
			h.wrtData = append(h.wrtData, data)
		}
	}
	xData := make([]float64, tensor.Shape(tc.input).TotalSize())
	for j := range xData {
		xData[j] = rng.NormFloat64()
	}
	x := G.NewTensor(g, tensor.Float64, len(tc.input), G.WithShape(tc.input...), G.WithName("x"),
		G.WithValue(tensor.New(tensor.WithShape(tc.input...), tensor.WithBacking(xData))))
	h.values["x"] = xData
	wrt = append(wrt, x)
	h.wrtNames = append(h.wrtNames, "x")
	h.wrtData = append(h.wrtData, xData)

	out, err := tc.build(fb, x, h.pass)
	if err != nil {
		t.Fatalf("build %s: %v", tc.name, err)
	}
	h.out = out
	rData := make([]float64, out.Shape().TotalSize())
	for j := range rData {
		rData[j] = rng.NormFloat64()
	}
	r := G.NewConstant(tensor.New(tensor.WithShape(out.Shape().Clone()...), tensor.WithBacking(rData)))
	prod, err := G.HadamardProd(out, r)
	if err != nil {
		t.Fatal(err)
	}
	if h.loss, err = G.Sum(prod); err != nil {
		t.Fatal(err)
	}
	if h.grads, err = G.Grad(h.loss, wrt...); err != nil {
		t.Fatalf("grad %s: %v", tc.name, err)
	}
	watch := []any{h.loss, h.out}
	for _, gn := range h.grads {
		watch = append(watch, gn)
	}
	for _, st := range h.pass.stats {
		watch = append(watch, st.mean, st.variance)
	}
	h.vm = G.NewTapeMachine(g, G.TraceExec(), G.WithWatchlist(watch...))
	return h
}

func (h *layerHarness) run(t *testing.T) float64 {
	t.Helper()
	defer h.vm.Reset()
	if err := h.vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	return scalarValue(h.loss.Value())
}

// TestLayerForwardMatchesNaive compares layer outputs with direct loops
// written from the PyTorch definitions (cross-correlation with weight
// [out,in,kh,kw], zero padding, floor pooling, biased-variance BatchNorm).
func TestLayerForwardMatchesNaive(t *testing.T) {
	naive := map[string]func(v map[string][]float64, in []int) []float64{
		"conv 3x3 pad 1": func(v map[string][]float64, in []int) []float64 {
			return naiveConv(v["x"], in, v["c.weight"], 3, 3, 1, 1)
		},
		"conv 3x3 stride 2 pad 1": func(v map[string][]float64, in []int) []float64 {
			return naiveConv(v["x"], in, v["c.weight"], 3, 3, 2, 1)
		},
		"conv 1x1 stride 2": func(v map[string][]float64, in []int) []float64 {
			return naiveConv(v["x"], in, v["c.weight"], 3, 1, 2, 0)
		},
		"maxpool odd size":   func(v map[string][]float64, in []int) []float64 { return naiveMaxPool2(v["x"], in) },
		"avgpool 6x5 window": func(v map[string][]float64, in []int) []float64 { return naiveAvgPool4(v["x"], in) },
		"batchnorm train":    func(v map[string][]float64, in []int) []float64 { return naiveBatchNormTrain(v, in) },
	}
	for _, tc := range layerCases() {
		ref, ok := naive[tc.name]
		if !ok {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			h := newLayerHarness(t, tc, rand.New(rand.NewPCG(1, 2)))
			h.run(t)
			got := make([]float64, h.out.Shape().TotalSize())
			copyFromValue(got, h.out.Value())
			want := ref(h.values, tc.input)
			if len(got) != len(want) {
				t.Fatalf("%d outputs, want %d", len(got), len(want))
			}
			for i := range got {
				if math.Abs(got[i]-want[i]) > 1e-12 {
					t.Fatalf("out[%d] = %g, want %g", i, got[i], want[i])
				}
			}
		})
	}
}

func naiveConv(x []float64, in []int, w []float64, out, k, stride, pad int) []float64 {
	n, c, h, wd := in[0], in[1], in[2], in[3]
	oh, ow := (h+2*pad-k)/stride+1, (wd+2*pad-k)/stride+1
	res := make([]float64, n*out*oh*ow)
	for b := range n {
		for o := range out {
			for i := range oh {
				for j := range ow {
					s := 0.0
					for ci := range c {
						for di := range k {
							for dj := range k {
								y, xx := i*stride-pad+di, j*stride-pad+dj
								if y < 0 || y >= h || xx < 0 || xx >= wd {
									continue
								}
								s += x[((b*c+ci)*h+y)*wd+xx] * w[((o*c+ci)*k+di)*k+dj]
							}
						}
					}
					res[((b*out+o)*oh+i)*ow+j] = s
				}
			}
		}
	}
	return res
}

func naiveMaxPool2(x []float64, in []int) []float64 {
	n, c, h, w := in[0], in[1], in[2], in[3]
	oh, ow := h/2, w/2
	res := make([]float64, n*c*oh*ow)
	for p := range n * c {
		for i := range oh {
			for j := range ow {
				m := math.Inf(-1)
				for di := range 2 {
					for dj := range 2 {
						m = math.Max(m, x[(p*h+2*i+di)*w+2*j+dj])
					}
				}
				res[(p*oh+i)*ow+j] = m
			}
		}
	}
	return res
}

func naiveAvgPool4(x []float64, in []int) []float64 {
	n, c, h, w := in[0], in[1], in[2], in[3]
	res := make([]float64, n*c)
	for p := range n * c {
		for i := range 4 {
			for j := range 4 {
				res[p] += x[(p*h+i)*w+j] / 16
			}
		}
	}
	return res
}

func naiveBatchNormTrain(v map[string][]float64, in []int) []float64 {
	x, gamma, beta := v["x"], v["bn.weight"], v["bn.bias"]
	n, c, hw := in[0], in[1], in[2]*in[3]
	res := make([]float64, len(x))
	for ch := range c {
		mean, sq := 0.0, 0.0
		for b := range n {
			for i := range hw {
				mean += x[(b*c+ch)*hw+i]
			}
		}
		mean /= float64(n * hw)
		for b := range n {
			for i := range hw {
				d := x[(b*c+ch)*hw+i] - mean
				sq += d * d
			}
		}
		std := math.Sqrt(sq/float64(n*hw) + ops.BatchNormEps)
		for b := range n {
			for i := range hw {
				j := (b*c+ch)*hw + i
				res[j] = (x[j]-mean)/std*gamma[ch] + beta[ch]
			}
		}
	}
	return res
}
