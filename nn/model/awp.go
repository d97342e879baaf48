package model

import (
	"fmt"
	"math"
	"strings"
)

// Adversarial weight perturbation (AWP; Wu, Xia & Wang, NeurIPS 2020,
// "Adversarial weight perturbation helps robust generalization"), as the
// reference code computes it (csdongxian/AWP, utils_awp.py:
// AdvWeightPerturb and TradesAWP). For each batch, after the adversarial
// examples are crafted:
//
//  1. a proxy copy of the model takes one SGD step (no momentum, no weight
//     decay) that ascends the training objective, in train mode, so that
//     only the proxy's BatchNorm running statistics see that pass;
//  2. for every weight tensor of two or more dimensions (see AWPPerturbed)
//     d = w_proxy − w is rescaled to v = ‖w‖/(‖d‖ + 1e-20)·d, a direction
//     as large as the tensor itself;
//  3. the model is perturbed to w + γ·v, the training loss and its gradient
//     are computed there (this pass updates the model's running statistics,
//     once, as the reference's does), and the weights are put back.
//
// The reference puts the weights back after optimizer.step() by subtracting
// γ·v again; Trainer.StepAWP restores the saved weights before the
// optimiser runs, so they come back bit for bit and the optimiser's weight
// decay sees w rather than w + γ·v. The two differ by lr·weight_decay·γ·v
// per step (5e-7·‖w‖ at lr 0.1, weight decay 5e-4 and γ 0.01).

// AWPProxyLR is the learning rate of the proxy's ascent step: the AT-AWP
// reference's proxy optimiser (SGD, lr 0.01). The proxy's change is
// AWPProxyLR times the objective's gradient, and the rescaling in
// AWPDirection cancels that factor except through the 1e-20 guard, so the
// TRADES-AWP reference's proxy learning rate (its --lr, 0.1) gives the same
// perturbation.
const AWPProxyLR = 0.01

// awpNormGuard is the reference's EPS in ‖w‖/(‖d‖ + EPS).
const awpNormGuard = 1e-20

// AWPPerturbed reports whether AWP perturbs p: a trainable tensor of two or
// more dimensions whose name contains "weight" (the convolution and linear
// weights, not biases or BatchNorm parameters), the reference's rule on the
// state_dict (diff_in_weights).
func AWPPerturbed(p *Param) bool {
	return !p.Buffer && len(p.Shape) > 1 && strings.Contains(p.Name, "weight")
}

// AWPDirection writes into v[i], for every parameter i of w that AWP
// perturbs, the rescaled proxy change ‖w_i‖/(‖d_i‖ + 1e-20)·d_i, with
// d_i = proxyLR·grads[i] the change of one SGD step of learning rate proxyLR
// that ascends the loss whose gradient grads is; v[i] must have w_i's
// length there and is left alone elsewhere (nil is fine). Norms are
// computed in float64 and v rounded to float32.
func AWPDirection(w *Weights, grads [][]float32, proxyLR float64, v [][]float32) error {
	if len(grads) != len(w.Params) || len(v) != len(w.Params) {
		return fmt.Errorf("AWP direction: %d parameters, %d gradients and %d outputs", len(w.Params), len(grads), len(v))
	}
	if !(proxyLR > 0) || math.IsInf(proxyLR, 0) {
		return fmt.Errorf("AWP direction: proxy learning rate %v must be finite and > 0", proxyLR)
	}
	for i, p := range w.Params {
		if !AWPPerturbed(p) {
			continue
		}
		g := grads[i]
		if len(g) != len(p.Data) || len(v[i]) != len(p.Data) {
			return fmt.Errorf("AWP direction: %s has %d values, its gradient %d and its output %d", p.Name, len(p.Data), len(g), len(v[i]))
		}
		var wNorm, dNorm float64
		for j, x := range p.Data {
			d := proxyLR * float64(g[j])
			wNorm += float64(x) * float64(x)
			dNorm += d * d
		}
		scale := math.Sqrt(wNorm) / (math.Sqrt(dNorm) + awpNormGuard)
		for j := range v[i] {
			v[i][j] = float32(scale * proxyLR * float64(g[j]))
		}
	}
	return nil
}

// Objective is the loss of a Trainer step: PurposeTrain (mean soft-target
// cross-entropy of the inputs x, so pgd-at passes its adversarial examples
// as x), PurposeTrainTRADES or PurposeTrainMART (of x and xAdv, Beta
// weighting the KL term).
type Objective struct {
	Purpose Purpose
	Beta    float64
}

// StepObjective runs obj's step: Step, StepTRADES or StepMART (xAdv is
// ignored for PurposeTrain).
func (t *Trainer) StepObjective(obj Objective, x, xAdv, target []float32, n int) (float64, []float32, error) {
	return t.step(obj.Purpose, x, xAdv, target, n, obj.Beta, true)
}

// awpScratch is the Trainer's AWP working memory, allocated on the first
// AWP step: per parameter, the direction and the saved weights (nil for the
// parameters AWP leaves alone). It holds nothing between steps.
type awpScratch struct {
	dir, saved [][]float32
}

// StepAWP is StepObjective at adversarially perturbed weights: it takes the
// objective's gradient at the master weights in Train mode without touching
// the master running statistics (the reference's proxy model), perturbs
// every AWPPerturbed tensor by gamma·AWPDirection, runs the step there
// (loss, logits, Grads and the running statistics, updated once, are those
// of the perturbed model) and restores the saved weights bit for bit, also
// when the step fails. The optimiser then applies Grads to the restored
// weights. gamma 0 is a plain StepObjective (the reference turns AWP off
// for gamma <= 0).
func (t *Trainer) StepAWP(obj Objective, x, xAdv, target []float32, n int, gamma float64) (float64, []float32, error) {
	if math.IsNaN(gamma) || math.IsInf(gamma, 0) || gamma < 0 {
		return 0, nil, fmt.Errorf("trainer AWP step: gamma %v must be finite and >= 0", gamma)
	}
	if gamma == 0 {
		return t.StepObjective(obj, x, xAdv, target, n)
	}
	if _, _, err := t.step(obj.Purpose, x, xAdv, target, n, obj.Beta, false); err != nil {
		return 0, nil, fmt.Errorf("AWP proxy: %w", err)
	}
	if t.awp == nil {
		t.awp = &awpScratch{dir: make([][]float32, len(t.master.Params)), saved: make([][]float32, len(t.master.Params))}
		for i, p := range t.master.Params {
			if AWPPerturbed(p) {
				t.awp.dir[i], t.awp.saved[i] = make([]float32, len(p.Data)), make([]float32, len(p.Data))
			}
		}
	}
	if err := AWPDirection(t.master, t.grads, AWPProxyLR, t.awp.dir); err != nil {
		return 0, nil, err
	}
	g32 := float32(gamma)
	for i, v := range t.awp.dir {
		if v == nil {
			continue
		}
		w := t.master.Params[i].Data
		copy(t.awp.saved[i], w)
		for j := range w {
			w[j] += float32(g32 * v[j]) // rounded, never fused: torch's add_(γ·v)
		}
	}
	loss, logits, err := t.step(obj.Purpose, x, xAdv, target, n, obj.Beta, true)
	for i, saved := range t.awp.saved {
		if saved != nil {
			copy(t.master.Params[i].Data, saved)
		}
	}
	if err != nil {
		return 0, nil, fmt.Errorf("AWP step at the perturbed weights: %w", err)
	}
	return loss, logits, nil
}
