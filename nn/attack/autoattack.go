package attack

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/sglr-pipe/sglr-pipe/nn/model"
)

// AutoAttackStep is one component of an AutoAttack run.
type AutoAttackStep struct {
	Attack    string  // "apgd-ce", "apgd-t", "fab-t" or "square"
	RobustAcc float64 // robust accuracy after this component (cumulative)
	Broken    int     // points this component broke (robust before it)
	Seconds   float64 // wall time of the component
}

// AutoAttackReport records an AutoAttack run: the clean accuracy, the robust
// accuracy after each component in turn, and the final robust accuracy.
type AutoAttackReport struct {
	CleanAcc  float64
	RobustAcc float64
	Steps     []AutoAttackStep
}

// AutoAttackConfig configures the AutoAttack "standard" composite (Croce &
// Hein 2020): APGD-CE, APGD-T (targeted DLR), FAB-T and Square, each run
// only on the points still robust, a point counted broken if any attack
// breaks it. Zero fields take the standard settings of the reference's
// set_version('standard') for the norm: 100 APGD and FAB iterations, 9
// target classes, 5000 Square queries, one restart each under L∞ and L2;
// under L1 APGD is l1-APGD (with its 3·eps, 2·eps, eps schedule), APGD-CE
// runs 5 restarts and APGD-T 5 target classes (FAB-T keeps 9).
type AutoAttackConfig struct {
	Eps     float64 // radius in Norm
	Steps   int     // APGD and FAB iterations; 0 means 100
	Targets int     // APGD-T and FAB-T target classes; 0 means the standard's (see above)
	Queries int     // Square queries; 0 means 5000
	Norm    Norm    // threat model: Linf (the zero value), L2 or L1
}

// Validate reports whether the configuration is usable.
func (c AutoAttackConfig) Validate() error {
	if err := checkEps("autoattack", c.Eps); err != nil {
		return err
	}
	if err := checkNorm("autoattack", c.Norm, Linf, L2, L1); err != nil {
		return err
	}
	if c.Steps < 0 || c.Targets < 0 || c.Queries < 0 {
		return fmt.Errorf("autoattack: steps %d, targets %d and queries %d must be >= 0", c.Steps, c.Targets, c.Queries)
	}
	return nil
}

// AutoAttack runs APGD-CE, APGD-T, FAB-T and Square in turn with the L∞
// standard settings at radius eps, each only on points still robust, and
// writes into xAdv (may alias x) the adversarial example of every broken
// point and the clean input of the others. The report gives the robust
// accuracy after each attack (cumulative). rng must not be nil; with the
// same rng state the APGD-CE component draws exactly what
// Run(apgd-ce) draws, so AutoAttack is never weaker than APGD-CE.
func AutoAttack(m GradModel, eps float64, x []float32, labels []int32, n int, rng *rand.Rand, xAdv []float32) (*AutoAttackReport, error) {
	return AutoAttackConfig{Eps: eps}.Run(m, x, labels, n, rng, xAdv)
}

// Run is AutoAttack with the settings of c.
func (c AutoAttackConfig) Run(m GradModel, x []float32, labels []int32, n int, rng *rand.Rand, xAdv []float32) (*AutoAttackReport, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if rng == nil {
		return nil, errors.New("autoattack: rng is nil; its attacks are randomised")
	}
	d, k, err := checkEvalInputs("autoattack", m, x, labels, n, xAdv)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, errors.New("autoattack: need at least one sample, got n=0")
	}
	steps := max(c.Steps, 0)
	if steps == 0 {
		steps = DefaultAPGDSteps
	}
	apgdTargets, fabTargets, apgdRestarts := DefaultTargets, DefaultTargets, 1
	if c.Norm == L1 {
		apgdTargets, apgdRestarts = 5, 5
	}
	if c.Targets > 0 {
		apgdTargets, fabTargets = c.Targets, c.Targets
	}
	queries := c.Queries
	if queries == 0 {
		queries = DefaultSquareQueries
	}
	p := c.Norm
	components := []struct {
		name string
		run  func(xs []float32, ys []int32, na int, out []float32) error
	}{
		{NameAPGDCE, func(xs []float32, ys []int32, na int, out []float32) error {
			return APGD{Eps: c.Eps, Steps: steps, Loss: APGDCE, Restarts: apgdRestarts, Norm: p}.Run(m, xs, ys, na, rng, out)
		}},
		{NameAPGDT, func(xs []float32, ys []int32, na int, out []float32) error {
			return APGD{Eps: c.Eps, Steps: steps, Loss: APGDTargetedDLR, Targets: apgdTargets, Norm: p}.Run(m, xs, ys, na, rng, out)
		}},
		{NameFABT, func(xs []float32, ys []int32, na int, out []float32) error {
			_, err := FAB{Eps: c.Eps, Steps: steps, Targets: fabTargets, Norm: p}.Run(m, xs, ys, na, rng, out)
			return err
		}},
		{NameSquare, func(xs []float32, ys []int32, na int, out []float32) error {
			return Square{Eps: c.Eps, Queries: queries, Norm: p}.Run(m, xs, ys, na, rng, out)
		}},
	}
	clean := append([]float32(nil), x...)
	copy(xAdv, clean)
	logits := make([]float32, n*k)
	robust, err := correctIndices(m, clean, labels, n, k, logits)
	if err != nil {
		return nil, fmt.Errorf("autoattack: %w", err)
	}
	report := &AutoAttackReport{CleanAcc: float64(len(robust)) / float64(n)}
	for _, comp := range components {
		start := time.Now()
		broken := 0
		if na := len(robust); na > 0 {
			xs := make([]float32, na*d)
			ys := make([]int32, na)
			model.Gather(clean, d, robust, xs)
			model.GatherLabels(labels, robust, ys)
			out := make([]float32, na*d)
			if err := comp.run(xs, ys, na, out); err != nil {
				return nil, fmt.Errorf("autoattack %s: %w", comp.name, err)
			}
			wrong, err := Success(m, out, ys, na)
			if err != nil {
				return nil, fmt.Errorf("autoattack %s: %w", comp.name, err)
			}
			scatterRows(xAdv, out, d, robust, wrong)
			kept := robust[:0]
			for j, i := range robust {
				if wrong[j] {
					broken++
					continue
				}
				kept = append(kept, i)
			}
			robust = kept
		}
		report.Steps = append(report.Steps, AutoAttackStep{
			Attack:    comp.name,
			RobustAcc: float64(len(robust)) / float64(n),
			Broken:    broken,
			Seconds:   time.Since(start).Seconds(),
		})
	}
	report.RobustAcc = float64(len(robust)) / float64(n)
	return report, nil
}
