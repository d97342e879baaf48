package attack

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// The L2 steps of PGD, written over the float32 rows in place (the
// perturbation of each coordinate is recomputed rather than stored), so
// that L2 training allocates nothing per batch, like L∞.

// ascendL2 takes one normalised-gradient step of the soft cross-entropy to
// a.targets on the samples marked in active (all when active is nil):
// x' = x + step·∇/‖∇‖₂ (1e-10 added to the norm, as the reference), the
// perturbation scaled onto the L2 ball of radius eps around a.clean, then
// x' clipped to [0,1].
func (a *Attacker) ascendL2(m Model, n, d int, step, eps float64, xAdv []float32, active []bool) error {
	if _, err := m.InputGrad(xAdv, n, a.targets, a.grad); err != nil {
		return fmt.Errorf("input gradient of %d samples: %w", n, err)
	}
	for i := range n {
		if active != nil && !active[i] {
			continue
		}
		lo, hi := i*d, (i+1)*d
		if err := l2StepRow(xAdv[lo:hi], a.grad[lo:hi], a.clean[lo:hi], step, eps); err != nil {
			return fmt.Errorf("%w at sample %d", err, i)
		}
	}
	return nil
}

// l2StepRow is one PGD-L2 step of the row x (clean row c, gradient g).
func l2StepRow(x, g, c []float32, step, eps float64) error {
	gn := 0.0
	for j, v := range g {
		if v != v {
			return fmt.Errorf("%w at feature %d", ErrNaNGradient, j)
		}
		gn += float64(v) * float64(v)
	}
	scale := step / (math.Sqrt(gn) + 1e-10)
	dn := 0.0
	for j, v := range x {
		t := float64(v) - float64(c[j]) + scale*float64(g[j])
		dn += t * t
	}
	f := 1.0
	if dn = math.Sqrt(dn); dn > eps {
		f = eps / dn
	}
	for j, v := range x {
		cj := float64(c[j])
		t := f * (float64(v) - cj + scale*float64(g[j]))
		x[j] = float32(min(max(cj+t, 0), 1))
	}
	enforceBall(L2, c, x, eps)
	return nil
}

// startL2 writes into xAdv the L2 random start of the robust-overfitting
// reference: x + r·eps·g/‖g‖₂, g ~ N(0, I) and r ~ U(0, 1) per sample,
// clipped to [0,1]. The Gaussian draw is held in xAdv itself.
func (a *Attacker) startL2(d int, eps float64, rng *rand.Rand, xAdv []float32) {
	for lo := 0; lo+d <= len(a.clean); lo += d {
		row, c := xAdv[lo:lo+d], a.clean[lo:lo+d]
		n := 0.0
		for j := range row {
			v := rng.NormFloat64()
			row[j] = float32(v)
			n += float64(row[j]) * float64(row[j])
		}
		r := rng.Float64()
		f := 0.0
		if n > 0 {
			f = r * eps / math.Sqrt(n)
		}
		for j, v := range row {
			row[j] = float32(min(max(float64(c[j])+f*float64(v), 0), 1))
		}
		enforceBall(L2, c, row, eps)
	}
}
