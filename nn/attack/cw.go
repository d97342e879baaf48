package attack

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/sglr-pipe/sglr-pipe/nn/elementwise"
	"github.com/sglr-pipe/sglr-pipe/nn/internal/vec"
)

// CW configures the CW∞ attack of the robustness literature (the TRADES and
// MART evaluation code): PGD with a uniform random start on the
// Carlini–Wagner margin loss −max(z_y − max_{k≠y} z_k + κ, 0), each signed
// step projected to the eps-ball and clipped to [0,1]. With restarts the
// best run per sample is kept: misclassified beats correct, then the higher
// loss wins.
type CW struct {
	Eps      float64 // L∞ radius
	Step     float64 // signed-gradient step
	Steps    int     // steps per run
	Restarts int     // runs; 0 counts as 1
	Kappa    float64 // margin confidence κ (50 in the protocol)
}

// Validate reports whether the configuration is usable.
func (c CW) Validate() error {
	if err := checkRadius("cw", c.Eps, c.Step, c.Steps); err != nil {
		return err
	}
	if c.Restarts < 0 {
		return fmt.Errorf("cw: restarts %d must be >= 0", c.Restarts)
	}
	if !(c.Kappa >= 0) || math.IsInf(c.Kappa, 1) {
		return fmt.Errorf("cw: kappa %v must be a finite number >= 0", c.Kappa)
	}
	return nil
}

// Run writes into xAdv (may alias x) the CW∞ adversarial examples of the n
// inputs x. rng draws the random starts and must not be nil.
func (c CW) Run(m GradModel, x []float32, labels []int32, n int, rng *rand.Rand, xAdv []float32) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if rng == nil {
		return errors.New("cw: rng is nil; the random start needs one")
	}
	d, k, err := checkEvalInputs("cw", m, x, labels, n, xAdv)
	if err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	clean := append([]float32(nil), x...)
	var buf evalBuffers
	buf.size(n, d, k)
	loss := func(i int, z, up []float32) float64 { return cwRow(z, int(labels[i]), c.Kappa, up) }
	restarts := max(c.Restarts, 1)
	var best []float32
	var bestLoss []float64
	var bestWrong []bool
	if restarts > 1 {
		best, bestLoss, bestWrong = make([]float32, n*d), make([]float64, n), make([]bool, n)
	}
	for r := range restarts {
		for i, v := range clean {
			xAdv[i] = float32(math.Min(math.Max(float64(v)+c.Eps*(2*rng.Float64()-1), 0), 1))
		}
		for s := range c.Steps {
			if err := buf.lossGrad(m, xAdv, n, d, k, loss); err != nil {
				return fmt.Errorf("cw restart %d step %d: %w", r+1, s+1, err)
			}
			// lossGrad has refused NaN gradients, so SignStep finds none.
			elementwise.SignStep(xAdv, buf.grad, clean, c.Step, c.Eps)
		}
		if restarts == 1 {
			break
		}
		if err := m.Logits(xAdv, n, buf.logits); err != nil {
			return fmt.Errorf("cw restart %d: logits: %w", r+1, err)
		}
		for i := range n {
			z := buf.logits[i*k : (i+1)*k]
			l := cwRow(z, int(labels[i]), c.Kappa, buf.up[i*k:(i+1)*k])
			wrong := vec.Argmax(z) != int(labels[i])
			if r == 0 || (wrong && !bestWrong[i]) || (wrong == bestWrong[i] && l > bestLoss[i]) {
				bestLoss[i], bestWrong[i] = l, wrong
				copy(best[i*d:(i+1)*d], xAdv[i*d:(i+1)*d])
			}
		}
	}
	if restarts > 1 {
		copy(xAdv, best)
	}
	return nil
}

// cwRow is the CW loss −max(z_y − max_{k≠y} z_k + κ, 0) of one row (to be
// maximised); up receives its gradient.
func cwRow(z []float32, y int, kappa float64, up []float32) float64 {
	other := -1
	for j, v := range z {
		if j != y && (other < 0 || v > z[other]) {
			other = j
		}
	}
	clear(up)
	if other < 0 {
		return 0
	}
	margin := float64(z[y]) - float64(z[other]) + kappa
	if margin <= 0 {
		return 0
	}
	up[y], up[other] = -1, 1
	return -margin
}
