package attack

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/sglr-pipe/sglr-pipe/nn/internal/vec"
	"github.com/sglr-pipe/sglr-pipe/nn/model"
)

// APGDLoss selects the loss Auto-PGD maximises.
type APGDLoss int

const (
	// APGDCE is the untargeted cross-entropy of the true label (APGD-CE).
	APGDCE APGDLoss = iota
	// APGDDLR is the untargeted Difference of Logits Ratio loss (DLRLoss).
	APGDDLR
	// APGDTargetedDLR is the targeted DLR loss (DLRTargetedLoss), run once
	// per target class (APGD-T).
	APGDTargetedDLR
)

// String names the loss as AutoAttack does.
func (l APGDLoss) String() string {
	switch l {
	case APGDCE:
		return "ce"
	case APGDDLR:
		return "dlr"
	case APGDTargetedDLR:
		return "dlr-targeted"
	default:
		return fmt.Sprintf("apgd-loss(%d)", int(l))
	}
}

// APGD configures Auto-PGD (Croce & Hein 2020, "Reliable evaluation of
// adversarial robustness with an ensemble of diverse parameter-free
// attacks", Algorithm 1, following the reference autopgd_base.py) under an
// L∞ or L2 budget, and l1-APGD under an L1 budget (see apgd_l1.go):
//
//   - start at x + eps·t/‖t‖∞, t uniform in [−1,1]^D (L2: x + eps·g/‖g‖₂,
//     g ~ N(0, I)), clipped to [0,1];
//   - step size η = 2·eps; each iteration z = P(x_k + η·sign(∇f)) (L2:
//     P(x_k + η·∇f/‖∇f‖₂)), then x_{k+1} = P(x_k + α(z − x_k) +
//     (1−α)(x_k − x_{k−1})), α = 0.75 (1 at the first step), P the
//     projection to the eps-ball ∩ [0,1] (L2: onto the ball, then clipped);
//   - checkpoints after windows of 0.22·N iterations, each next window 0.03·N
//     shorter, at least 0.06·N; at a checkpoint η is halved and the iterate
//     restarts from the best point (with its gradient) when the loss went up
//     in at most ρ = 0.75 of the window's steps, or when η was not halved at
//     the previous checkpoint and the best loss has not improved since.
//
// Every restart and every target runs only on the points not yet broken; a
// point's result is its last misclassified iterate.
type APGD struct {
	Eps      float64  // radius in Norm
	Steps    int      // iterations N per run (100 in AutoAttack)
	Restarts int      // runs per target; 0 counts as 1
	Loss     APGDLoss // APGDCE, APGDDLR or APGDTargetedDLR
	// Targets is the number of target classes of APGDTargetedDLR: the classes
	// with the 2nd, 3rd, … largest clean logit (9 in AutoAttack; capped at
	// K−1). Ignored by the untargeted losses.
	Targets int
	// Rho is the oscillation threshold ρ; 0 means the paper's 0.75.
	Rho float64
	// Norm is the threat model: Linf (the zero value), L2 or L1.
	Norm Norm
}

// Validate reports whether the configuration is usable.
func (c APGD) Validate() error {
	if err := checkEps("apgd", c.Eps); err != nil {
		return err
	}
	if err := checkNorm("apgd", c.Norm, Linf, L2, L1); err != nil {
		return err
	}
	if c.Steps < 1 {
		return fmt.Errorf("apgd: steps %d must be >= 1", c.Steps)
	}
	if c.Restarts < 0 {
		return fmt.Errorf("apgd: restarts %d must be >= 0", c.Restarts)
	}
	switch c.Loss {
	case APGDCE, APGDDLR:
	case APGDTargetedDLR:
		if c.Targets < 1 {
			return fmt.Errorf("apgd: targeted DLR needs targets >= 1, got %d", c.Targets)
		}
	default:
		return fmt.Errorf("apgd: unknown loss %d", int(c.Loss))
	}
	if !(c.Rho >= 0 && c.Rho < 1) {
		return fmt.Errorf("apgd: rho %v must be in [0,1)", c.Rho)
	}
	return nil
}

