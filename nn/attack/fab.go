package attack

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"

	"github.com/sglr-pipe/sglr-pipe/nn/internal/vec"
	"github.com/sglr-pipe/sglr-pipe/nn/model"
)

// FAB configures the targeted Fast Adaptive Boundary attack (Croce & Hein
// 2020, "Minimally distorted adversarial examples with a fast adaptive
// boundary attack"; FAB-T of AutoAttack, following the reference
// fab_base.py) under L∞, L2 or L1. For target t, each iteration linearises
// the decision function f = z_t − z_y at the iterate x1, projects both x1
// and the clean point x0 onto the hyperplane {f = 0} within [0,1] with the
// smallest move in the attack's norm (d1, d2; see projectLinfHyperplane,
// projectL2Hyperplane, projectL1Hyperplane), and moves to the biased
// combination
//
//	x1 ← clip((x1 + η·d1)(1−α) + (x0 + η·d2)·α),  α = min(‖d1‖/(‖d1‖+‖d2‖), α_max)
//
// with ‖d1‖, ‖d2‖ in the attack's norm. Whenever x1 is misclassified it is
// recorded if closer to x0 (in that norm) than the best so far, then pulled
// back: x1 ← x0 + β(x1 − x0). Targets are the classes with the 2nd, 3rd, …
// largest clean logit.
type FAB struct {
	Eps      float64 // radius (in Norm) a found point must lie within to count as a success
	Steps    int     // iterations per run (100 in AutoAttack)
	Restarts int     // runs per target, the later ones from a random start; 0 counts as 1
	Targets  int     // target classes (9 in AutoAttack; capped at K−1)
	AlphaMax float64 // α_max; 0 means the reference 0.1
	Eta      float64 // overshoot η; 0 means the reference 1.05
	Beta     float64 // backward step β; 0 means the reference 0.9
	// MinNorm runs every target on every correctly classified point instead of
	// only on those not yet broken within Eps, so the returned distances are
	// the smallest found over all targets (FAB as a minimal-norm attack).
	MinNorm bool
	// Norm is the threat model: Linf (the zero value), L2 or L1.
	Norm Norm
}

// Validate reports whether the configuration is usable.
func (c FAB) Validate() error {
	if err := checkEps("fab", c.Eps); err != nil {
		return err
	}
	if err := checkNorm("fab", c.Norm, Linf, L2, L1); err != nil {
		return err
	}
	if c.Steps < 1 {
		return fmt.Errorf("fab: steps %d must be >= 1", c.Steps)
	}
	if c.Restarts < 0 {
		return fmt.Errorf("fab: restarts %d must be >= 0", c.Restarts)
	}
	if c.Targets < 1 {
		return fmt.Errorf("fab: targets %d must be >= 1", c.Targets)
	}
	if !(c.AlphaMax >= 0 && c.AlphaMax <= 1) {
		return fmt.Errorf("fab: alpha max %v must be in [0,1]", c.AlphaMax)
	}
	if !(c.Eta >= 0) || math.IsInf(c.Eta, 1) {
		return fmt.Errorf("fab: eta %v must be a finite number >= 0", c.Eta)
	}
	if !(c.Beta >= 0 && c.Beta <= 1) {
		return fmt.Errorf("fab: beta %v must be in [0,1]", c.Beta)
	}
	return nil
}

