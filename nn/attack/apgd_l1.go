package attack

import (
	"fmt"
	"math"
)

// l1-APGD (Croce & Hein 2021, "Mind the box: l1-APGD for sparse adversarial
// attacks on image classifiers"), as AutoAttack's "standard" version runs it
// for L1 (autopgd_base.py with use_largereps):
//
//   - the radius grows and shrinks over three stages: 3·eps for 30% of the
//     iterations, 2·eps for 30%, eps for the remaining 40%; the first stage
//     starts at x + g (g ~ N(0, I)) projected onto the 3·eps ball ∩ box, each
//     later stage at the previous stage's highest-loss point projected onto
//     its own ball. Only the last stage, at eps, decides which points are
//     broken. (With fewer than 3 iterations one stage at eps runs them.)
//   - a step moves the k coordinates with the largest |∇| (k the current
//     sparsity), each by η·sign(∇_j)/k, then projects exactly onto the L1
//     ball ∩ [0,1] (projectL1Box); no momentum.
//   - every max(⌊0.04·N⌋, 1) iterations (N the stage's iterations) k is set
//     to ‖x_best − x‖₀/1.5; if that sparsity fell below 0.95 of its value at
//     the last check, η goes back to its maximum eps (alpha 1) and the
//     iterate restarts from the best point, else η is divided by 1.5, kept
//     within [eps/10, eps]. The start sets k = ‖x_start − x‖₀/1.5.

// l1Schedule returns the radius factors and iterations of the stages for
// steps iterations.
func l1Schedule(steps int) (factors []float64, iters []int) {
	first := int(math.Ceil(0.3 * float64(steps)))
	if last := steps - 2*first; last >= 1 {
		return []float64{3, 2, 1}, []int{first, first, last}
	}
	return []float64{1}, []int{steps}
}

// singleL1 runs l1-APGD once on the na samples in r.x0, leaving in r.fooled
// which the last stage misclassified at some iterate and in r.xBestAdv the
// last misclassified iterate.
func (r *apgdRun) singleL1(na int) error {
	d, eps := r.d, r.cfg.Eps
	factors, iters := l1Schedule(r.cfg.Steps)
	for i := range na {
		x0 := r.x0[i*d : (i+1)*d]
		for j := range r.row {
			r.row[j] = r.rng.NormFloat64()
		}
		r.events = projectL1Box(x0, r.row, factors[0]*eps, r.events)
		storeRow(L1, x0, r.row, factors[0]*eps, r.xa[i*d:(i+1)*d])
	}
	for stage, f := range factors {
		radius := f * eps
		if stage > 0 {
			copy(r.xa, r.xBest[:na*d])
			for i := range na {
				lo, hi := i*d, (i+1)*d
				for j := range r.row {
					r.row[j] = float64(r.xa[lo+j]) - float64(r.x0[lo+j])
				}
				r.events = projectL1Box(r.x0[lo:hi], r.row, radius, r.events)
				storeRow(L1, r.x0[lo:hi], r.row, radius, r.xa[lo:hi])
			}
		}
		if err := r.l1Stage(na, radius, iters[stage]); err != nil {
			return fmt.Errorf("l1 stage %d (radius %g): %w", stage+1, radius, err)
		}
	}
	return nil
}

