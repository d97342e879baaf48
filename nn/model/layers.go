package model

import (
	"fmt"

	"github.com/sglr-pipe/sglr-pipe/nn/ops"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// The forward pass of each architecture is a gorgonia expression graph of
// the ops of package ops: BatchNorm fused with the ReLU that follows it,
// max-pooling fused with the ReLU before it.

// forwardBuilder adds forward passes of one architecture to a graph. Several
// passes (clean and adversarial inputs in TRADES) share the same weight nodes.
type forwardBuilder struct {
	g     *G.ExprGraph
	arch  Arch
	mode  Mode
	dtype tensor.Dtype
	// param maps a state_dict name to its node. In Train mode the running
	// statistics are absent: they are not read by the graph.
	param map[string]*G.Node
	// convScratch is the workspace every convolution of the graph shares.
	convScratch ops.ConvWorkspace
}

// batchStats are the statistics one BatchNorm layer computed on one batch in
// Train mode, read after the pass to update the running statistics.
type batchStats struct {
	layer    string  // e.g. "layer1.0.bn1"
	mean     *G.Node // [C], biased batch mean
	variance *G.Node // [C], biased batch variance
	count    int     // N*H*W, the number of values per channel
}

// forwardPass is the output of one forward pass through the network.
type forwardPass struct {
	logits *G.Node      // [B,K]
	stats  []batchStats // one per BatchNorm layer, in forward order (Train mode only)
}

// forward adds one pass of the network on x ([B,C,H,W]) to the graph.
func (fb *forwardBuilder) forward(x *G.Node) (*forwardPass, error) {
	pass := &forwardPass{}
	var (
		out *G.Node
		err error
	)
	switch fb.arch.Kind {
	case KindMLP:
		out, err = fb.mlp(x)
	case KindCNN:
		out, err = fb.cnn(x)
	default:
		if _, ok := residualKinds[fb.arch.Kind]; ok {
			out, err = fb.residual(x, pass)
		} else {
			err = fmt.Errorf("unknown architecture kind %q", fb.arch.Kind)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("build %s forward pass: %w", fb.arch.Kind, err)
	}
	pass.logits = out
	return pass, nil
}

func (fb *forwardBuilder) mlp(x *G.Node) (*G.Node, error) {
	out, err := ops.Flatten(x)
	if err != nil {
		return nil, err
	}
	for i := range fb.arch.Hidden {
		if out, err = fb.linear(out, fmt.Sprintf("layers.%d", i)); err != nil {
			return nil, err
		}
		if out, err = ops.ReLU(out); err != nil {
			return nil, err
		}
	}
	return fb.linear(out, "head")
}

func (fb *forwardBuilder) cnn(x *G.Node) (*G.Node, error) {
	out := x
	var err error
	for i := range fb.arch.Channels {
		name := fmt.Sprintf("convs.%d", i)
		if out, err = fb.conv(out, name+".weight", 1, 1); err != nil {
			return nil, err
		}
		if out, err = fb.addChannelBias(out, name+".bias"); err != nil {
			return nil, err
		}
		if out, err = ops.MaxPool2(out, true); err != nil {
			return nil, err
		}
	}
	if out, err = ops.Flatten(out); err != nil {
		return nil, err
	}
	for j := range fb.arch.Hidden {
		if out, err = fb.linear(out, fmt.Sprintf("fcs.%d", j)); err != nil {
			return nil, err
		}
		if out, err = ops.ReLU(out); err != nil {
			return nil, err
		}
	}
	return fb.linear(out, "head")
}

// node returns the weight node called name.
func (fb *forwardBuilder) node(name string) (*G.Node, error) {
	n, ok := fb.param[name]
	if !ok {
		return nil, fmt.Errorf("no weight named %s in the graph", name)
	}
	return n, nil
}

// linear is torch.nn.Linear: x [B,in] · Wᵀ + b with W [out,in] (ops.Linear).
func (fb *forwardBuilder) linear(x *G.Node, name string) (*G.Node, error) {
	w, err := fb.node(name + ".weight")
	if err != nil {
		return nil, err
	}
	b, err := fb.node(name + ".bias")
	if err != nil {
		return nil, err
	}
	out, err := ops.Linear(x, w, b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// conv is torch.nn.Conv2d without bias: square kernel taken from the weight
// [out,in,k,k], the given stride and zero padding on every side
// (ops.Conv2d).
func (fb *forwardBuilder) conv(x *G.Node, weightName string, stride, pad int) (*G.Node, error) {
	w, err := fb.node(weightName)
	if err != nil {
		return nil, err
	}
	out, err := ops.Conv2d(x, w, stride, pad, &fb.convScratch)
	if err != nil {
		return nil, fmt.Errorf("%s on input %v: %w", weightName, x.Shape(), err)
	}
	return out, nil
}

// addChannelBias adds a per-channel bias [C] to an NCHW tensor
// (ops.ChannelBias).
func (fb *forwardBuilder) addChannelBias(x *G.Node, name string) (*G.Node, error) {
	b, err := fb.node(name)
	if err != nil {
		return nil, err
	}
	out, err := ops.ChannelBias(x, b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// batchNorm is torch.nn.BatchNorm2d(eps=1e-5). In Train mode it normalises
// with the biased batch statistics (gradient flows through them) and records
// them in pass for the running-statistics update; in Eval mode it uses the
// running statistics, which are constants of the graph.
func (fb *forwardBuilder) batchNorm(x *G.Node, name string, pass *forwardPass) (*G.Node, error) {
	return fb.batchNormLayer(x, name, pass, false)
}

// batchNormReLU is relu(batchNorm(x)) as one op (ops.BatchNorm).
func (fb *forwardBuilder) batchNormReLU(x *G.Node, name string, pass *forwardPass) (*G.Node, error) {
	return fb.batchNormLayer(x, name, pass, true)
}

// batchNormLayer adds the BatchNorm layer called name, followed by a ReLU
// when relu is set.
func (fb *forwardBuilder) batchNormLayer(x *G.Node, name string, pass *forwardPass, relu bool) (*G.Node, error) {
	gamma, err := fb.node(name + ".weight")
	if err != nil {
		return nil, err
	}
	beta, err := fb.node(name + ".bias")
	if err != nil {
		return nil, err
	}
	var runMean, runVar *G.Node
	train := fb.mode == Train
	if !train {
		if runMean, err = fb.node(name + ".running_mean"); err != nil {
			return nil, err
		}
		if runVar, err = fb.node(name + ".running_var"); err != nil {
			return nil, err
		}
	}
	out, mean, variance, err := ops.BatchNorm(x, gamma, beta, runMean, runVar, train, relu)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if train {
		s := x.Shape()
		pass.stats = append(pass.stats, batchStats{layer: name, mean: mean, variance: variance, count: s[0] * s[2] * s[3]})
	}
	return out, nil
}

// scalarConst is a constant scalar node of the given dtype.
func scalarConst(dt tensor.Dtype, v float64) *G.Node {
	if dt == tensor.Float32 {
		return G.NewConstant(float32(v))
	}
	return G.NewConstant(v)
}