// Run writes into xAdv (n*InputSize, may alias x) adversarial examples for
// the n clean inputs x: the attack's misclassified point for every sample it
// breaks, the clean input for the others. rng draws the random starts and
// must not be nil; the result is deterministic for a given rng state.
func (c APGD) Run(m GradModel, x []float32, labels []int32, n int, rng *rand.Rand, xAdv []float32) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if rng == nil {
		return errors.New("apgd: rng is nil; the random start needs one")
	}
	d, k, err := checkEvalInputs("apgd", m, x, labels, n, xAdv)
	if err != nil {
		return err
	}
	clean := append([]float32(nil), x...)
	copy(xAdv, clean)
	logits := make([]float32, n*k)
	robust, err := correctIndices(m, clean, labels, n, k, logits)
	if err != nil {
		return fmt.Errorf("apgd: %w", err)
	}
	targetRanks := []int{0}
	if c.Loss == APGDTargetedDLR {
		targetRanks = targetRanks[:0]
		for r := 1; r <= min(c.Targets, k-1); r++ {
			targetRanks = append(targetRanks, r)
		}
	}
	run := &apgdRun{cfg: c, m: m, d: d, k: k, rng: rng}
	order := make([]int, k)
	for _, rank := range targetRanks {
		for restart := range max(c.Restarts, 1) {
			if len(robust) == 0 {
				return nil
			}
			na := len(robust)
			run.size(na)
			model.Gather(clean, d, robust, run.x0)
			model.GatherLabels(labels, robust, run.y)
			for j, i := range robust {
				topClasses(logits[i*k:(i+1)*k], order)
				run.target[j] = int32(order[rank])
			}
			if err := run.single(na); err != nil {
				return fmt.Errorf("apgd-%s target rank %d restart %d: %w", c.Loss, rank+1, restart+1, err)
			}
			scatterRows(xAdv, run.xBestAdv, d, robust, run.fooled)
			kept := robust[:0]
			for j, i := range robust {
				if !run.fooled[j] {
					kept = append(kept, i)
				}
			}
			robust = kept
		}
	}
	return nil
}

// DLRLoss is the untargeted Difference of Logits Ratio loss of Croce & Hein
// (2020) for each of the len(labels) rows of logits (k per row):
//
//	DLR(z, y) = −(z_y − max_{i≠y} z_i) / (z_π1 − z_π3 + 1e-12)
//
// with π the classes sorted by decreasing logit. Shifting the logits by a
// constant or scaling them by a positive factor leaves it unchanged (up to
// the 1e-12), which is why APGD uses it against models with saturated or
// rescaled logits. With fewer than 3 classes z_π3 is the smallest logit.
func DLRLoss(logits []float32, labels []int32, k int) ([]float64, error) {
	if err := checkLossRows("dlr loss", logits, labels, k); err != nil {
		return nil, err
	}
	out := make([]float64, len(labels))
	up := make([]float32, k)
	order := make([]int, k)
	for i, y := range labels {
		out[i] = dlrRow(logits[i*k:(i+1)*k], int(y), up, order)
	}
	return out, nil
}

// DLRTargetedLoss is the targeted DLR loss maximised by APGD-T, for each row:
//
//	DLR_t(z, y) = −(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2 + 1e-12)
//
// t the row's target class. Like DLRLoss it is invariant to shifting and
// positive scaling of the logits. With fewer than 4 (3) classes z_π4 (z_π3)
// is the smallest logit.
func DLRTargetedLoss(logits []float32, labels, targets []int32, k int) ([]float64, error) {
	if err := checkLossRows("targeted dlr loss", logits, labels, k); err != nil {
		return nil, err
	}
	if len(targets) != len(labels) {
		return nil, fmt.Errorf("targeted dlr loss: %d targets for %d labels", len(targets), len(labels))
	}
	for i, t := range targets {
		if t < 0 || int(t) >= k {
			return nil, fmt.Errorf("targeted dlr loss: target %d of row %d is outside [0,%d)", t, i, k)
		}
	}
	out := make([]float64, len(labels))
	up := make([]float32, k)
	order := make([]int, k)
	for i, y := range labels {
		out[i] = dlrTargetedRow(logits[i*k:(i+1)*k], int(y), int(targets[i]), up, order)
	}
	return out, nil
}

// apgdRun holds one APGD run's state for na active samples, reused across
// restarts and targets.
type apgdRun struct {
	cfg APGD
	m   GradModel
	d   int
	k   int
	rng *rand.Rand

	x0, xa, xOld, xBest, xBestAdv []float32 // na*D
	grad, gradBest                []float32 // na*D
	y, target                     []int32   // na
	step, lossBest, lossLast      []float64 // na
	prevLoss, lossBestLastCheck   []float64 // na
	increases                     []int     // na
	reducedLastCheck, fooled      []bool    // na
	order                         []int     // K
	buf                           evalBuffers

	// L2 and L1 scratch: one float64 row and the L1 projection's events,
	// and l1-APGD's per-sample sparsity state (see apgd_l1.go).
	row, absGrad  []float64 // D
	events        []l1Event
	topk, spOld   []float64 // na
	l1StepSizeMax float64   // alpha·eps of the current l1 stage
}