// l1Stage runs iters l1-APGD iterations at radius eps from r.xa.
func (r *apgdRun) l1Stage(na int, eps float64, iters int) error {
	d := r.d
	if err := r.evaluate(na); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	copy(r.xBest, r.xa)
	copy(r.xBestAdv, r.xa)
	copy(r.gradBest, r.grad)
	r.l1StepSizeMax = eps
	for i := range na {
		r.fooled[i] = r.wrong(i)
		r.lossBest[i] = r.lossLast[i]
		r.step[i] = eps
		sp := l0Distance(r.xa[i*d:(i+1)*d], r.x0[i*d:(i+1)*d])
		r.topk[i] = sp / float64(d) / 1.5
		r.spOld[i] = sp
	}
	window := max(int(0.04*float64(iters)), 1)
	counter := 0
	for it := range iters {
		for i := range na {
			r.moveSampleL1(i, eps)
		}
		if err := r.evaluate(na); err != nil {
			return fmt.Errorf("iteration %d: %w", it+1, err)
		}
		for i := range na {
			lo, hi := i*d, (i+1)*d
			if r.wrong(i) {
				r.fooled[i] = true
				copy(r.xBestAdv[lo:hi], r.xa[lo:hi])
			}
			if r.lossLast[i] > r.lossBest[i] {
				r.lossBest[i] = r.lossLast[i]
				copy(r.xBest[lo:hi], r.xa[lo:hi])
				copy(r.gradBest[lo:hi], r.grad[lo:hi])
			}
		}
		if counter++; counter == window {
			r.l1Checkpoint(na)
			counter = 0
		}
	}
	return nil
}

// l1Checkpoint adapts each sample's sparsity and step size (see the file
// comment).
func (r *apgdRun) l1Checkpoint(na int) {
	d, hiStep := r.d, r.l1StepSizeMax
	for i := range na {
		lo, hi := i*d, (i+1)*d
		sp := l0Distance(r.xBest[lo:hi], r.x0[lo:hi])
		sparser := r.spOld[i] > 0 && sp/r.spOld[i] < 0.95
		r.topk[i] = sp / float64(d) / 1.5
		if sparser {
			r.step[i] = hiStep
		} else {
			r.step[i] /= 1.5
		}
		r.step[i] = min(max(r.step[i], hiStep/10), hiStep)
		r.spOld[i] = sp
		if sparser {
			copy(r.xa[lo:hi], r.xBest[lo:hi])
			copy(r.grad[lo:hi], r.gradBest[lo:hi])
		}
	}
}

// moveSampleL1 takes sample i's sparse step at radius eps: the coordinates
// with |∇_j| at or above the (1 − topk) quantile move by η·sign(∇_j)/count,
// then the perturbation is projected onto the L1 ball ∩ [0,1].
func (r *apgdRun) moveSampleL1(i int, eps float64) {
	d := r.d
	lo, hi := i*d, (i+1)*d
	xa, x0, g := r.xa[lo:hi], r.x0[lo:hi], r.grad[lo:hi]
	for j, v := range g {
		r.absGrad[j] = math.Abs(float64(v))
	}
	rank := int(min(max((1-r.topk[i])*float64(d), 0), float64(d-1)))
	threshold := kthSmallest(r.absGrad, rank)
	count := 0
	for _, v := range g {
		if v != 0 && math.Abs(float64(v)) >= threshold {
			count++
		}
	}
	move := r.step[i] / (float64(count) + 1e-10)
	for j, v := range xa {
		t := float64(v) - float64(x0[j])
		if gj := float64(g[j]); gj != 0 && math.Abs(gj) >= threshold {
			t += math.Copysign(move, gj)
		}
		r.row[j] = t
	}
	r.events = projectL1Box(x0, r.row, eps, r.events)
	storeRow(L1, x0, r.row, eps, xa)
}

// l0Distance counts the coordinates where a and b differ.
func l0Distance(a, b []float32) float64 {
	n := 0
	for j, v := range a {
		if v != b[j] {
			n++
		}
	}
	return float64(n)
}

// kthSmallest returns the element of rank k (0-based, ascending) of v,
// reordering v: quickselect with a median-of-three pivot, expected O(len v).
func kthSmallest(v []float64, k int) float64 {
	s := v
	for len(s) > 1 {
		p := medianOfThree(s[0], s[len(s)/2], s[len(s)-1])
		lo, hi, j := 0, len(s), 0
		for j < hi {
			switch {
			case s[j] < p:
				s[lo], s[j] = s[j], s[lo]
				lo++
				j++
			case s[j] > p:
				hi--
				s[hi], s[j] = s[j], s[hi]
			default:
				j++
			}
		}
		switch {
		case k < lo:
			s = s[:lo]
		case k < hi:
			return p
		default:
			k -= hi
			s = s[hi:]
		}
	}
	return s[0]
}
