package attack

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/sglr-pipe/sglr-pipe/nn/elementwise"
	"github.com/sglr-pipe/sglr-pipe/nn/internal/vec"
)

// PGD configures projected gradient descent (Madry et al. 2018) under an
// L∞ or L2 budget: Steps gradient steps of size Step on the cross-entropy,
// each followed by projection to the eps-ball around the clean input and
// clipping to [0,1]. Under L∞ a step is Step·sign(∇); under L2 it is
// Step·∇/‖∇‖₂ and the projection scales the perturbation onto the L2 ball
// before clipping, as the robust-overfitting reference's attack_pgd (Rice et
// al. 2020) does. SGLR trains with L∞ Eps 8/255, Step 2/255, Steps 10,
// RandomStart and evaluates with Steps 20.
type PGD struct {
	Eps   float64 // radius in Norm
	Step  float64 // size of each step (L∞: per coordinate; L2: its Euclidean length)
	Steps int     // number of steps; 0 leaves the (random) start point
	// Norm is the threat model: Linf (the zero value) or L2.
	Norm Norm
	// RandomStart starts from a random point of the eps-ball instead of x:
	// x + U(−eps, eps)^D under L∞; under L2 x + r·eps·g/‖g‖₂ with g ~ N(0, I)
	// and r ~ U(0, 1) (the reference's start); clipped to [0,1] either way.
	RandomStart bool
	// Restarts runs the attack this many times (0 counts as 1) and keeps, per
	// sample, the best iterate: a misclassified one beats a correctly
	// classified one, and among equals the higher loss wins (the robust
	// overfitting reference keeps the max-loss delta; preferring success
	// makes more restarts never weaker than fewer with the same seed).
	Restarts int
	// EarlyStop stops updating a sample once the model misclassifies it (the
	// robust overfitting reference's early_stop option). It costs one extra
	// forward pass per step.
	EarlyStop bool
}

// Validate reports whether the configuration is usable.
func (c PGD) Validate() error {
	if err := checkRadius("pgd", c.Eps, c.Step, c.Steps); err != nil {
		return err
	}
	if err := checkNorm("pgd", c.Norm, Linf, L2); err != nil {
		return err
	}
	if c.Restarts < 0 {
		return fmt.Errorf("pgd: restarts %d must be >= 0", c.Restarts)
	}
	return nil
}

// FGSM configures the fast gradient sign method with random start of Wong et
// al. 2020 ("Fast is better than free"): delta ~ U(−eps, eps), one signed
// gradient step of size Step, projection to the eps-ball, clipping to [0,1].
// (Plain FGSM without random start is PGD{Eps: e, Step: e, Steps: 1}.)
type FGSM struct {
	Eps  float64 // radius in Norm
	Step float64 // step size; 0 means the paper's default 1.25·Eps
	// Norm is Linf (the zero value) or L2, where the random start and the
	// step are PGD's L2 ones (the robust-overfitting reference's fgsm).
	Norm Norm
}

// Validate reports whether the configuration is usable.
func (c FGSM) Validate() error {
	if err := checkRadius("fgsm", c.Eps, c.pgd().Step, 1); err != nil {
		return err
	}
	return checkNorm("fgsm", c.Norm, Linf, L2)
}

// TRADES configures the inner maximisation of TRADES (Zhang et al.
// 2019, reference code): start at x + 0.001·N(0,1), then Steps signed
// gradient steps on KL(p_clean ‖ p(x')), each projected to the eps-ball and
// clipped to [0,1]. p_clean = softmax(f(x)) is computed once. The reference
// uses Eps 0.031, Step 0.007, Steps 10.
type TRADES struct {
	Eps   float64 // L∞ radius
	Step  float64 // size of each signed-gradient step
	Steps int     // number of steps
}

// Validate reports whether the configuration is usable.
func (c TRADES) Validate() error {
	return checkRadius("trades attack", c.Eps, c.Step, c.Steps)
}