// size grows the run's buffers for na samples.
func (r *apgdRun) size(na int) {
	nd := na * r.d
	r.x0, r.xa, r.xOld = grow(r.x0, nd), grow(r.xa, nd), grow(r.xOld, nd)
	r.xBest, r.xBestAdv = grow(r.xBest, nd), grow(r.xBestAdv, nd)
	r.grad, r.gradBest = grow(r.grad, nd), grow(r.gradBest, nd)
	r.y, r.target = grow(r.y, na), grow(r.target, na)
	r.step, r.lossBest, r.lossLast = grow(r.step, na), grow(r.lossBest, na), grow(r.lossLast, na)
	r.prevLoss, r.lossBestLastCheck = grow(r.prevLoss, na), grow(r.lossBestLastCheck, na)
	r.increases = grow(r.increases, na)
	r.reducedLastCheck, r.fooled = grow(r.reducedLastCheck, na), grow(r.fooled, na)
	r.order = grow(r.order, r.k)
	r.buf.size(na, r.d, r.k)
	if r.cfg.Norm != Linf {
		r.row = grow(r.row, r.d)
		r.absGrad = grow(r.absGrad, r.d)
		r.topk, r.spOld = grow(r.topk, na), grow(r.spOld, na)
	}
}

// single runs APGD once on the na samples in r.x0 (labels r.y, targets
// r.target), leaving in r.fooled which were misclassified at some iterate
// and in r.xBestAdv the last misclassified iterate.
func (r *apgdRun) single(na int) error {
	c, d := r.cfg, r.d
	if c.Norm == L1 {
		return r.singleL1(na)
	}
	rho := c.Rho
	if rho == 0 {
		rho = 0.75
	}
	checkpoints := apgdCheckpoints(c.Steps)
	move := r.moveSample
	if c.Norm == L2 {
		r.startL2(na)
		move = r.moveSampleL2
	} else {
		uniformLinfStart(r.x0, r.xa, d, c.Eps, r.rng)
	}
	if err := r.evaluate(na); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	copy(r.xBest, r.xa)
	copy(r.xBestAdv, r.xa)
	copy(r.gradBest, r.grad)
	copy(r.xOld, r.xa)
	for i := range na {
		r.fooled[i] = r.wrong(i)
		r.lossBest[i] = r.lossLast[i]
		r.prevLoss[i] = r.lossLast[i]
		r.lossBestLastCheck[i] = r.lossLast[i]
		r.reducedLastCheck[i] = true
		r.increases[i] = 0
		r.step[i] = 2 * c.Eps
	}
	next, window := 0, checkpoints[0]
	for it := range c.Steps {
		momentum := 0.75
		if it == 0 {
			momentum = 1
		}
		for i := range na {
			move(i, momentum)
		}
		if err := r.evaluate(na); err != nil {
			return fmt.Errorf("iteration %d: %w", it+1, err)
		}
		for i := range na {
			if r.wrong(i) {
				r.fooled[i] = true
				copy(r.xBestAdv[i*d:(i+1)*d], r.xa[i*d:(i+1)*d])
			}
			if r.lossLast[i] > r.prevLoss[i] {
				r.increases[i]++
			}
			r.prevLoss[i] = r.lossLast[i]
			if r.lossLast[i] > r.lossBest[i] {
				r.lossBest[i] = r.lossLast[i]
				copy(r.xBest[i*d:(i+1)*d], r.xa[i*d:(i+1)*d])
				copy(r.gradBest[i*d:(i+1)*d], r.grad[i*d:(i+1)*d])
			}
		}
		if next >= len(checkpoints) || it+1 != checkpoints[next] {
			continue
		}
		for i := range na {
			oscillating := float64(r.increases[i]) <= rho*float64(window)
			stalled := !r.reducedLastCheck[i] && r.lossBestLastCheck[i] >= r.lossBest[i]
			reduce := oscillating || stalled
			r.reducedLastCheck[i] = reduce
			r.lossBestLastCheck[i] = r.lossBest[i]
			r.increases[i] = 0
			if reduce {
				r.step[i] /= 2
				copy(r.xa[i*d:(i+1)*d], r.xBest[i*d:(i+1)*d])
				copy(r.grad[i*d:(i+1)*d], r.gradBest[i*d:(i+1)*d])
			}
		}
		next++
		if next < len(checkpoints) {
			window = checkpoints[next] - checkpoints[next-1]
		}
	}
	return nil
}

// apgdCheckpoints returns the iteration counts after which APGD checks its
// step size, for steps iterations: windows of 0.22·N iterations, each
// 0.03·N shorter than the last, at least 0.06·N (integer parts, at least 1,
// as in the reference), i.e. p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06)
// with p_0 = 0, p_1 = 0.22.
func apgdCheckpoints(steps int) []int {
	window := max(int(0.22*float64(steps)), 1)
	minWindow := max(int(0.06*float64(steps)), 1)
	decrease := max(int(0.03*float64(steps)), 1)
	var out []int
	for at := window; at <= steps; at += window {
		out = append(out, at)
		window = max(window-decrease, minWindow)
	}
	if len(out) == 0 {
		out = append(out, steps+1) // never reached
	}
	return out
}