// Run writes into xAdv (may alias x), for every sample broken within Eps,
// its closest misclassified point found, and the clean input for the
// others. It returns per sample the distance (in c.Norm) of the closest
// misclassified point found (0 for points misclassified already, +Inf when
// none was found), whether or not it is within Eps. rng draws the random starts of
// restarts after the first; it may be nil with one restart.
func (c FAB) Run(m GradModel, x []float32, labels []int32, n int, rng *rand.Rand, xAdv []float32) ([]float64, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.Restarts > 1 && rng == nil {
		return nil, errors.New("fab: rng is nil; restarts after the first need one")
	}
	d, k, err := checkEvalInputs("fab", m, x, labels, n, xAdv)
	if err != nil {
		return nil, err
	}
	c.AlphaMax = cmpOr(c.AlphaMax, 0.1)
	c.Eta = cmpOr(c.Eta, 1.05)
	c.Beta = cmpOr(c.Beta, 0.9)
	clean := append([]float32(nil), x...)
	copy(xAdv, clean)
	dist := make([]float64, n)
	logits := make([]float32, n*k)
	robust, err := correctIndices(m, clean, labels, n, k, logits)
	if err != nil {
		return nil, fmt.Errorf("fab: %w", err)
	}
	for _, i := range robust {
		dist[i] = math.Inf(1)
	}
	best := make([]float32, n*d) // closest point found per sample
	run := &fabRun{cfg: c, m: m, d: d, k: k, rng: rng}
	run.margin = run.targetMargin
	order := make([]int, k)
	active := slices.Clone(robust)
	for rank := 1; rank <= min(c.Targets, k-1); rank++ {
		for restart := range max(c.Restarts, 1) {
			if len(active) == 0 {
				break
			}
			na := len(active)
			run.size(na)
			model.Gather(clean, d, active, run.x0)
			model.GatherLabels(labels, active, run.y)
			for j, i := range active {
				topClasses(logits[i*k:(i+1)*k], order)
				run.target[j] = int32(order[rank])
			}
			if err := run.single(na, restart > 0); err != nil {
				return nil, fmt.Errorf("fab target rank %d restart %d: %w", rank+1, restart+1, err)
			}
			kept := active[:0]
			for j, i := range active {
				if run.res[j] < dist[i] {
					dist[i] = run.res[j]
					copy(best[i*d:(i+1)*d], run.adv[j*d:(j+1)*d])
				}
				if c.MinNorm || dist[i] > c.Eps {
					kept = append(kept, i)
				}
			}
			active = kept
		}
	}
	for _, i := range robust {
		if dist[i] <= c.Eps {
			copy(xAdv[i*d:(i+1)*d], best[i*d:(i+1)*d])
		}
	}
	return dist, nil
}

// cmpOr returns v, or def when v is 0.
func cmpOr(v, def float64) float64 {
	if v == 0 {
		return def
	}
	return v
}

// fabRun holds one FAB run's state for na samples.
type fabRun struct {
	cfg FAB
	m   GradModel
	d   int
	k   int
	rng *rand.Rand

	x0, x1, adv, d1, d2 []float32   // na*D
	y, target           []int32     // na
	res                 []float64   // na: distance of adv, +Inf when none
	proj                []roomEntry // per-worker projection scratch
	buf                 evalBuffers
	margin              model.RowLoss // targetMargin, bound once
}

// roomEntry is one coordinate of an L∞ hyperplane projection: how far it
// may move inside [0,1] in the useful direction, and its weight |w_i|.
type roomEntry struct {
	room, weight float64
}

// size grows the run's buffers for na samples.
func (r *fabRun) size(na int) {
	nd := na * r.d
	r.x0, r.x1, r.adv = grow(r.x0, nd), grow(r.x1, nd), grow(r.adv, nd)
	r.d1, r.d2 = grow(r.d1, nd), grow(r.d2, nd)
	r.y, r.target, r.res = grow(r.y, na), grow(r.target, na), grow(r.res, na)
	r.buf.size(na, r.d, r.k)
}

// single runs FAB-T once on the na samples of r.x0 towards r.target.
func (r *fabRun) single(na int, randomStart bool) error {
	c, d, k := r.cfg, r.d, r.k
	copy(r.x1, r.x0)
	if randomStart {
		// The reference starts within half the radius: x0 + eps/2·t/‖t‖
		// (t uniform for L∞, Gaussian for L2 and L1).
		r.randomStart(na)
	}
	copy(r.adv, r.x0)
	for i := range na {
		r.res[i] = math.Inf(1)
	}
	_, fused := r.m.(LossGrader)
	// Whether r.buf.logits and r.buf.grad hold the logits and the gradient
	// of z_t − z_y at r.x1, and whether the last check pulled a sample back.
	logitsAt, gradAt, pulledBack := false, false, true
	for it := range c.Steps {
		if !gradAt {
			if err := r.gradient(na, logitsAt); err != nil {
				return fmt.Errorf("iteration %d: %w", it+1, err)
			}
		}
		if err := r.stepAll(na); err != nil {
			return fmt.Errorf("iteration %d: %w", it+1, err)
		}
		// Check the new iterate. Its logits alone suffice when a sample is
		// pulled back below (the gradient is then taken after the pull), but
		// when none is, the next iteration needs the gradient here too: a
		// LossGrader computes both in one pass. Whether a sample will be
		// pulled back is not known yet; the last check's outcome predicts it
		// (runs of either kind are long). Either choice computes the same
		// values at the same points, so the results do not depend on it.
		if fused && !pulledBack && it+1 < c.Steps {
			if err := r.gradient(na, false); err != nil {
				return fmt.Errorf("iteration %d: %w", it+1, err)
			}
			gradAt = true
		} else {
			if err := r.m.Logits(r.x1, na, r.buf.logits); err != nil {
				return fmt.Errorf("iteration %d: logits: %w", it+1, err)
			}
			gradAt = false
		}
		logitsAt, pulledBack = true, false
		for i := range na {
			if vec.Argmax(r.buf.logits[i*k:(i+1)*k]) == int(r.y[i]) {
				continue
			}
			rows := r.x1[i*d : (i+1)*d]
			base := r.x0[i*d : (i+1)*d]
			t := Distance(c.Norm, rows, base)
			if t < r.res[i] {
				r.res[i] = t
				copy(r.adv[i*d:(i+1)*d], rows)
			}
			for j, v := range rows {
				rows[j] = float32(float64(base[j]) + c.Beta*(float64(v)-float64(base[j])))
			}
			pulledBack = true
		}
		if pulledBack {
			logitsAt, gradAt = false, false
		}
	}
	return nil
}