// TRADESStartStd is the standard deviation of the Gaussian start of the
// TRADES attack, as in the reference code.
const TRADESStartStd = 0.001

// PGD writes into xAdv (n*m.InputSize(), may alias x) adversarial examples
// for the n clean inputs x that maximise the cross-entropy of the true labels.
// rng draws the random starts; it may be nil when cfg needs none. The result
// is deterministic for a given rng state.
func (a *Attacker) PGD(m Model, x []float32, labels []int32, n int, cfg PGD, rng *rand.Rand, xAdv []float32) error {
	d, k, err := modelDims(m)
	if err != nil {
		return err
	}
	if err := checkBatch(x, labels, n, d, k); err != nil {
		return err
	}
	a.targets = grow(a.targets, n*k)
	clear(a.targets)
	a.ref = grow(a.ref, n)
	for i, y := range labels {
		a.targets[i*k+int(y)] = 1
		a.ref[i] = y
	}
	return a.pgd("pgd", m, x, n, d, k, cfg, rng, xAdv)
}

// PGDTargets is PGD maximising the soft-target cross-entropy
// −Σ_k targets[i,k]·log softmax(f(x'_i))_k instead of the hard-label one;
// targets is n*m.Classes(), non-negative. Success (for restarts and early
// stop) means the prediction differs from the target's argmax, so with one-hot
// targets PGDTargets is exactly PGD.
func (a *Attacker) PGDTargets(m Model, x, targets []float32, n int, cfg PGD, rng *rand.Rand, xAdv []float32) error {
	d, k, err := modelDims(m)
	if err != nil {
		return err
	}
	if n < 0 || len(x) != n*d {
		return fmt.Errorf("pgd targets: inputs have %d values, want n*InputSize = %d*%d", len(x), n, d)
	}
	if len(targets) != n*k {
		return fmt.Errorf("pgd targets: targets have %d values, want n*Classes = %d*%d = %d", len(targets), n, k, n*k)
	}
	a.targets = grow(a.targets, n*k)
	a.ref = grow(a.ref, n)
	for i := range n {
		row := targets[i*k : (i+1)*k]
		for j, t := range row {
			if !(t >= 0) || math.IsInf(float64(t), 1) {
				return fmt.Errorf("pgd targets: target %v (sample %d, class %d) must be finite and >= 0", t, i, j)
			}
		}
		a.ref[i] = int32(vec.Argmax(row))
	}
	copy(a.targets, targets)
	return a.pgd("pgd targets", m, x, n, d, k, cfg, rng, xAdv)
}

// FGSM writes into xAdv adversarial examples for x made by one random-start
// signed-gradient step on the true-label cross-entropy (Wong et al. 2020).
func (a *Attacker) FGSM(m Model, x []float32, labels []int32, n int, cfg FGSM, rng *rand.Rand, xAdv []float32) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	return a.PGD(m, x, labels, n, cfg.pgd(), rng, xAdv)
}

// TRADES writes into xAdv the TRADES inner maximisation for x: points in the
// eps-ball that maximise KL(softmax(f(x)) ‖ softmax(f(x'))). Its gradient is
// that of the soft-target cross-entropy with target softmax(f(x)), which is
// what the model provides. rng draws the Gaussian start and must not be nil.
func (a *Attacker) TRADES(m Model, x []float32, n int, cfg TRADES, rng *rand.Rand, xAdv []float32) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if rng == nil {
		return errors.New("trades attack: rng is nil; the Gaussian start needs one")
	}
	d, k, err := modelDims(m)
	if err != nil {
		return err
	}
	if n < 0 || len(x) != n*d {
		return fmt.Errorf("trades attack: inputs have %d values, want n*InputSize = %d*%d", len(x), n, d)
	}
	if err := a.prepare("trades attack", x, n, d, k, xAdv); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	if err := m.Logits(a.clean, n, a.logits); err != nil {
		return fmt.Errorf("trades attack: clean logits: %w", err)
	}
	a.targets = grow(a.targets, n*k)
	for i := range n {
		vec.Softmax(a.logits[i*k:(i+1)*k], a.targets[i*k:(i+1)*k])
	}
	// The reference does not clip the start; every step projects and clips.
	for i, c := range a.clean {
		xAdv[i] = c + float32(TRADESStartStd*rng.NormFloat64())
	}
	for s := range cfg.Steps {
		if err := a.ascend(m, n, d, cfg.Step, cfg.Eps, xAdv, nil); err != nil {
			return fmt.Errorf("trades attack step %d: %w", s+1, err)
		}
	}
	if cfg.Steps == 0 {
		for i, c := range a.clean {
			xAdv[i] = project(float64(xAdv[i]), c, cfg.Eps)
		}
	}
	return nil
}

