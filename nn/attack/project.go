package attack

import (
	"math"
	"math/rand/v2"
)

// Projections onto the L2 and L1 threat models intersected with the [0,1]
// box, shared by the L2/L1 versions of the attacks. Perturbations are
// float64 rows δ (one sample, D values) around a clean float32 row x0.
//
//   - L2: δ is scaled onto the ball ‖δ‖₂ ≤ eps, then x0+δ is clipped to
//     [0,1] (what AutoAttack's APGD/Square and the robust-overfitting PGD
//     do). Clipping only moves coordinates towards x0, so the result stays
//     in the ball; it is the exact projection onto the intersection whenever
//     the box does not bind, and a feasible point close to it otherwise.
//   - L1: the exact Euclidean projection onto {‖δ‖₁ ≤ eps} ∩ {0 ≤ x0+δ ≤ 1}
//     (Croce & Hein 2021, "Mind the box", AutoAttack's L1_projection):
//     δ_j ← sign(δ_j)·clip(|δ_j| − λ, 0, u_j), u_j the room left in the
//     box in the direction of δ_j, λ ≥ 0 the smallest threshold that brings
//     the ℓ1 norm within eps. λ is found by quickselect in expected O(D).
//
// Rounding the result to float32 can add up to 2^-24 per coordinate, which
// summed over a dense L1 perturbation may exceed eps; enforceBall shrinks the
// stored row by that bound in that case, so every stored point is in the ball.

// projectL2 scales delta onto the L2 ball of radius eps when it lies outside.
func projectL2(delta []float64, eps float64) {
	n := normOf(L2, delta)
	if n <= eps {
		return
	}
	f := eps / n
	for j := range delta {
		delta[j] *= f
	}
}

// boxRoom is how far coordinate value c in [0,1] may move in the direction
// of the sign of v while staying in [0,1].
func boxRoom(c float32, v float64) float64 {
	if v > 0 {
		return 1 - float64(c)
	}
	return float64(c)
}

// clipToBox replaces delta by the perturbation of the nearest point of
// [0,1]^D to x0+delta: each coordinate capped at its room.
func clipToBox(x0 []float32, delta []float64) {
	for j, v := range delta {
		delta[j] = math.Copysign(min(math.Abs(v), boxRoom(x0[j], v)), v)
	}
}

// l1Event is a breakpoint of the projection's ℓ1 mass F(λ) = Σ_e s_e·(b_e − λ)₊:
// each coordinate j contributes clip(|δ_j| − λ, 0, u_j) = (|δ_j| − λ)₊ −
// (|δ_j| − u_j − λ)₊, an event at b = |δ_j| with s = +1 and one at
// |δ_j| − u_j with s = −1.
type l1Event struct {
	b, s float64
}

// projectL1Box replaces delta by its Euclidean projection onto the L1 ball
// of radius eps intersected with the box around x0 (see the file comment).
// ev is scratch (grown as needed, returned for reuse).
func projectL1Box(x0 []float32, delta []float64, eps float64, ev []l1Event) []l1Event {
	ev = ev[:0]
	total := 0.0
	for j, v := range delta {
		a, room := math.Abs(v), boxRoom(x0[j], v)
		if c := min(a, room); c > 0 {
			total += c
			ev = append(ev, l1Event{b: a, s: 1})
			if a > room {
				ev = append(ev, l1Event{b: a - room, s: -1})
			}
		}
	}
	lambda := 0.0
	if total > eps {
		lambda = l1Lambda(ev, eps)
	}
	for j, v := range delta {
		a, room := math.Abs(v), boxRoom(x0[j], v)
		delta[j] = math.Copysign(min(max(a-lambda, 0), room), v)
	}
	return ev
}

// l1Lambda returns the λ > 0 with F(λ) = Σ_e s_e·(b_e − λ)₊ = eps, given
// F(0) > eps (F is non-increasing). F at a pivot p depends only on the
// events above p, so a quickselect over the breakpoints finds the segment
// holding λ: F(p) > eps puts λ above p (the events at or below p add nothing
// there); otherwise λ ≤ p and the events at or above p add b − λ. events
// is reordered.
func l1Lambda(events []l1Event, eps float64) float64 {
	accB, accS := 0.0, 0.0 // Σ s·b and Σ s of the events known to lie at or above λ
	lower := 0.0           // λ ≥ lower
	s := events
	for len(s) > 0 {
		p := medianOfThree(s[0].b, s[len(s)/2].b, s[len(s)-1].b)
		lo, hi, j := 0, len(s), 0
		var highB, highS, eqB, eqS float64
		for j < hi {
			e := s[j]
			switch {
			case e.b < p:
				s[lo], s[j] = s[j], s[lo]
				lo++
				j++
			case e.b > p:
				highB += e.s * e.b
				highS += e.s
				hi--
				s[hi], s[j] = s[j], s[hi]
			default:
				eqB += e.s * e.b
				eqS += e.s
				j++
			}
		}
		if accB+highB-p*(accS+highS) > eps {
			lower = p
			s = s[hi:]
		} else {
			accB += highB + eqB
			accS += highS + eqS
			s = s[:lo]
		}
	}
	if accS <= 0 {
		return lower
	}
	return max((accB-eps)/accS, lower)
}

// enforceBall makes sure the stored row out (float32, in [0,1]) lies within
// eps of x0 in norm p. When rounding pushed it out, the perturbation is
// scaled to the radius eps − b, b the largest norm the float32 rounding of
// its nonzero coordinates can add (2^-24 each: L∞ b = 2^-24, L2 √nz·2^-24,
// L1 nz·2^-24), so the rounded result is inside; if eps ≤ b, out becomes x0.
func enforceBall(p Norm, x0, out []float32, eps float64) {
	dist := Distance(p, out, x0)
	if dist <= eps {
		return
	}
	nz := 0
	for j, v := range out {
		if v != x0[j] {
			nz++
		}
	}
	bound := 0x1p-24
	switch p {
	case L2:
		bound *= math.Sqrt(float64(nz))
	case L1:
		bound *= float64(nz)
	}
	if r := eps - bound; r > 0 {
		f := r / dist
		for j, v := range out {
			c := float64(x0[j])
			out[j] = float32(min(max(c+f*(float64(v)-c), 0), 1))
		}
	}
	if eps-bound <= 0 || Distance(p, out, x0) > eps {
		copy(out, x0)
	}
}

// storeRow writes x0+delta into out as float32, clipped to [0,1], and
// enforces the ball of radius eps in norm p.
func storeRow(p Norm, x0 []float32, delta []float64, eps float64, out []float32) {
	for j, v := range delta {
		out[j] = float32(min(max(float64(x0[j])+v, 0), 1))
	}
	enforceBall(p, x0, out, eps)
}

// gaussianDirection fills t with N(0,1) draws and scales it to norm p of 1
// (a zero draw, of probability 0, stays 0).
func gaussianDirection(p Norm, t []float64, rng *rand.Rand) {
	for j := range t {
		t[j] = rng.NormFloat64()
	}
	if n := normOf(p, t); n > 0 {
		for j := range t {
			t[j] /= n
		}
	}
}