// moveSample takes sample i's gradient step with momentum, projecting to the
// eps-ball around x0 and [0,1] after the step and after the momentum.
func (r *apgdRun) moveSample(i int, momentum float64) {
	eps, step := r.cfg.Eps, r.step[i]
	for j := i * r.d; j < (i+1)*r.d; j++ {
		cur, c := float64(r.xa[j]), r.x0[j]
		z := cur
		switch g := r.grad[j]; {
		case g > 0:
			z += step
		case g < 0:
			z -= step
		}
		z = float64(project(z, c, eps))
		next := project(cur+momentum*(z-cur)+(1-momentum)*(cur-float64(r.xOld[j])), c, eps)
		r.xOld[j] = r.xa[j]
		r.xa[j] = next
	}
}

// evaluate computes the loss and its input gradient at r.xa into
// r.lossLast and r.grad, keeping the logits in r.buf.logits.
func (r *apgdRun) evaluate(na int) error {
	var loss model.RowLoss
	switch r.cfg.Loss {
	case APGDCE:
		loss = func(i int, z, up []float32) float64 { return ceRow(z, int(r.y[i]), up) }
	case APGDDLR:
		loss = func(i int, z, up []float32) float64 { return dlrRow(z, int(r.y[i]), up, r.order) }
	default:
		loss = func(i int, z, up []float32) float64 {
			return dlrTargetedRow(z, int(r.y[i]), int(r.target[i]), up, r.order)
		}
	}
	if err := r.buf.lossGrad(r.m, r.xa[:na*r.d], na, r.d, r.k, loss); err != nil {
		return err
	}
	copy(r.grad, r.buf.grad)
	copy(r.lossLast, r.buf.loss)
	return nil
}

// wrong reports whether sample i is misclassified at the last evaluation.
func (r *apgdRun) wrong(i int) bool {
	return vec.Argmax(r.buf.logits[i*r.k:(i+1)*r.k]) != int(r.y[i])
}

// ceRow is the cross-entropy −log softmax(z)_y; up receives softmax(z) − e_y.
func ceRow(z []float32, y int, up []float32) float64 {
	lse := vec.LogSumExp(z)
	for j, v := range z {
		up[j] = float32(math.Exp(float64(v) - lse))
	}
	up[y]--
	return lse - float64(z[y])
}

// dlrRow is the DLR loss of one row; up receives its gradient with the
// sorting held fixed, as autograd computes it.
func dlrRow(z []float32, y int, up []float32, order []int) float64 {
	topClasses(z, order)
	k := len(z)
	p1, p3 := order[0], order[min(2, k-1)]
	other := p1
	if p1 == y {
		other = order[min(1, k-1)]
	}
	num := float64(z[y]) - float64(z[other])
	den := float64(z[p1]) - float64(z[p3]) + 1e-12
	clear(up)
	up[y] -= float32(1 / den)
	up[other] += float32(1 / den)
	up[p1] += float32(num / (den * den))
	up[p3] -= float32(num / (den * den))
	return -num / den
}

// dlrTargetedRow is the targeted DLR loss of one row and its gradient.
func dlrTargetedRow(z []float32, y, t int, up []float32, order []int) float64 {
	topClasses(z, order)
	k := len(z)
	p1, p3, p4 := order[0], order[min(2, k-1)], order[min(3, k-1)]
	num := float64(z[y]) - float64(z[t])
	den := float64(z[p1]) - 0.5*(float64(z[p3])+float64(z[p4])) + 1e-12
	clear(up)
	up[y] -= float32(1 / den)
	up[t] += float32(1 / den)
	up[p1] += float32(num / (den * den))
	up[p3] -= float32(0.5 * num / (den * den))
	up[p4] -= float32(0.5 * num / (den * den))
	return -num / den
}

// checkLossRows validates rows of logits against their labels.
func checkLossRows(name string, logits []float32, labels []int32, k int) error {
	if k < 1 {
		return fmt.Errorf("%s: class count %d must be positive", name, k)
	}
	if len(logits) != len(labels)*k {
		return fmt.Errorf("%s: %d logits for %d labels of %d classes, want %d", name, len(logits), len(labels), k, len(labels)*k)
	}
	for i, y := range labels {
		if y < 0 || int(y) >= k {
			return fmt.Errorf("%s: label %d of row %d is outside [0,%d)", name, y, i, k)
		}
	}
	return nil
}