// pgd runs the PGD loop with restarts on the targets and reference labels
// already in a.targets and a.ref.
func (a *Attacker) pgd(name string, m Model, x []float32, n, d, k int, cfg PGD, rng *rand.Rand, xAdv []float32) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	restarts := max(cfg.Restarts, 1)
	if rng == nil && cfg.RandomStart && cfg.Eps > 0 {
		return fmt.Errorf("%s: rng is nil but the random start needs one", name)
	}
	if err := a.prepare(name, x, n, d, k, xAdv); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	size := n * d
	if restarts > 1 {
		a.best = grow(a.best, size)
		a.bestLoss = grow(a.bestLoss, n)
		a.bestWrong = grow(a.bestWrong, n)
	}
	var active []bool
	if cfg.EarlyStop {
		a.active = grow(a.active, n)
		active = a.active
	}
	for r := range restarts {
		a.start(cfg, d, rng, xAdv)
		for s := range cfg.Steps {
			if active != nil {
				stillCorrect, err := a.markActive(m, n, k, xAdv, active)
				if err != nil {
					return fmt.Errorf("%s restart %d step %d: %w", name, r+1, s+1, err)
				}
				if !stillCorrect {
					break
				}
			}
			ascend := a.ascend
			if cfg.Norm == L2 {
				ascend = a.ascendL2
			}
			if err := ascend(m, n, d, cfg.Step, cfg.Eps, xAdv, active); err != nil {
				return fmt.Errorf("%s restart %d step %d: %w", name, r+1, s+1, err)
			}
		}
		if restarts > 1 {
			if err := a.keepBest(m, n, d, k, r == 0, xAdv); err != nil {
				return fmt.Errorf("%s restart %d: %w", name, r+1, err)
			}
		}
	}
	if restarts > 1 {
		copy(xAdv, a.best[:size])
	}
	return nil
}

// prepare checks xAdv and the clean inputs and sizes the scratch buffers
// shared by all attacks.
func (a *Attacker) prepare(name string, x []float32, n, d, k int, xAdv []float32) error {
	if len(xAdv) != n*d {
		return fmt.Errorf("%s: output has %d values, want n*InputSize = %d*%d = %d", name, len(xAdv), n, d, n*d)
	}
	if err := checkUnitBox(x, d); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	a.clean = grow(a.clean, n*d)
	copy(a.clean, x)
	a.grad = grow(a.grad, n*d)
	a.logits = grow(a.logits, n*k)
	return nil
}

// start sets xAdv to the starting point of one PGD run.
func (a *Attacker) start(cfg PGD, d int, rng *rand.Rand, xAdv []float32) {
	if !cfg.RandomStart || cfg.Eps == 0 {
		copy(xAdv, a.clean)
		return
	}
	if cfg.Norm == L2 {
		a.startL2(d, cfg.Eps, rng, xAdv)
		return
	}
	for i, c := range a.clean {
		v := float64(c) + cfg.Eps*(2*rng.Float64()-1)
		if v < 0 {
			v = 0
		} else if v > 1 {
			v = 1
		}
		xAdv[i] = float32(v)
	}
}

