package attack

import (
	"math"
	"math/rand/v2"
)

// The L2 and L1 hyperplane projections of FAB (fab_projections.py's
// projection_l2 and projection_l1, solved here from their optimality
// conditions), and FAB's random start in each norm. Like
// projectLinfHyperplane, each writes into delta the smallest move δ (in its
// norm) with w·(t+δ) = b and t+δ in [0,1], moving every coordinate to its
// bound when the box cannot reach the hyperplane, and returns ‖δ‖.

// hyperplaneGap returns the signed gap b − w·t and the direction (+1, −1)
// in which w·x must change.
func hyperplaneGap(t, w []float32, b float64) (gap, dirSign float64) {
	gap = b
	for j, v := range t {
		gap -= float64(w[j]) * float64(v)
	}
	dirSign = 1
	if gap < 0 {
		dirSign, gap = -1, -gap
	}
	return gap, dirSign
}

// hyperplaneRoom is how far coordinate j (value v, weight wj ≠ 0) may move
// inside [0,1] in the direction that brings w·x towards b, and whether that
// direction is upwards.
func hyperplaneRoom(v float32, wj, dirSign float64) (room float64, up bool) {
	up = dirSign*wj > 0
	if up {
		return 1 - float64(v), true
	}
	return float64(v), false
}

// projectL2Hyperplane is the L2 projection: minimising ‖δ‖₂² subject to
// w·δ = gap and the box gives δ_j = sign·min(λ|w_j|, room_j) for one λ ≥ 0,
// where Σ|w_j|·min(λ|w_j|, room_j) = Σ w_j²·min(λ, room_j/|w_j|) = gap:
// hyperplaneLambda's equation with rooms room_j/|w_j| and weights w_j².
func projectL2Hyperplane(t, w []float32, b float64, delta []float32, scratch []roomEntry) float64 {
	clear(delta)
	gap, dirSign := hyperplaneGap(t, w, b)
	if gap == 0 {
		return 0
	}
	entries := scratch[:0]
	for j, v := range t {
		if w[j] == 0 {
			continue
		}
		wj := float64(w[j])
		if room, _ := hyperplaneRoom(v, wj, dirSign); room > 0 {
			entries = append(entries, roomEntry{room: room / math.Abs(wj), weight: wj * wj})
		}
	}
	lambda := hyperplaneLambda(entries, gap)
	sq := 0.0
	for j, v := range t {
		if w[j] == 0 {
			continue
		}
		wj := float64(w[j])
		room, up := hyperplaneRoom(v, wj, dirSign)
		move := max(min(lambda*math.Abs(wj), room), 0)
		if !up {
			move = -move
		}
		delta[j] = float32(move)
		sq += move * move
	}
	return math.Sqrt(sq)
}

// projectL1Hyperplane is the L1 projection, a fractional knapsack: moving
// coordinate j by s gains |w_j|·s towards the hyperplane at cost s, so the
// coordinates are filled to their room in decreasing order of |w_j| until
// the gap is covered, the last one partly (l1HyperplaneThreshold finds the
// weight where that happens without sorting; among coordinates of equal
// weight the lower index fills first).
func projectL1Hyperplane(t, w []float32, b float64, delta []float32, scratch []roomEntry) float64 {
	clear(delta)
	gap, dirSign := hyperplaneGap(t, w, b)
	if gap == 0 {
		return 0
	}
	entries := scratch[:0]
	for j, v := range t {
		if w[j] == 0 {
			continue
		}
		if room, _ := hyperplaneRoom(v, float64(w[j]), dirSign); room > 0 {
			entries = append(entries, roomEntry{room: room, weight: math.Abs(float64(w[j]))})
		}
	}
	tau, full := l1HyperplaneThreshold(entries, gap)
	rest := gap - full // gain still needed from the coordinates of weight tau
	norm := 0.0
	for j, v := range t {
		if w[j] == 0 {
			continue
		}
		wt := math.Abs(float64(w[j]))
		room, up := hyperplaneRoom(v, float64(w[j]), dirSign)
		move := 0.0
		switch {
		case room <= 0:
		case tau < 0 || wt > tau:
			move = room
		case wt == tau && rest > 0:
			move = min(room, rest/wt)
			rest -= move * wt
		}
		norm += move
		if !up {
			move = -move
		}
		delta[j] = float32(move)
	}
	return norm
}

// l1HyperplaneThreshold returns the weight tau at which the decreasing-weight
// fill of the entries (gain weight·room each) covers gap, and the gain of the
// entries heavier than tau (all filled); tau < 0 when even every entry
// filled falls short. It quickselects on the weights: with p the pivot, the
// entries heavier than p either cover the gap (tau is among them), or
// together with those of weight p do (tau = p), or they are all filled and
// tau is lighter. entries is reordered.
func l1HyperplaneThreshold(entries []roomEntry, gap float64) (tau, full float64) {
	s := entries
	for len(s) > 0 {
		p := medianOfThree(s[0].weight, s[len(s)/2].weight, s[len(s)-1].weight)
		// Three-way partition: [0,lo) weight > p, [lo,hi) weight == p, [hi,len) weight < p.
		lo, hi, j := 0, len(s), 0
		heavyGain, equalGain := 0.0, 0.0
		for j < hi {
			e := s[j]
			switch {
			case e.weight > p:
				heavyGain += e.weight * e.room
				s[lo], s[j] = s[j], s[lo]
				lo++
				j++
			case e.weight < p:
				hi--
				s[hi], s[j] = s[j], s[hi]
			default:
				equalGain += e.weight * e.room
				j++
			}
		}
		switch {
		case full+heavyGain >= gap:
			s = s[:lo]
		case full+heavyGain+equalGain >= gap:
			return p, full + heavyGain
		default:
			full += heavyGain + equalGain
			s = s[hi:]
		}
	}
	return -1, full
}

// randomStart moves r.x1 to the random start of FAB's restarts after the
// first: x0 + eps/2·t/‖t‖, t uniform in [−1,1]^D for L∞ and Gaussian for
// L2 and L1, clipped to [0,1].
func (r *fabRun) randomStart(na int) {
	d, eps := r.d, r.cfg.Eps
	if r.cfg.Norm == Linf {
		uniformLinfStart(r.x0, r.x1, d, eps/2, r.rng)
		return
	}
	t := make([]float64, d)
	for i := range na {
		fabGaussianStart(r.cfg.Norm, r.x0[i*d:(i+1)*d], r.x1[i*d:(i+1)*d], t, eps/2, r.rng)
	}
}

// fabGaussianStart writes x0 + radius·t/‖t‖_p, t ~ N(0, I), clipped to
// [0,1], into x1 (t is scratch of len(x0)).
func fabGaussianStart(p Norm, x0, x1 []float32, t []float64, radius float64, rng *rand.Rand) {
	gaussianDirection(p, t, rng)
	for j, c := range x0 {
		x1[j] = float32(min(max(float64(c)+radius*t[j], 0), 1))
	}
}