// gradient writes the logits at r.x1 and the gradient of z_t − z_y there
// into r.buf: one LossGrad pass for a LossGrader, else LogitsVJP after
// Logits (skipped when logitsAt says r.buf.logits hold them already).
func (r *fabRun) gradient(na int, logitsAt bool) error {
	k := r.k
	if lg, ok := r.m.(LossGrader); ok {
		if err := lg.LossGrad(r.x1, na, r.margin, r.buf.logits, r.buf.loss, r.buf.grad); err != nil {
			return fmt.Errorf("loss gradient: %w", err)
		}
		return nil
	}
	if !logitsAt {
		if err := r.m.Logits(r.x1, na, r.buf.logits); err != nil {
			return fmt.Errorf("logits: %w", err)
		}
	}
	clear(r.buf.up)
	for i := range na {
		r.margin(i, r.buf.logits[i*k:(i+1)*k], r.buf.up[i*k:(i+1)*k])
	}
	if err := r.m.LogitsVJP(r.x1, na, r.buf.up, r.buf.grad); err != nil {
		return fmt.Errorf("logits vector-Jacobian product: %w", err)
	}
	return nil
}

// targetMargin is the decision function z_t − z_y of sample i that FAB
// linearises; up receives its gradient e_t − e_y.
func (r *fabRun) targetMargin(i int, z, up []float32) float64 {
	t, y := r.target[i], r.y[i]
	up[t]++
	up[y]--
	return float64(z[t]) - float64(z[y])
}