// ascend takes one signed-gradient step of the soft cross-entropy to
// a.targets on the samples marked in active (all when active is nil),
// projecting to the eps-ball around a.clean and clipping to [0,1].
func (a *Attacker) ascend(m Model, n, d int, step, eps float64, xAdv []float32, active []bool) error {
	if _, err := m.InputGrad(xAdv, n, a.targets, a.grad); err != nil {
		return fmt.Errorf("input gradient of %d samples: %w", n, err)
	}
	for i := range n {
		if active != nil && !active[i] {
			continue
		}
		lo, hi := i*d, (i+1)*d
		if j := elementwise.SignStep(xAdv[lo:hi], a.grad[lo:hi], a.clean[lo:hi], step, eps); j >= 0 {
			return fmt.Errorf("%w at sample %d, feature %d", ErrNaNGradient, i, j)
		}
	}
	return nil
}

// markActive sets active[i] to whether the model still predicts the
// reference label of sample i at xAdv, and reports whether any is.
func (a *Attacker) markActive(m Model, n, k int, xAdv []float32, active []bool) (bool, error) {
	if err := m.Logits(xAdv, n, a.logits); err != nil {
		return false, fmt.Errorf("logits of %d samples: %w", n, err)
	}
	anyActive := false
	for i := range n {
		active[i] = vec.Argmax(a.logits[i*k:(i+1)*k]) == int(a.ref[i])
		anyActive = anyActive || active[i]
	}
	return anyActive, nil
}

// keepBest copies into a.best the samples of xAdv that beat the best so far:
// misclassified beats correct, then higher loss wins. first initialises.
func (a *Attacker) keepBest(m Model, n, d, k int, first bool, xAdv []float32) error {
	if err := m.Logits(xAdv, n, a.logits); err != nil {
		return fmt.Errorf("logits of %d samples: %w", n, err)
	}
	for i := range n {
		z := a.logits[i*k : (i+1)*k]
		loss := vec.SoftCE(z, a.targets[i*k:(i+1)*k])
		wrong := vec.Argmax(z) != int(a.ref[i])
		better := first ||
			(wrong && !a.bestWrong[i]) ||
			(wrong == a.bestWrong[i] && loss > a.bestLoss[i])
		if better {
			a.bestLoss[i], a.bestWrong[i] = loss, wrong
			copy(a.best[i*d:(i+1)*d], xAdv[i*d:(i+1)*d])
		}
	}
	return nil
}

// pgd is the one-step PGD with random start that FGSM is.
func (c FGSM) pgd() PGD {
	step := c.Step
	if step == 0 {
		step = 1.25 * c.Eps
	}
	return PGD{Eps: c.Eps, Step: step, Steps: 1, RandomStart: true, Norm: c.Norm}
}

// Attacker crafts adversarial examples (PGD and FGSM with random start under
// L∞ or L2, the L∞ TRADES KL attack) against a Model. Inputs live in [0,1];
// every iterate is projected to the eps-ball around the clean input and
// clipped to [0,1].
//
// It holds the scratch buffers the attacks need and reuses them across calls,
// so attacking batch after batch during training allocates nothing once the
// largest batch has been seen. The zero value is ready to use. An Attacker is
// not safe for concurrent use: give each goroutine its own.
type Attacker struct {
	clean     []float32 // copy of the clean inputs, so xAdv may alias x
	targets   []float32 // n*K soft targets of the maximised cross-entropy
	ref       []int32   // n reference labels (argmax of the targets) for success
	grad      []float32 // n*D input gradient
	logits    []float32 // n*K logits
	best      []float32 // n*D best iterate over restarts
	bestLoss  []float64 // n loss of the best iterate
	bestWrong []bool    // n whether the best iterate is misclassified
	active    []bool    // n samples still updated (early stop)
}
