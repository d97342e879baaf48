package optim

import (
	"fmt"
	"math"

	"github.com/sglr-pipe/sglr-pipe/nn/model"
)

// SGD is stochastic gradient descent with momentum, weight decay and optional
// Nesterov momentum, computing exactly what torch.optim.SGD computes with
// dampening 0 (the reference training's optimiser):
//
//	d   = g + WeightDecay·w
//	buf = d                      at a parameter's first step
//	buf = Momentum·buf + d       afterwards
//	d   = d + Momentum·buf       if Nesterov, else d = buf
//	w   = w − lr·d
//
// With Momentum 0 no buffer is kept and the update is plain w −= lr·d.
// Arithmetic is float32, each operation rounded (never fused), so results are
// identical on every platform and agree with PyTorch to float32 rounding.
// Nesterov with Momentum 0 (which PyTorch refuses) is accepted: it is the
// same update as plain SGD.
type SGD struct {
	Momentum    float64
	WeightDecay float64
	Nesterov    bool

	// bufs holds one momentum buffer per parameter, nil until the parameter's
	// first step (as PyTorch's momentum_buffer is None), and always nil for
	// Buffer parameters.
	bufs [][]float32
}

// NewSGD returns an optimiser for params (the model's full state, Buffer
// entries included so indices line up with Weights.Params). Check user-given
// hyper-parameters first with ValidateSGD.
func NewSGD(params []*model.Param, momentum, weightDecay float64, nesterov bool) *SGD {
	return &SGD{
		Momentum:    momentum,
		WeightDecay: weightDecay,
		Nesterov:    nesterov,
		bufs:        make([][]float32, len(params)),
	}
}

// ValidateSGD reports a user mistake in SGD hyper-parameters: momentum must
// lie in [0,1) and weight decay be finite and non-negative.
func ValidateSGD(momentum, weightDecay float64) error {
	if math.IsNaN(momentum) || momentum < 0 || momentum >= 1 {
		return fmt.Errorf("sgd: momentum %v out of range [0,1)", momentum)
	}
	if math.IsNaN(weightDecay) || math.IsInf(weightDecay, 0) || weightDecay < 0 {
		return fmt.Errorf("sgd: weight decay %v must be finite and >= 0", weightDecay)
	}
	return nil
}

// Step applies one update with learning rate lr. grads[i] is the gradient of
// params[i] (same length as its Data); params that are Buffer or whose
// gradient is nil are skipped, as PyTorch skips parameters without .grad.
// Mismatched lengths are programming errors and panic.
func (o *SGD) Step(params []*model.Param, grads [][]float32, lr float64) {
	if len(params) != len(o.bufs) || len(grads) != len(params) {
		panic(fmt.Sprintf("sgd: %d params, %d grads, optimiser built for %d params", len(params), len(grads), len(o.bufs)))
	}
	lr32 := float32(lr)
	wd := float32(o.WeightDecay)
	mom := float32(o.Momentum)
	for i, p := range params {
		g := grads[i]
		if p.Buffer || g == nil {
			continue
		}
		w := p.Data
		if len(g) != len(w) {
			panic(fmt.Sprintf("sgd: param %s has %d values, gradient %d", p.Name, len(w), len(g)))
		}
		if o.Momentum == 0 {
			for j := range w {
				d := g[j]
				if wd != 0 {
					d = g[j] + float32(wd*w[j])
				}
				w[j] -= float32(lr32 * d)
			}
			continue
		}
		buf := o.bufs[i]
		first := buf == nil
		if first {
			buf = make([]float32, len(w))
			o.bufs[i] = buf
		}
		for j := range w {
			d := g[j]
			if wd != 0 {
				d = g[j] + float32(wd*w[j])
			}
			if first {
				buf[j] = d
			} else {
				buf[j] = float32(mom*buf[j]) + d
			}
			if o.Nesterov {
				d += float32(mom * buf[j])
			} else {
				d = buf[j]
			}
			w[j] -= float32(lr32 * d)
		}
	}
}

// State returns copies of the momentum buffers, one entry per parameter
// (nil where no buffer exists yet), for checkpoints.
func (o *SGD) State() [][]float32 {
	out := make([][]float32, len(o.bufs))
	for i, b := range o.bufs {
		if b != nil {
			out[i] = append([]float32(nil), b...)
		}
	}
	return out
}

// SetState restores momentum buffers saved by State. params give the
// expected lengths; a nil entry means "no buffer yet" (the next step starts
// the buffer afresh, as after PyTorch's load_state_dict of a fresh optimiser).
func (o *SGD) SetState(params []*model.Param, state [][]float32) error {
	if len(state) != len(params) || len(params) != len(o.bufs) {
		return fmt.Errorf("sgd state: %d buffers for %d params (optimiser built for %d)", len(state), len(params), len(o.bufs))
	}
	for i, s := range state {
		if s == nil {
			continue
		}
		if params[i].Buffer {
			return fmt.Errorf("sgd state: buffer %s has a momentum buffer", params[i].Name)
		}
		if len(s) != len(params[i].Data) {
			return fmt.Errorf("sgd state: param %s has %d values, momentum buffer %d", params[i].Name, len(params[i].Data), len(s))
		}
	}
	for i, s := range state {
		if s == nil {
			o.bufs[i] = nil
		} else {
			o.bufs[i] = append([]float32(nil), s...)
		}
	}
	return nil
}
