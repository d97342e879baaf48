package eval

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/sglr-pipe/sglr-pipe/nn"
)

// attackModel is an Evaluator seen by the nn attacks: a GradModel that knows
// its image shape (for Square's squares). The gradient of losses other than
// the cross-entropy (cw, apgd, fab-t, autoattack) needs the Evaluator's
// logits vector-Jacobian product; a build whose Evaluator lacks it runs
// clean, fgsm and pgd only, and the others fail with an error saying so.
type attackModel struct {
	*nn.Evaluator
	shape []int
}

// InputShape is the per-sample shape C,H,W of the model's inputs.
func (m attackModel) InputShape() []int { return m.shape }

// LogitsVJP delegates to the Evaluator's vector-Jacobian product.
func (m attackModel) LogitsVJP(x []float32, n int, upstream []float32, grad []float32) error {
	if g, ok := any(m.Evaluator).(nn.GradModel); ok {
		return g.LogitsVJP(x, n, upstream, grad)
	}
	return fmt.Errorf("this build's nn.Evaluator has no logits vector-Jacobian product: " +
		"only clean, fgsm and pgd can run (the other attacks differentiate losses other than the cross-entropy)")
}

// runAttack writes the attack's examples for the n samples x into xAdv and,
// for autoattack, returns its components' cumulative robust counts.
func runAttack(m attackModel, cfg Config, attack string, x []float32, y []int32, n int, rng *rand.Rand, xAdv []float32) ([]autoStep, error) {
	if attack == nn.AttackAutoAttack {
		rep, err := nn.AutoAttackConfig{Eps: cfg.Eps, Steps: cfg.Steps, Targets: cfg.Targets, Queries: cfg.Queries}.
			Run(m, x, y, n, rng, xAdv)
		if err != nil {
			return nil, err
		}
		steps := make([]autoStep, len(rep.Steps))
		for i, s := range rep.Steps {
			steps[i] = autoStep{attack: s.Attack, robust: int(math.Round(s.RobustAcc * float64(n))), seconds: s.Seconds}
		}
		return steps, nil
	}
	spec := nn.AttackSpec{Name: attack, Eps: cfg.Eps, Step: cfg.Step, Steps: cfg.Steps, Restarts: cfg.Restarts,
		Queries: cfg.Queries, Kappa: cfg.Kappa, Targets: cfg.Targets}
	return nil, nn.RunAttack(m, spec, x, y, n, rng, xAdv)
}
