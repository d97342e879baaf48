package model

import (
	"fmt"
	"slices"

	"github.com/sglr-pipe/sglr-pipe/nn/ops"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// build creates the graph, its inputs, loss, gradients and TapeMachine.
func (n *Net) build() error {
	n.g = G.NewGraph()
	param := n.addParams()
	c, h, w := n.arch.Input[0], n.arch.Input[1], n.arch.Input[2]
	n.x, n.xT = n.newInput("x", n.batch, c, h, w)
	fb := &forwardBuilder{g: n.g, arch: n.arch, mode: n.opts.Mode, dtype: n.opts.Dtype, param: param}
	clean, err := fb.forward(n.x)
	if err != nil {
		return err
	}
	n.logits = clean.logits
	watch := []*G.Node{n.logits}
	var outputs []*G.Node
	switch n.purpose {
	case PurposeLogits:
		n.statUpdates = clean.stats
	case PurposeInputGrad:
		outputs, err = n.buildInputGrad(clean)
	case PurposeVJP:
		outputs, err = n.buildVJP(clean)
	case PurposeLossGrad:
		outputs, err = n.buildLossGrad(clean)
	case PurposeTrain, PurposeTrainTRADES, PurposeTrainMART:
		outputs, err = n.buildTrain(fb, clean)
	}
	if err != nil {
		return err
	}
	watch = append(watch, outputs...)
	for _, st := range n.statUpdates {
		watch = append(watch, st.mean, st.variance)
	}
	watchList := make([]any, len(watch))
	for i, w := range watch {
		watchList[i] = w
	}
	// Compile only what the watched values need: SymDiff adds a gradient
	// node for every differentiable operand (a linear op's dW and db, a
	// convolution's filter gradient, the input gradient of the first layer),
	// and the whole graph would run them all, even in an input-gradient net
	// that never reads a weight gradient.
	n.vm = G.NewTapeMachine(n.g.ExactSubgraphRoots(watch...), G.TraceExec(), G.WithWatchlist(watchList...))
	return nil
}

// addParams allocates a tensor for every state_dict entry and a graph node
// for each one the graph reads (in Train mode the running statistics are
// not read), and returns the nodes by name.
func (n *Net) addParams() map[string]*G.Node {
	dt := n.opts.Dtype
	n.values = make([]*tensor.Dense, len(n.specs))
	n.nodes = make([]*G.Node, len(n.specs))
	param := map[string]*G.Node{}
	for i, s := range n.specs {
		shape := s.shape
		if s.role == roleBatchCount {
			shape = []int{1}
		}
		n.values[i] = tensor.New(tensor.WithShape(shape...), tensor.Of(dt))
		switch s.role {
		case roleBatchCount:
			layer := s.name[:len(s.name)-len(".num_batches_tracked")]
			n.bnIndex[layer] = bnParams{mean: i - 2, variance: i - 1, count: i}
			continue
		case roleRunningMean, roleRunningVar:
			if n.opts.Mode == Train {
				continue
			}
		}
		node := G.NewTensor(n.g, dt, len(shape), G.WithShape(shape...), G.WithName(s.name), G.WithValue(n.values[i]))
		n.nodes[i] = node
		param[s.name] = node
	}
	return param
}

// buildInputGrad adds the soft-target cross-entropy against a target input
// and its input gradient; it returns the nodes to watch.
func (n *Net) buildInputGrad(clean *forwardPass) ([]*G.Node, error) {
	var err error
	n.target, n.targetT = n.newInput("target", n.batch, n.arch.Classes)
	if n.loss, err = ops.SoftCrossEntropySum(clean.logits, n.target); err != nil {
		return nil, err
	}
	grads, err := G.Grad(n.loss, n.x)
	if err != nil {
		return nil, fmt.Errorf("input gradient: %w", err)
	}
	n.xGrad = grads[0]
	return []*G.Node{n.loss, n.xGrad}, nil
}

// buildVJP adds Σ logits ⊙ upstream for an upstream input and its input
// gradient, the vector-Jacobian product; it returns the nodes to watch.
func (n *Net) buildVJP(clean *forwardPass) ([]*G.Node, error) {
	n.upstream, n.upstreamT = n.newInput("upstream", n.batch, n.arch.Classes)
	prod, err := G.HadamardProd(clean.logits, n.upstream)
	if err != nil {
		return nil, fmt.Errorf("logits · upstream: %w", err)
	}
	if n.loss, err = G.Sum(prod); err != nil {
		return nil, fmt.Errorf("sum of logits · upstream: %w", err)
	}
	grads, err := G.Grad(n.loss, n.x)
	if err != nil {
		return nil, fmt.Errorf("logits vector-Jacobian product: %w", err)
	}
	n.xGrad = grads[0]
	return []*G.Node{n.xGrad}, nil
}

// buildLossGrad adds the Go loss of the logits bound at each run
// (ops.LogitsLoss) and its input gradient; it returns the nodes to watch.
func (n *Net) buildLossGrad(clean *forwardPass) ([]*G.Node, error) {
	var err error
	n.lossHook = ops.NewLossHook(n.opts.Dtype, n.batch, n.arch.Classes)
	if n.loss, err = ops.LogitsLoss(clean.logits, n.lossHook); err != nil {
		return nil, err
	}
	grads, err := G.Grad(n.loss, n.x)
	if err != nil {
		return nil, fmt.Errorf("loss input gradient: %w", err)
	}
	n.xGrad = grads[0]
	return []*G.Node{n.xGrad}, nil
}

// buildTrain adds the mean cross-entropy against a target input (plus the
// TRADES term for PurposeTrainTRADES; the MART loss instead for
// PurposeTrainMART) and its gradient for every trainable parameter (and the
// inputs, withInputGrads); it returns the nodes to watch.
func (n *Net) buildTrain(fb *forwardBuilder, clean *forwardPass) ([]*G.Node, error) {
	dt := n.opts.Dtype
	n.target, n.targetT = n.newInput("target", n.batch, n.arch.Classes)
	if n.purpose == PurposeTrainMART {
		if err := n.addMARTLoss(fb, clean); err != nil {
			return nil, err
		}
	} else {
		ce, err := ops.SoftCrossEntropySum(clean.logits, n.target)
		if err != nil {
			return nil, err
		}
		if n.loss, err = G.HadamardDiv(ce, scalarConst(dt, float64(n.batch))); err != nil {
			return nil, err
		}
		n.statUpdates = clean.stats
	}
	if n.purpose == PurposeTrainTRADES {
		if err := n.addTRADESTerm(fb, clean); err != nil {
			return nil, err
		}
	}
	var wrt []*G.Node
	var idx []int
	for i, s := range n.specs {
		if !s.role.isBuffer() {
			wrt = append(wrt, n.nodes[i])
			idx = append(idx, i)
		}
	}
	if n.opts.withInputGrads {
		wrt = append(wrt, n.x)
		if n.xAdv != nil {
			wrt = append(wrt, n.xAdv)
		}
	}
	grads, err := G.Grad(n.loss, wrt...)
	if err != nil {
		return nil, fmt.Errorf("weight gradients: %w", err)
	}
	n.grads = make([]*G.Node, len(n.specs))
	for j, i := range idx {
		n.grads[i] = grads[j]
	}
	if n.opts.withInputGrads {
		n.xGrad = grads[len(idx)]
		if n.xAdv != nil {
			n.xAdvGrad = grads[len(idx)+1]
		}
	}
	return append([]*G.Node{n.loss}, grads...), nil
}

// addTRADESTerm adds a second forward pass on an x_adv input, sharing the
// weights, and beta·mean_i KL(softmax f(x_i) ‖ softmax f(x_adv,i)) to the
// loss; the running statistics take the clean, adversarial and clean batch
// statistics in turn.
func (n *Net) addTRADESTerm(fb *forwardBuilder, clean *forwardPass) error {
	dt := n.opts.Dtype
	c, h, w := n.arch.Input[0], n.arch.Input[1], n.arch.Input[2]
	n.xAdv, n.xAdvT = n.newInput("x_adv", n.batch, c, h, w)
	adv, err := fb.forward(n.xAdv)
	if err != nil {
		return err
	}
	kl, err := ops.KLDivergenceSum(clean.logits, adv.logits)
	if err != nil {
		return err
	}
	n.beta = G.NewScalar(n.g, dt, G.WithName("beta"))
	scaled, err := G.HadamardProd(n.beta, kl)
	if err != nil {
		return err
	}
	if scaled, err = G.HadamardDiv(scaled, scalarConst(dt, float64(n.batch))); err != nil {
		return err
	}
	if n.loss, err = G.Add(n.loss, scaled); err != nil {
		return err
	}
	n.statUpdates = append(append(slices.Clone(clean.stats), adv.stats...), clean.stats...)
	return nil
}

// newInput adds an input node with a private backing tensor bound to it.
func (n *Net) newInput(name string, shape ...int) (*G.Node, *tensor.Dense) {
	t := tensor.New(tensor.WithShape(shape...), tensor.Of(n.opts.Dtype))
	node := G.NewTensor(n.g, n.opts.Dtype, len(shape), G.WithShape(shape...), G.WithName(name), G.WithValue(t))
	return node, t
}
