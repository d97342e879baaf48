package attack

import "math"

// The L2 start and step of APGD (autopgd_base.py, norm 'L2').

// startL2 writes into r.xa the L2 start of APGD for the na samples of r.x0:
// x0 + eps·g/‖g‖₂ with g ~ N(0, I), clipped to [0,1].
func (r *apgdRun) startL2(na int) {
	d, eps := r.d, r.cfg.Eps
	for i := range na {
		x0 := r.x0[i*d : (i+1)*d]
		gaussianDirection(L2, r.row, r.rng)
		for j := range r.row {
			r.row[j] *= eps
		}
		clipToBox(x0, r.row)
		storeRow(L2, x0, r.row, eps, r.xa[i*d:(i+1)*d])
	}
}

// moveSampleL2 takes sample i's step with momentum under L2: z = P(x_k +
// η·∇/‖∇‖₂), then x_{k+1} = P(x_k + α(z − x_k) + (1−α)(x_k − x_{k−1})), P
// scaling the perturbation onto the ball of radius eps and clipping to [0,1].
func (r *apgdRun) moveSampleL2(i int, momentum float64) {
	d, eps, step := r.d, r.cfg.Eps, r.step[i]
	lo, hi := i*d, (i+1)*d
	xa, xOld, x0, g := r.xa[lo:hi], r.xOld[lo:hi], r.x0[lo:hi], r.grad[lo:hi]
	gn := 0.0
	for _, v := range g {
		gn += float64(v) * float64(v)
	}
	scale := step / (math.Sqrt(gn) + 1e-12)
	delta := r.row
	for j, v := range xa {
		delta[j] = float64(v) + scale*float64(g[j]) - float64(x0[j])
	}
	projectL2(delta, eps)
	clipToBox(x0, delta)
	for j, v := range xa {
		cur, z := float64(v), float64(x0[j])+delta[j]
		next := cur + momentum*(z-cur) + (1-momentum)*(cur-float64(xOld[j]))
		delta[j] = next - float64(x0[j])
	}
	projectL2(delta, eps)
	clipToBox(x0, delta)
	copy(xOld, xa)
	storeRow(L2, x0, delta, eps, xa)
}
