package nn

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/sglr-pipe/sglr-pipe/nn/elementwise"
)

// Attack names accepted by AttackSpec.Name.
const (
	AttackClean      = "clean"
	AttackFGSM       = "fgsm"
	AttackPGD        = "pgd"
	AttackCW         = "cw"
	AttackAPGDCE     = "apgd-ce"
	AttackAPGDT      = "apgd-t"
	AttackFABT       = "fab-t"
	AttackSquare     = "square"
	AttackAutoAttack = "autoattack"
)

// AttackNames lists the attacks RunAttack knows, in the order of the
// evaluation protocol.
var AttackNames = []string{AttackClean, AttackFGSM, AttackPGD, AttackCW, AttackAPGDCE, AttackAPGDT, AttackFABT, AttackSquare, AttackAutoAttack}

// Defaults of AttackSpec's zero fields, from the papers' evaluation settings
// (PGD-20 at eps 8/255 uses step 2/255 = eps/4).
const (
	DefaultPGDSteps      = 20   // pgd, cw: PGD-20
	DefaultStepFraction  = 0.25 // pgd, cw: step = eps/4
	DefaultKappa         = 50   // cw: margin confidence κ
	DefaultAPGDSteps     = 100  // apgd-ce, apgd-t: iterations
	DefaultFABSteps      = 100  // fab-t: iterations
	DefaultTargets       = 9    // apgd-t, fab-t: target classes (capped at K−1)
	DefaultSquareQueries = 5000 // square: queries
)

// AttackSpec names an evaluation attack and its settings. Zero fields take
// the defaults of the evaluation protocol:
//
//	fgsm:        one signed-gradient step of size Step (default Eps) from the
//	             clean input (Goodfellow et al.), no random start
//	pgd:         Steps 20, Step Eps/4, Restarts 1, uniform random start
//	cw:          PGD on the CW margin loss: Steps 20, Step Eps/4, Kappa 50
//	apgd-ce:     Steps 100, Restarts 1
//	apgd-t:      Steps 100, Restarts 1, Targets 9
//	fab-t:       Steps 100, Restarts 1, Targets 9
//	square:      Queries 5000, Restarts 1
//	autoattack:  the "standard" composite; Steps, Targets and Queries, when
//	             set, override its APGD/FAB iterations, targets and Square
//	             queries (for cheaper runs)
//
// Kappa 0 therefore means the paper's κ = 50.
type AttackSpec struct {
	Name     string  // clean|fgsm|pgd|cw|apgd-ce|apgd-t|fab-t|square|autoattack
	Eps      float64 // L∞ radius
	Step     float64 // pgd/cw/fgsm step
	Steps    int     // pgd/cw/apgd/fab iterations
	Restarts int     // pgd/cw/apgd/fab/square runs
	Queries  int     // square queries
	Kappa    float64 // cw margin confidence
	Targets  int     // apgd-t / fab-t target classes
}

// Validate reports whether the spec names a known attack with usable
// settings.
func (s AttackSpec) Validate() error {
	if !slices.Contains(AttackNames, s.Name) {
		return fmt.Errorf("attack %q: unknown attack; want one of %v", s.Name, AttackNames)
	}
	if err := checkEps("attack "+s.Name, s.Eps); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"step", s.Step}, {"kappa", s.Kappa}} {
		if !(f.v >= 0) || math.IsInf(f.v, 1) {
			return fmt.Errorf("attack %s: %s %v must be a finite number >= 0", s.Name, f.name, f.v)
		}
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"steps", s.Steps}, {"restarts", s.Restarts}, {"queries", s.Queries}, {"targets", s.Targets}} {
		if f.v < 0 {
			return fmt.Errorf("attack %s: %s %d must be >= 0", s.Name, f.name, f.v)
		}
	}
	return nil
}

// WithDefaults returns the spec with its zero fields replaced by the
// defaults of its attack (see AttackSpec).
func (s AttackSpec) WithDefaults() AttackSpec {
	or := func(v, def int) int {
		if v == 0 {
			return def
		}
		return v
	}
	s.Restarts = or(s.Restarts, 1)
	switch s.Name {
	case AttackFGSM:
		if s.Step == 0 {
			s.Step = s.Eps
		}
		s.Steps = 1
	case AttackPGD, AttackCW:
		s.Steps = or(s.Steps, DefaultPGDSteps)
		if s.Step == 0 {
			s.Step = DefaultStepFraction * s.Eps
		}
		if s.Name == AttackCW && s.Kappa == 0 {
			s.Kappa = DefaultKappa
		}
	case AttackAPGDCE, AttackAPGDT:
		s.Steps = or(s.Steps, DefaultAPGDSteps)
		s.Targets = or(s.Targets, DefaultTargets)
	case AttackFABT:
		s.Steps = or(s.Steps, DefaultFABSteps)
		s.Targets = or(s.Targets, DefaultTargets)
	case AttackSquare:
		s.Queries = or(s.Queries, DefaultSquareQueries)
	}
	return s
}

// RunAttack writes adversarial examples into xAdv (clean: a copy of x) for
// every sample: n inputs x in [0,1] (n*InputSize, xAdv may alias x) with
// their labels. rng draws every random choice; the result is deterministic
// for a given rng state. Attacks batch their model calls over all the
// samples they still work on, so an Evaluator spreads them over its workers.
func RunAttack(m GradModel, spec AttackSpec, x []float32, labels []int32, n int, rng *rand.Rand, xAdv []float32) error {
	if err := spec.Validate(); err != nil {
		return err
	}
	if _, _, err := checkEvalInputs("attack "+spec.Name, m, x, labels, n, xAdv); err != nil {
		return err
	}
	s := spec.WithDefaults()
	switch s.Name {
	case AttackClean:
		copy(xAdv, x)
		return nil
	case AttackFGSM:
		return (&Attacker{}).PGD(m, x, labels, n, PGD{Eps: s.Eps, Step: s.Step, Steps: 1}, rng, xAdv)
	case AttackPGD:
		return (&Attacker{}).PGD(m, x, labels, n, PGD{Eps: s.Eps, Step: s.Step, Steps: s.Steps, RandomStart: true, Restarts: s.Restarts}, rng, xAdv)
	case AttackCW:
		return CW{Eps: s.Eps, Step: s.Step, Steps: s.Steps, Restarts: s.Restarts, Kappa: s.Kappa}.Run(m, x, labels, n, rng, xAdv)
	case AttackAPGDCE:
		return APGD{Eps: s.Eps, Steps: s.Steps, Restarts: s.Restarts, Loss: APGDCE}.Run(m, x, labels, n, rng, xAdv)
	case AttackAPGDT:
		return APGD{Eps: s.Eps, Steps: s.Steps, Restarts: s.Restarts, Loss: APGDTargetedDLR, Targets: s.Targets}.Run(m, x, labels, n, rng, xAdv)
	case AttackFABT:
		_, err := FAB{Eps: s.Eps, Steps: s.Steps, Restarts: s.Restarts, Targets: s.Targets}.Run(m, x, labels, n, rng, xAdv)
		return err
	case AttackSquare:
		return Square{Eps: s.Eps, Queries: s.Queries, Restarts: s.Restarts}.Run(m, x, labels, n, rng, xAdv)
	default: // AttackAutoAttack; Validate rejected the rest
		_, err := AutoAttackConfig{Eps: s.Eps, Steps: spec.Steps, Targets: spec.Targets, Queries: spec.Queries}.Run(m, x, labels, n, rng, xAdv)
		return err
	}
}

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
			wrong := argmax(z) != int(labels[i])
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