// stepAll applies the FAB update to the na samples, split over the cores
// (each sample's update depends on that sample only, so the result does not
// depend on the split).
func (r *fabRun) stepAll(na int) error {
	workers := min(runtime.GOMAXPROCS(0), na)
	r.proj = grow(r.proj, workers*r.d)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			scratch := r.proj[w*r.d : (w+1)*r.d : (w+1)*r.d]
			for i := w; i < na; i += workers {
				if err := r.step(i, scratch); err != nil {
					errs[w] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// step moves sample i of r.x1 by the FAB update, using the gradient of
// z_t − z_y in r.buf.grad and the logits in r.buf.logits.
func (r *fabRun) step(i int, scratch []roomEntry) error {
	c, d, k := r.cfg, r.d, r.k
	w := r.buf.grad[i*d : (i+1)*d]
	x1 := r.x1[i*d : (i+1)*d]
	x0 := r.x0[i*d : (i+1)*d]
	z := r.buf.logits[i*k : (i+1)*k]
	f := float64(z[r.target[i]]) - float64(z[r.y[i]])
	// Linearisation at x1: f + w·(x − x1) = 0, i.e. w·x = b.
	b := -f
	for j, v := range x1 {
		if w[j] != w[j] {
			return fmt.Errorf("%w at sample %d, feature %d", ErrNaNGradient, i, j)
		}
		b += float64(w[j]) * float64(v)
	}
	d1, d2 := r.d1[i*d:(i+1)*d], r.d2[i*d:(i+1)*d]
	project := projectLinfHyperplane
	switch c.Norm {
	case L2:
		project = projectL2Hyperplane
	case L1:
		project = projectL1Hyperplane
	}
	a1 := max(project(x1, w, b, d1, scratch), 1e-8)
	a2 := max(project(x0, w, b, d2, scratch), 1e-8)
	alpha := min(max(a1/(a1+a2), 0), c.AlphaMax)
	for j := range x1 {
		v := (float64(x1[j])+c.Eta*float64(d1[j]))*(1-alpha) + (float64(x0[j])+c.Eta*float64(d2[j]))*alpha
		x1[j] = float32(min(max(v, 0), 1))
	}
	return nil
}

// projectLinfHyperplane writes into delta the smallest-L∞ move δ with
// w·(t+δ) = b and t+δ in [0,1], and returns ‖δ‖∞. Every coordinate moves by
// the same λ in the direction that changes w·x towards b, capped by the room
// left inside [0,1]; λ solves Σ|w_i|·min(λ, room_i) = |b − w·t| (see
// hyperplaneLambda). When the box cannot reach the hyperplane, every
// coordinate moves to its bound (the closest reachable point). scratch holds
// len(t) entries.
func projectLinfHyperplane(t, w []float32, b float64, delta []float32, scratch []roomEntry) float64 {
	gap := b
	for j, v := range t {
		gap -= float64(w[j]) * float64(v)
	}
	clear(delta)
	if gap == 0 {
		return 0
	}
	dirSign := 1.0
	if gap < 0 {
		dirSign, gap = -1, -gap
	}
	entries := scratch[:0]
	for j, v := range t {
		if w[j] == 0 {
			continue
		}
		room := float64(v)
		if dirSign*float64(w[j]) > 0 {
			room = 1 - float64(v)
		}
		if room <= 0 { // capped at any λ > 0, adding nothing: leave it out
			continue
		}
		entries = append(entries, roomEntry{room: room, weight: math.Abs(float64(w[j]))})
	}
	lambda := hyperplaneLambda(entries, gap)
	norm := 0.0
	for j, v := range t {
		if w[j] == 0 {
			continue
		}
		up := dirSign*float64(w[j]) > 0 // x_j must increase
		room := float64(v)
		if up {
			room = 1 - float64(v)
		}
		move := min(lambda, room)
		if !up {
			move = -move
		}
		delta[j] = float32(move)
		norm = max(norm, math.Abs(move))
	}
	return norm
}

// hyperplaneLambda returns the λ ≥ 0 with g(λ) = Σ weight_i·min(λ, room_i)
// = gap (gap > 0, weights > 0), or +Inf when g never reaches gap (every
// coordinate capped). g is increasing and piecewise linear with breaks at
// the rooms; instead of sorting the rooms (O(D log D), what the reference
// does), it finds the segment holding λ by quickselect in expected O(D):
// for a pivot room p, g(p) ≥ gap puts λ at or below p, so every entry with
// room ≥ p stays uncapped; otherwise every entry with room ≤ p is capped.
// entries is reordered.
func hyperplaneLambda(entries []roomEntry, gap float64) float64 {
	capped := 0.0    // Σ room·weight of the entries known capped (room < λ)
	uncapped := 0.0  // Σ weight of the entries known uncapped (room ≥ λ)
	s := entries     // entries not classified yet
	for len(s) > 0 { // invariant: every capped room < every room in s ≤ every uncapped room
		p := medianOfThree(s[0].room, s[len(s)/2].room, s[len(s)-1].room)
		// Three-way partition: [0,lo) room < p, [lo,hi) room == p, [hi,len) room > p.
		lo, hi, j := 0, len(s), 0
		lowGain, equalWeight, highWeight := 0.0, 0.0, 0.0
		for j < hi {
			e := s[j]
			switch {
			case e.room < p:
				lowGain += e.room * e.weight
				s[lo], s[j] = s[j], s[lo]
				lo++
				j++
			case e.room > p:
				highWeight += e.weight
				hi--
				s[hi], s[j] = s[j], s[hi]
			default:
				equalWeight += e.weight
				j++
			}
		}
		if capped+lowGain+p*(equalWeight+highWeight+uncapped) >= gap {
			uncapped += equalWeight + highWeight
			s = s[:lo]
		} else {
			capped += lowGain + p*equalWeight
			s = s[hi:]
		}
	}
	if uncapped == 0 {
		return math.Inf(1)
	}
	return (gap - capped) / uncapped
}

// medianOfThree returns the median of a, b and c.
func medianOfThree(a, b, c float64) float64 {
	if a > b {
		a, b = b, a
	}
	if b > c {
		b = c
	}
	return max(a, b)
}
