package train

import (
	"fmt"
	"math"

	"github.com/sglr-pipe/sglr-pipe/nn/attack"
	"github.com/sglr-pipe/sglr-pipe/nn/model"
	"github.com/sglr-pipe/sglr-pipe/stages"
)

// methodSpec is what a training method does per batch: the objective of its
// step, whether its adversarial examples come from the TRADES KL attack (else
// from the `attack` parameter's), and, for the AWP methods, the reference
// defaults of awp_gamma and awp_warmup.
type methodSpec struct {
	purpose      model.Purpose
	tradesAttack bool
	awp          bool
	awpGamma     float64
	awpWarmup    int
}

// methodSpecs holds every method of methodNames. The AWP defaults are those
// of the reference scripts (csdongxian/AWP): AT_AWP/train_cifar10.py has
// --awp-gamma 0.01 --awp-warmup 0 over 0-based epochs; trades_AWP/
// train_trades_cifar.py has --awp-gamma 0.005 --awp-warmup 10 with
// `epoch >= awp_warmup` over 1-based epochs, i.e. 9 epochs without AWP. The
// repository has no MART-AWP script; mart-awp takes TRADES-AWP's settings,
// MART being a TRADES-like regularised objective.
//
// Two BatchNorm details follow our base methods rather than the AWP scripts:
// trades-awp's training pass updates the running statistics in the TRADES
// order clean, adversarial, clean (train_trades_cifar.py runs adversarial,
// clean, clean after the perturbation), and awp does not run the extra
// train-mode clean pass that AT_AWP/train_cifar10.py (like the
// robust-overfitting code it builds on) makes after the update to report
// the training accuracy. mart, like pgd-at, crafts x' with the `attack`
// parameter's PGD, uniform random start; the MART reference starts at
// x + 0.001·N(0,1).
var methodSpecs = map[string]methodSpec{
	MethodStandard:  {purpose: model.PurposeTrain},
	MethodPGDAT:     {purpose: model.PurposeTrain},
	MethodTRADES:    {purpose: model.PurposeTrainTRADES, tradesAttack: true},
	MethodMART:      {purpose: model.PurposeTrainMART},
	MethodAWP:       {purpose: model.PurposeTrain, awp: true, awpGamma: 0.01, awpWarmup: 0},
	MethodTRADESAWP: {purpose: model.PurposeTrainTRADES, tradesAttack: true, awp: true, awpGamma: 0.005, awpWarmup: 9},
	MethodMARTAWP:   {purpose: model.PurposeTrainMART, awp: true, awpGamma: 0.005, awpWarmup: 9},
}

// awpParams are the AWP methods' parameters, listed after the others.
func awpParams() []stages.Param {
	return []stages.Param{
		{Name: "awp_gamma", Type: stages.TypeFloat, Default: -1.0, Min: stages.Float(-1),
			Doc: "awp, trades-awp, mart-awp: size γ of the weight perturbation relative to each weight tensor's norm; " +
				"-1 = the reference's: 0.01 for awp (AT-AWP), 0.005 for trades-awp (TRADES-AWP) and mart-awp"},
		{Name: "awp_warmup", Type: stages.TypeInt, Default: int64(-1), Min: stages.Float(-1),
			Doc: "awp, trades-awp, mart-awp: epochs trained without AWP before it starts; -1 = the reference's: 0 for awp, " +
				"9 for trades-awp and mart-awp (TRADES-AWP's `epoch >= 10` over 1-based epochs)"},
	}
}

// tradesAttack reports whether the method crafts its examples with the
// TRADES KL attack (trades, trades-awp).
func (c Config) tradesAttack() bool { return methodSpecs[c.Method].tradesAttack }

// usesAWP reports whether the method perturbs the weights (awp, trades-awp,
// mart-awp).
func (c Config) usesAWP() bool { return methodSpecs[c.Method].awp }

// resolveAWP replaces awp_gamma and awp_warmup −1 (the parameters' default)
// by the method's reference values, 0 for the methods without AWP. Other
// values are kept for awpProblems to judge.
func (c *Config) resolveAWP() {
	spec := methodSpecs[c.Method]
	if c.AWPGamma == -1 {
		c.AWPGamma = spec.awpGamma
	}
	if c.AWPWarmup == -1 {
		c.AWPWarmup = spec.awpWarmup
	}
}

// awpProblems checks the AWP settings, and the threat models the AWP and
// MART methods' attacks support (L2 is the pgd attack's only).
func (c Config) awpProblems() []stages.Problem {
	var ps []stages.Problem
	problem := func(name, hint, format string, args ...any) {
		ps = append(ps, stages.Problem{Param: name, Msg: fmt.Sprintf(format, args...), Hint: hint})
	}
	if c.Method != MethodTRADES && c.Norm == attack.L2 {
		switch {
		case c.tradesAttack():
			problem("norm", "use method awp or mart-awp, or norm linf", "norm l2 is not supported by method %s (its KL attack is L∞)", c.Method)
		case c.Method != MethodPGDAT && c.Method != MethodStandard && c.Attack == AttackFGSM:
			problem("norm", "use attack pgd, or norm linf", "norm l2 is not supported by attack fgsm")
		}
	}
	if !c.usesAWP() {
		if c.AWPGamma != 0 || c.AWPWarmup != 0 {
			problem("awp_gamma", "use method awp, trades-awp or mart-awp, or remove awp_gamma and awp_warmup",
				"awp_gamma and awp_warmup have no effect with method %s", c.Method)
		}
		return ps
	}
	switch {
	case math.IsNaN(c.AWPGamma) || math.IsInf(c.AWPGamma, 0) || c.AWPGamma < 0:
		problem("awp_gamma", "", "awp_gamma %v must be finite and > 0 (-1 for the method's default)", c.AWPGamma)
	case c.AWPGamma == 0:
		problem("awp_gamma", "use method pgd-at, trades or mart to train without AWP", "awp_gamma 0 perturbs nothing")
	}
	switch {
	case c.AWPWarmup < 0:
		problem("awp_warmup", "", "awp_warmup %d must be >= 0 (-1 for the method's default)", c.AWPWarmup)
	case c.AWPWarmup >= c.Epochs:
		problem("awp_warmup", "lower awp_warmup (or raise epochs)", "awp_warmup %d leaves no AWP epoch in %d epochs", c.AWPWarmup, c.Epochs)
	}
	return ps
}

// trainStep takes the method's training step on the batch and returns its
// loss, the gradient left in the trainer's Grads: the objective of x'
// (pgd-at, awp; of x for standard) or of x and x' (trades, mart and their
// AWP forms), at adversarially perturbed weights for the AWP methods from
// epoch (0-based) awp_warmup on. AWP keeps nothing between batches: the
// perturbation is rebuilt from the weights at every step.
func (t *trainingRun) trainStep(epoch int, x, xAdv, targets []float32, n int) (float64, error) {
	spec := methodSpecs[t.cfg.Method]
	obj := model.Objective{Purpose: spec.purpose, Beta: t.cfg.Beta}
	in := x
	if spec.purpose == model.PurposeTrain && t.cfg.Method != MethodStandard {
		in = xAdv
	}
	var loss float64
	var err error
	if spec.awp && epoch >= t.cfg.AWPWarmup {
		loss, _, err = t.trainer.StepAWP(obj, in, xAdv, targets, n, t.cfg.AWPGamma)
	} else {
		loss, _, err = t.trainer.StepObjective(obj, in, xAdv, targets, n)
	}
	return loss, err
}
