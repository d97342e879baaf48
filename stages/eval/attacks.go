package eval

import (
	"math"
	"math/rand/v2"

	nnattack "github.com/sglr-pipe/sglr-pipe/nn/attack"
	nnmodel "github.com/sglr-pipe/sglr-pipe/nn/model"
)

// attackModel is the Evaluator as the nn attacks see it: the Evaluator is
// already an nnattack.GradModel (logits, input gradients and the logits
// vector-Jacobian product that cw, apgd, fab-t and autoattack need); the
// wrapper only fixes the image shape Square places its squares on.
type attackModel struct {
	*nnmodel.Evaluator
	shape []int
}

// InputShape is the per-sample shape C,H,W of the model's inputs.
func (m attackModel) InputShape() []int { return m.shape }

// runAttack writes the attack's examples for the n samples x into xAdv and,
// for autoattack, returns its components' cumulative robust counts.
func runAttack(m attackModel, cfg Config, attack string, x []float32, y []int32, n int, rng *rand.Rand, xAdv []float32) ([]autoStep, error) {
	if attack == nnattack.NameAutoAttack {
		// targets 9, the parameter's default, leaves the standard's own
		// targets: 9 everywhere but l1's APGD-T, which the standard runs on 5.
		targets := cfg.Targets
		if targets == nnattack.DefaultTargets {
			targets = 0
		}
		rep, err := nnattack.AutoAttackConfig{Eps: cfg.Eps, Steps: cfg.Steps, Targets: targets, Queries: cfg.Queries,
			Norm: cfg.Norm}.Run(m, x, y, n, rng, xAdv)
		if err != nil {
			return nil, err
		}
		steps := make([]autoStep, len(rep.Steps))
		for i, s := range rep.Steps {
			steps[i] = autoStep{attack: s.Attack, robust: int(math.Round(s.RobustAcc * float64(n))), seconds: s.Seconds}
		}
		return steps, nil
	}
	spec := nnattack.Spec{Name: attack, Norm: cfg.Norm, Eps: cfg.Eps, Step: cfg.Step, Steps: cfg.Steps, Restarts: cfg.Restarts,
		Queries: cfg.Queries, Kappa: cfg.Kappa, Targets: cfg.Targets}
	return nil, nnattack.Run(m, spec, x, y, n, rng, xAdv)
}
