package attack

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Attack names accepted by Spec.Name.
const (
	NameClean      = "clean"
	NameFGSM       = "fgsm"
	NamePGD        = "pgd"
	NameCW         = "cw"
	NameAPGDCE     = "apgd-ce"
	NameAPGDT      = "apgd-t"
	NameFABT       = "fab-t"
	NameSquare     = "square"
	NameAutoAttack = "autoattack"
)

// Names lists the attacks Run knows, in the order of the
// evaluation protocol.
var Names = []string{NameClean, NameFGSM, NamePGD, NameCW, NameAPGDCE, NameAPGDT, NameFABT, NameSquare, NameAutoAttack}

// Defaults of Spec's zero fields, from the papers' evaluation settings
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

// Spec names an evaluation attack and its settings. Zero fields take
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
//
// Norm selects the threat model (L∞, the zero value, L2 or L1); Supports
// says which attacks have a version for it: fgsm and pgd take L∞ and L2
// (under L2 fgsm is one normalised-gradient step of size Step from the clean
// input), cw only L∞, the APGD, FAB, Square and AutoAttack attacks all three.
type Spec struct {
	Name     string  // clean|fgsm|pgd|cw|apgd-ce|apgd-t|fab-t|square|autoattack
	Norm     Norm    // threat model
	Eps      float64 // radius in Norm
	Step     float64 // pgd/cw/fgsm step
	Steps    int     // pgd/cw/apgd/fab iterations
	Restarts int     // pgd/cw/apgd/fab/square runs
	Queries  int     // square queries
	Kappa    float64 // cw margin confidence
	Targets  int     // apgd-t / fab-t target classes
}

// Validate reports whether the spec names a known attack with usable
// settings.
func (s Spec) Validate() error {
	if !slices.Contains(Names, s.Name) {
		return fmt.Errorf("attack %q: unknown attack; want one of %v", s.Name, Names)
	}
	if err := checkEps("attack "+s.Name, s.Eps); err != nil {
		return err
	}
	if err := checkNorm("attack "+s.Name, s.Norm, attackNorms[s.Name]...); err != nil {
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
// defaults of its attack (see Spec).
func (s Spec) WithDefaults() Spec {
	or := func(v, def int) int {
		if v == 0 {
			return def
		}
		return v
	}
	s.Restarts = or(s.Restarts, 1)
	switch s.Name {
	case NameFGSM:
		if s.Step == 0 {
			s.Step = s.Eps
		}
		s.Steps = 1
	case NamePGD, NameCW:
		s.Steps = or(s.Steps, DefaultPGDSteps)
		if s.Step == 0 {
			s.Step = DefaultStepFraction * s.Eps
		}
		if s.Name == NameCW && s.Kappa == 0 {
			s.Kappa = DefaultKappa
		}
	case NameAPGDCE, NameAPGDT:
		s.Steps = or(s.Steps, DefaultAPGDSteps)
		s.Targets = or(s.Targets, DefaultTargets)
	case NameFABT:
		s.Steps = or(s.Steps, DefaultFABSteps)
		s.Targets = or(s.Targets, DefaultTargets)
	case NameSquare:
		s.Queries = or(s.Queries, DefaultSquareQueries)
	}
	return s
}

// Run writes adversarial examples into xAdv (clean: a copy of x) for
// every sample: n inputs x in [0,1] (n*InputSize, xAdv may alias x) with
// their labels. rng draws every random choice; the result is deterministic
// for a given rng state. Attacks batch their model calls over all the
// samples they still work on, so an Evaluator spreads them over its workers.
func Run(m GradModel, spec Spec, x []float32, labels []int32, n int, rng *rand.Rand, xAdv []float32) error {
	if err := spec.Validate(); err != nil {
		return err
	}
	if _, _, err := checkEvalInputs("attack "+spec.Name, m, x, labels, n, xAdv); err != nil {
		return err
	}
	s := spec.WithDefaults()
	switch s.Name {
	case NameClean:
		copy(xAdv, x)
		return nil
	case NameFGSM:
		return (&Attacker{}).PGD(m, x, labels, n, PGD{Eps: s.Eps, Step: s.Step, Steps: 1, Norm: s.Norm}, rng, xAdv)
	case NamePGD:
		return (&Attacker{}).PGD(m, x, labels, n, PGD{Eps: s.Eps, Step: s.Step, Steps: s.Steps, RandomStart: true,
			Restarts: s.Restarts, Norm: s.Norm}, rng, xAdv)
	case NameCW:
		return CW{Eps: s.Eps, Step: s.Step, Steps: s.Steps, Restarts: s.Restarts, Kappa: s.Kappa}.Run(m, x, labels, n, rng, xAdv)
	case NameAPGDCE:
		return APGD{Eps: s.Eps, Steps: s.Steps, Restarts: s.Restarts, Loss: APGDCE, Norm: s.Norm}.Run(m, x, labels, n, rng, xAdv)
	case NameAPGDT:
		return APGD{Eps: s.Eps, Steps: s.Steps, Restarts: s.Restarts, Loss: APGDTargetedDLR, Targets: s.Targets,
			Norm: s.Norm}.Run(m, x, labels, n, rng, xAdv)
	case NameFABT:
		_, err := FAB{Eps: s.Eps, Steps: s.Steps, Restarts: s.Restarts, Targets: s.Targets, Norm: s.Norm}.Run(m, x, labels, n, rng, xAdv)
		return err
	case NameSquare:
		return Square{Eps: s.Eps, Queries: s.Queries, Restarts: s.Restarts, Norm: s.Norm}.Run(m, x, labels, n, rng, xAdv)
	default: // NameAutoAttack; Validate rejected the rest
		_, err := AutoAttackConfig{Eps: s.Eps, Steps: spec.Steps, Targets: spec.Targets, Queries: spec.Queries,
			Norm: s.Norm}.Run(m, x, labels, n, rng, xAdv)
		return err
	}
}
