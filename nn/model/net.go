package model

import (
	"fmt"
	"slices"

	"github.com/sglr-pipe/sglr-pipe/nn/ops"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Purpose selects what a Net's graph computes. Each purpose is a separate
// compiled graph, built once and reused for every batch.
type Purpose int

const (
	// PurposeLogits computes the logits only.
	PurposeLogits Purpose = iota
	// PurposeInputGrad computes an attack loss (NetOptions.Loss, summed over
	// the batch) and its gradient with respect to the input. Eval mode only.
	PurposeInputGrad
	// PurposeTrain computes mean_i softCE(f(x_i), T_i) and its gradient with
	// respect to every trainable parameter.
	PurposeTrain
	// PurposeTrainTRADES computes mean_i softCE(f(x_i), T_i) +
	// beta·mean_i KL(softmax f(x_i) ‖ softmax f(x'_i)) with both forward passes
	// in one graph sharing the weights, gradients flowing through both (as in
	// the TRADES reference), and its gradient for every trainable parameter.
	PurposeTrainTRADES
	// PurposeVJP computes the vector-Jacobian product of the logits: with an
	// upstream input U (Batch×Classes, dLoss/dlogits) the loss is
	// Σ_i Σ_k logits[i,k]·U[i,k] and its gradient with respect to the input
	// is J(x)ᵀ·U. The evaluation attacks (CW, DLR, FAB) differentiate their
	// own losses of the logits through it. Eval mode only.
	PurposeVJP
	// PurposeLossGrad computes the logits, a loss of them computed in Go
	// during the run (Net.LossGrad's RowLoss, summed over the batch) and its
	// gradient with respect to the input: what Logits followed by LogitsVJP
	// compute, with one forward pass instead of two. Eval mode only.
	PurposeLossGrad
	// PurposeTrainMART computes the MART loss mean_i ℓ_i (see martRow) of a
	// clean and an adversarial forward pass in one graph sharing the weights,
	// gradients flowing through both (nothing detached, as in the MART
	// reference), and its gradient for every trainable parameter.
	PurposeTrainMART
)

// String names the purpose for error messages.
func (p Purpose) String() string {
	switch p {
	case PurposeLogits:
		return "logits"
	case PurposeInputGrad:
		return "input-grad"
	case PurposeTrain:
		return "train"
	case PurposeTrainTRADES:
		return "train-trades"
	case PurposeVJP:
		return "vjp"
	case PurposeLossGrad:
		return "loss-grad"
	case PurposeTrainMART:
		return "train-mart"
	default:
		return fmt.Sprintf("purpose(%d)", int(p))
	}
}

// LossKind selects the loss a PurposeInputGrad net differentiates. Attack
// losses beyond soft-target cross-entropy (CW margin, DLR) are added here.
type LossKind int

const (
	// LossSoftCE is sum_i sum_k −T[i,k]·log softmax(f(x_i))_k. With one-hot T it
	// is the PGD/FGSM cross-entropy; with T = softmax(f(x_clean)) its input
	// gradient equals that of the TRADES attack's KL(p_clean ‖ p(x')).
	LossSoftCE LossKind = iota
)

// NetOptions configures a Net. The zero value is Eval mode, float32,
// soft-target cross-entropy.
type NetOptions struct {
	Mode  Mode
	Dtype tensor.Dtype // tensor.Float32 (default) or tensor.Float64 (gradient tests)
	Loss  LossKind     // PurposeInputGrad only

	// withInputGrads makes training nets also differentiate the loss with
	// respect to x (and x_adv), for the gradient tests.
	withInputGrads bool
}

// Net is one compiled gorgonia graph and TapeMachine for a fixed model,
// batch size, purpose, mode and dtype. It owns private copies of the weights
// (gorgonia machines sharing weight tensors crash), so several Nets can run
// concurrently. A Net is not safe for concurrent use by several goroutines.
type Net struct {
	arch    Arch
	batch   int
	purpose Purpose
	opts    NetOptions
	specs   []paramSpec

	// values holds every state_dict entry, aligned with Weights.Params;
	// num_batches_tracked is a one-element tensor outside the graph.
	values []*tensor.Dense
	nodes  []*G.Node // graph node of values[i], nil when the graph does not read it

	g  *G.ExprGraph
	vm G.VM

	x, xAdv, target, beta *G.Node
	xT, xAdvT, targetT    *tensor.Dense
	// upstream is the dLoss/dlogits input of a PurposeVJP net.
	upstream  *G.Node
	upstreamT *tensor.Dense
	// lossHook binds the Go loss of a PurposeLossGrad net to each run.
	lossHook *ops.LossHook

	logits *G.Node
	loss   *G.Node
	grads  []*G.Node // aligned with values; nil for buffers and when not training
	xGrad  *G.Node
	// xAdvGrad is d loss/d x_adv (training nets built withInputGrads only).
	xAdvGrad *G.Node

	// statUpdates lists the batch statistics applied, in order, to the
	// running statistics after each Train-mode pass.
	statUpdates []batchStats
	bnIndex     map[string]bnParams

	gradBuf [][]float32
}

// bnParams are the positions in values of one BatchNorm layer's buffers.
type bnParams struct {
	mean, variance, count int
}

// NewNet compiles a graph for w's architecture and batch samples per run,
// and copies w into the Net's private weights.
func NewNet(w *Weights, batch int, purpose Purpose, opts NetOptions) (*Net, error) {
	if err := w.Validate(); err != nil {
		return nil, fmt.Errorf("new %s net: %w", purpose, err)
	}
	if batch < 1 {
		return nil, fmt.Errorf("new %s net: batch size must be positive, got %d", purpose, batch)
	}
	if opts.Dtype == (tensor.Dtype{}) {
		opts.Dtype = tensor.Float32
	}
	if opts.Dtype != tensor.Float32 && opts.Dtype != tensor.Float64 {
		return nil, fmt.Errorf("new %s net: dtype must be float32 or float64, got %v", purpose, opts.Dtype)
	}
	if opts.Mode != Eval && opts.Mode != Train {
		return nil, fmt.Errorf("new %s net: unknown mode %d", purpose, opts.Mode)
	}
	switch purpose {
	case PurposeLogits, PurposeTrain, PurposeTrainTRADES, PurposeTrainMART:
	case PurposeInputGrad:
		if opts.Mode != Eval {
			return nil, fmt.Errorf("new %s net: input gradients are computed in Eval mode only", purpose)
		}
		if opts.Loss != LossSoftCE {
			return nil, fmt.Errorf("new %s net: unknown loss kind %d", purpose, opts.Loss)
		}
	case PurposeVJP, PurposeLossGrad:
		if opts.Mode != Eval {
			return nil, fmt.Errorf("new %s net: gradients of losses of the logits are computed in Eval mode only", purpose)
		}
	default:
		return nil, fmt.Errorf("new net: unknown purpose %d", purpose)
	}
	specs, err := paramSpecs(w.Arch)
	if err != nil {
		return nil, err
	}
	n := &Net{arch: cloneArch(w.Arch), batch: batch, purpose: purpose, opts: opts, specs: specs, bnIndex: map[string]bnParams{}}
	if err := n.build(); err != nil {
		return nil, fmt.Errorf("new %s net for %s: %w", purpose, w.Arch.Kind, err)
	}
	if err := n.SetWeights(w); err != nil {
		return nil, err
	}
	return n, nil
}

// Batch is the number of samples the Net processes per run.
func (n *Net) Batch() int { return n.batch }

// Classes is the number of logits per sample.
func (n *Net) Classes() int { return n.arch.Classes }

// InputSize is the number of scalars per input sample.
func (n *Net) InputSize() int { return n.arch.InputSize() }

// SetWeights copies w (parameters and BatchNorm buffers) into the Net's
// private tensors. w must have the Net's architecture.
func (n *Net) SetWeights(w *Weights) error {
	if err := n.checkWeights(w); err != nil {
		return err
	}
	for i, p := range w.Params {
		copyIntoDense(n.values[i], p.Data)
	}
	return nil
}

// Weights reads the Net's private state back (parameters and BatchNorm
// buffers, including running statistics updated by Train-mode passes).
func (n *Net) Weights() *Weights {
	w := &Weights{Arch: cloneArch(n.arch), Params: make([]*Param, len(n.specs))}
	for i, s := range n.specs {
		p := &Param{Name: s.name, Shape: slices.Clone(s.shape), Data: make([]float32, s.numel()), Buffer: s.role.isBuffer()}
		copyFromDense(p.Data, n.values[i])
		w.Params[i] = p
	}
	return w
}

// Logits runs the forward pass on x (Batch()*InputSize() values, row-major
// NCHW) and writes Batch()*Classes() logits into out. In Train mode it uses
// and updates the BatchNorm batch statistics like a PyTorch forward in
// model.train().
func (n *Net) Logits(x, out []float32) error {
	return netLogits(n, x, out)
}

// InputGrad computes the attack loss summed over the batch (soft-target
// cross-entropy against target, Batch()*Classes() values) and writes its
// gradient with respect to x into grad (Batch()*InputSize() values). It needs
// a PurposeInputGrad net.
func (n *Net) InputGrad(x, target, grad []float32) (float64, error) {
	return netInputGrad(n, x, target, grad)
}

// LogitsVJP writes J(x)ᵀ·upstream into grad (Batch()*InputSize() values),
// J the Jacobian of the Eval-mode logits with respect to x (Batch()*
// InputSize() values) and upstream dLoss/dlogits (Batch()*Classes()
// values). Samples do not interact in Eval mode, so row i of grad is sample
// i's own product. It needs a PurposeVJP net.
func (n *Net) LogitsVJP(x, upstream, grad []float32) error {
	return netLogitsVJP(n, x, upstream, grad)
}

// LossGrad runs x (Batch()*InputSize() values) once in Eval mode: it
// writes the logits into logits (Batch()*Classes() values), calls loss on
// every sample i in turn, storing its result in losses[i] (Batch() values),
// and writes J(x)ᵀ·up into grad (Batch()*InputSize() values), up the
// dLoss/dlogits the calls wrote. It computes what Logits followed by
// LogitsVJP with that upstream compute, with the forward pass run once. It
// needs a PurposeLossGrad net.
func (n *Net) LossGrad(x []float32, loss RowLoss, logits []float32, losses []float64, grad []float32) error {
	if len(losses) != n.batch {
		return fmt.Errorf("%s net (batch %d): losses has %d values, want %d", n.purpose, n.batch, len(losses), n.batch)
	}
	return netLossGrad(n, x, lossCall[float32]{loss: loss, rows: n.batch, losses: losses}, logits, grad)
}

// TrainStep computes mean_i softCE(f(x_i), target_i) and the gradients of
// every trainable parameter (fresh each call, read them with Grads). It writes
// the logits into logits when it is not nil. In Train mode the BatchNorm
// running statistics are updated afterwards (momentum 0.1, unbiased batch
// variance), as PyTorch does. It needs a PurposeTrain net.
func (n *Net) TrainStep(x, target, logits []float32) (float64, error) {
	return netTrainStep(n, x, nil, target, logits, 0)
}

// TrainStepTRADES computes mean_i softCE(f(x_i), target_i) + beta·mean_i
// KL(softmax f(x_i) ‖ softmax f(xAdv_i)) and the gradients of every trainable
// parameter; logits (if not nil) receives f(x). In Train mode the running
// statistics are updated with the clean, adversarial and clean batch
// statistics in turn: the TRADES reference runs model(x), model(x_adv),
// model(x) in model.train(). It needs a PurposeTrainTRADES net.
func (n *Net) TrainStepTRADES(x, xAdv, target, logits []float32, beta float64) (float64, error) {
	return netTrainStep(n, x, xAdv, target, logits, beta)
}

// Grads returns the gradients of the last TrainStep, aligned with
// Weights().Params, nil for buffers (and nil altogether for a net that does
// not train). The slices are owned by the Net and are
// overwritten by the next call to Grads.
func (n *Net) Grads() [][]float32 {
	if n.grads == nil {
		return nil // not a training net
	}
	if n.gradBuf == nil {
		n.gradBuf = make([][]float32, len(n.specs))
		for i, s := range n.specs {
			if !s.role.isBuffer() {
				n.gradBuf[i] = make([]float32, s.numel())
			}
		}
	}
	for i := range n.specs {
		if v := n.gradValue(i); v != nil {
			copyFromValue(n.gradBuf[i], v)
		}
	}
	return n.gradBuf
}

// gradValue is the gradient of parameter i after the last run, nil for
// buffers, nets that do not train and graphs not run yet.
func (n *Net) gradValue(i int) G.Value {
	if n.grads == nil || n.grads[i] == nil {
		return nil
	}
	return n.grads[i].Value()
}

// logitsValue is the logits of the (clean) pass after the last run.
func (n *Net) logitsValue() G.Value {
	return n.logits.Value()
}

// lossValue is the loss of the last run.
func (n *Net) lossValue() float64 {
	return scalarValue(n.loss.Value())
}

// xGradValue is d loss / d x after the last run (input-gradient and VJP nets,
// training nets built withInputGrads).
func (n *Net) xGradValue() G.Value {
	return n.xGrad.Value()
}

// xAdvGradValue is d loss / d x_adv after the last run (TRADES training
// nets built withInputGrads).
func (n *Net) xAdvGradValue() G.Value {
	return n.xAdvGrad.Value()
}

// checkWeights reports whether w has exactly the Net's parameter layout.
func (n *Net) checkWeights(w *Weights) error {
	if err := w.Validate(); err != nil {
		return err
	}
	if len(w.Params) != len(n.specs) {
		return fmt.Errorf("weights have %d tensors, the net has %d", len(w.Params), len(n.specs))
	}
	for i, s := range n.specs {
		if w.Params[i].Name != s.name || !slices.Equal(w.Params[i].Shape, s.shape) {
			return fmt.Errorf("weight %d is %s%v, the net expects %s%v", i, w.Params[i].Name, w.Params[i].Shape, s.name, s.shape)
		}
	}
	return nil
}

// run executes the compiled program once and applies the BatchNorm
// running-statistics updates of a Train-mode pass.
func (n *Net) run() error {
	defer n.vm.Reset()
	if err := n.vm.RunAll(); err != nil {
		return fmt.Errorf("run %s graph: %w", n.purpose, err)
	}
	if n.opts.Mode == Train {
		n.updateRunningStats()
	}
	return nil
}

// updateRunningStats applies PyTorch's BatchNorm2d running update for every
// recorded batch: running = (1−m)·running + m·batch, with the unbiased
// variance (count/(count−1)) for running_var, and num_batches_tracked += 1.
func (n *Net) updateRunningStats() {
	for _, st := range n.statUpdates {
		idx := n.bnIndex[st.layer]
		unbiased := 1.0
		if st.count > 1 {
			unbiased = float64(st.count) / float64(st.count-1)
		}
		switch rm := n.values[idx.mean].Data().(type) {
		case []float32:
			rv := n.values[idx.variance].Data().([]float32)
			mean := valueData[float32](st.mean.Value())
			variance := valueData[float32](st.variance.Value())
			for c := range rm {
				rm[c] = float32((1-batchNormMomentum)*float64(rm[c]) + batchNormMomentum*float64(mean[c]))
				rv[c] = float32((1-batchNormMomentum)*float64(rv[c]) + batchNormMomentum*float64(variance[c])*unbiased)
			}
			n.values[idx.count].Data().([]float32)[0]++
		case []float64:
			rv := n.values[idx.variance].Data().([]float64)
			mean := valueData[float64](st.mean.Value())
			variance := valueData[float64](st.variance.Value())
			for c := range rm {
				rm[c] = (1-batchNormMomentum)*rm[c] + batchNormMomentum*mean[c]
				rv[c] = (1-batchNormMomentum)*rv[c] + batchNormMomentum*variance[c]*unbiased
			}
			n.values[idx.count].Data().([]float64)[0]++
		}
	}
}
