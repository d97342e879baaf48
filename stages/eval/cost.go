package eval

import (
	nnattack "github.com/sglr-pipe/sglr-pipe/nn/attack"
)

// attackCost is what one image of attack costs, in model passes (a forward
// pass, or a forward and backward pass, counted as one): the unit of eval's
// progress, so that its ETA weighs an AutoAttack image as the hundreds of
// passes it takes rather than as one clean image. The figures are the
// attacks' worst cases (no early stop, every target), so the ETA errs long
// on weak models, where AutoAttack stops early.
func attackCost(cfg Config, attack string, classes int) int64 {
	spec := nnattack.Spec{Name: attack, Norm: cfg.Norm, Eps: cfg.Eps, Step: cfg.Step, Steps: cfg.Steps,
		Restarts: cfg.Restarts, Queries: cfg.Queries, Kappa: cfg.Kappa, Targets: cfg.Targets}.WithDefaults()
	targets := int64(min(spec.Targets, classes-1))
	restarts, steps := int64(spec.Restarts), int64(spec.Steps)
	switch attack {
	case nnattack.NameClean:
		return 1
	case nnattack.NameFGSM:
		return 2
	case nnattack.NamePGD, nnattack.NameCW, nnattack.NameAPGDCE:
		return restarts*steps + 1
	case nnattack.NameAPGDT:
		return restarts*targets*steps + 1
	case nnattack.NameFABT:
		return 2*restarts*targets*steps + 1 // each step differentiates two logits
	case nnattack.NameSquare:
		return restarts*int64(spec.Queries) + 1
	case nnattack.NameAutoAttack:
		queries := int64(cfg.Queries)
		if queries == 0 {
			queries = nnattack.DefaultSquareQueries
		}
		aaSteps := int64(cfg.Steps)
		if aaSteps == 0 {
			aaSteps = nnattack.DefaultAPGDSteps
		}
		aaTargets := int64(classes - 1)
		if cfg.Targets != nnattack.DefaultTargets && cfg.Targets > 0 {
			aaTargets = int64(min(cfg.Targets, classes-1))
		}
		return aaSteps + aaTargets*aaSteps + 2*aaTargets*aaSteps + queries + 1
	}
	return 1
}
