package attack

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/sglr-pipe/sglr-pipe/nn/model"
)

// The L2 and L1 Square attack (Andriushchenko et al. 2020, AutoAttack's
// square.py, norms 'L2' and 'L1'):
//
//   - start: the image is tiled with s×s squares, s = ⌊min(H,W)/5⌋ (at least
//     1), centred; each square of each channel gets ±η(s), a random sign per
//     sample and channel, where η(s) is the reference's pattern of two
//     opposite bumps (nested rectangles weighted 1/(r+1)² for L2, 1/(r+1)⁴
//     for L1), normalised in the norm and transposed with probability ½.
//     Under L2 the sum is scaled to norm eps and clipped to [0,1]; under L1
//     it is projected onto the L1 ball of radius eps·(1 − 1e-6) ∩ box.
//   - query: a window of side s (from the published p schedule, s ≥ 3 and
//     odd, at most min(H,W)) at a random place, and a second one; per channel
//     the mass of both windows is moved into the first as the normalised old
//     window plus a new ±η(s), with the norm the reference gives it (L2:
//     sqrt(max(eps² − ‖δ‖², 0)/C + ‖δ_windows‖²), L1: (max(eps − ‖δ‖₁, 0)/C +
//     ‖δ_windows‖₁)·C); the second window is zeroed; then the perturbation is
//     rescaled to norm eps and clipped (L2) or projected onto the ball ∩ box
//     (L1). A proposal is kept where the margin went down or became
//     negative. The window places and η(s) are shared by the batch, the signs
//     drawn per sample and channel.
//
// On a flat row (no image grid) the squares are single features.

// runLp is Square.Run's restart loop for L2 and L1 on the correctly
// classified samples robust of clean.
func (c Square) runLp(m GradModel, shape [3]int, clean []float32, labels []int32, robust []int, rng *rand.Rand, xAdv []float32) error {
	d, k := m.InputSize(), m.Classes()
	run := &squareLpRun{norm: c.Norm, eps: c.Eps, m: m, d: d, k: k, c: shape[0], h: shape[1], w: shape[2], rng: rng}
	return squareRestarts(run, c.Restarts, c.Queries, cmpOr(c.PInit, 0.8), d, clean, labels, robust, xAdv)
}

func (r *squareLpRun) load(clean []float32, labels []int32, rows []int) {
	model.Gather(clean, r.d, rows, r.x0)
	model.GatherLabels(labels, rows, r.y)
}

func (r *squareLpRun) found(j int) (bool, []float32) {
	return r.margin[j] <= 0, r.best[j*r.d : (j+1)*r.d]
}

// squareLpRun holds one L2/L1 Square run's state.
type squareLpRun struct {
	norm    Norm
	eps     float64
	m       GradModel
	d, k    int
	c, h, w int
	rng     *rand.Rand

	x0, best, cand []float32 // na*D
	y              []int32   // na
	margin         []float64 // na, best margin
	idx            []int     // samples still robust
	logits         []float32
	delta          []float64 // D
	eta, fresh     []float64 // s*s, C*s*s
	winNorm, both  []float64 // C
	events         []l1Event
}

// size grows the buffers for na samples.
func (r *squareLpRun) size(na int) {
	nd := na * r.d
	r.x0, r.best, r.cand = grow(r.x0, nd), grow(r.best, nd), grow(r.cand, nd)
	r.y, r.margin = grow(r.y, na), grow(r.margin, na)
	r.logits = grow(r.logits, na*r.k)
	r.delta = grow(r.delta, r.d)
	r.winNorm, r.both = grow(r.winNorm, r.c), grow(r.both, r.c)
}

// single runs the attack on the na samples of r.x0.
func (r *squareLpRun) single(na, queries int, pInit float64) error {
	d := r.d
	r.start(na)
	if err := r.m.Logits(r.best[:na*d], na, r.logits); err != nil {
		return fmt.Errorf("start: logits: %w", err)
	}
	r.idx = r.idx[:0]
	for i := range na {
		r.margin[i] = marginRow(r.logits[i*r.k:(i+1)*r.k], int(r.y[i]))
		if r.margin[i] > 0 {
			r.idx = append(r.idx, i)
		}
	}
	for it := range queries {
		if len(r.idx) == 0 {
			return nil
		}
		p := SquareP(pInit, it, queries)
		s := max(int(math.Round(math.Sqrt(p*float64(r.h*r.w)))), 3)
		if s%2 == 0 {
			s++
		}
		s = min(s, r.h, r.w)
		vh, vw := int(float64(r.h-s)*r.rng.Float64()), int(float64(r.w-s)*r.rng.Float64())
		vh2, vw2 := int(float64(r.h-s)*r.rng.Float64()), int(float64(r.w-s)*r.rng.Float64())
		r.eta = r.etaSquare(s, r.eta)
		for a, i := range r.idx {
			r.propose(i, s, [4]int{vh, vw, vh2, vw2}, r.cand[a*d:(a+1)*d])
		}
		nc := len(r.idx)
		if err := r.m.Logits(r.cand[:nc*d], nc, r.logits[:nc*r.k]); err != nil {
			return fmt.Errorf("query %d: logits of %d samples: %w", it+1, nc, err)
		}
		kept := r.idx[:0]
		for a, i := range r.idx {
			mg := marginRow(r.logits[a*r.k:(a+1)*r.k], int(r.y[i]))
			if mg < r.margin[i] || mg <= 0 {
				r.margin[i] = mg
				copy(r.best[i*d:(i+1)*d], r.cand[a*d:(a+1)*d])
			}
			if r.margin[i] > 0 {
				kept = append(kept, i)
			}
		}
		r.idx = kept
	}
	return nil
}

// start writes the tiled starting points of the na samples into r.best.
func (r *squareLpRun) start(na int) {
	d := r.d
	s := max(min(r.h, r.w)/5, 1)
	nh, nw := r.h/s, r.w/s
	offH, offW := (r.h-nh*s)/2, (r.w-nw*s)/2
	tiles := make([][]float64, nh*nw) // η(s) of each tile, shared by the batch
	for t := range tiles {
		tiles[t] = r.etaSquare(s, nil)
	}
	for i := range na {
		clear(r.delta)
		for t, eta := range tiles {
			top, left := offH+(t/nw)*s, offW+(t%nw)*s
			for ch := range r.c {
				sign := r.sign()
				for a := range s {
					for b := range s {
						r.delta[(ch*r.h+top+a)*r.w+left+b] += sign * eta[a*s+b]
					}
				}
			}
		}
		r.finish(r.x0[i*d:(i+1)*d], r.best[i*d:(i+1)*d])
	}
}

// propose writes into out sample i's proposal for windows of side s at
// win = (top, left) of the first and (top, left) of the second window.
func (r *squareLpRun) propose(i, s int, win [4]int, out []float32) {
	d := r.d
	x0, best := r.x0[i*d:(i+1)*d], r.best[i*d:(i+1)*d]
	for j, v := range best {
		r.delta[j] = float64(v) - float64(x0[j])
	}
	total := normOf(r.norm, r.delta)
	r.fresh = grow(r.fresh, r.c*s*s)
	for ch := range r.c {
		// Norms of the first window and of the union of both windows.
		first, union := 0.0, 0.0
		for a := range s {
			for b := range s {
				first = r.accumulate(first, r.delta[(ch*r.h+win[0]+a)*r.w+win[1]+b])
				row, col := win[2]+a, win[3]+b
				if row < win[0] || row >= win[0]+s || col < win[1] || col >= win[1]+s {
					union = r.accumulate(union, r.delta[(ch*r.h+row)*r.w+col])
				}
			}
		}
		union += first
		r.winNorm[ch], r.both[ch] = r.finishNorm(first), r.finishNorm(union)
		target := math.Sqrt(max(r.eps*r.eps-total*total, 0)/float64(r.c) + r.both[ch]*r.both[ch])
		if r.norm == L1 {
			target = (max(r.eps-total, 0)/float64(r.c) + r.both[ch]) * float64(r.c)
		}
		sign := r.sign()
		fresh := r.fresh[ch*s*s : (ch+1)*s*s]
		for a := range s {
			for b := range s {
				old := r.delta[(ch*r.h+win[0]+a)*r.w+win[1]+b]
				fresh[a*s+b] = sign*r.eta[a*s+b] + old/(1e-12+r.winNorm[ch])
			}
		}
		scale := target / (1e-12 + normOf(r.norm, fresh))
		for j := range fresh {
			fresh[j] *= scale
		}
	}
	for ch := range r.c {
		for a := range s {
			for b := range s {
				r.delta[(ch*r.h+win[2]+a)*r.w+win[3]+b] = 0
			}
		}
		for a := range s {
			for b := range s {
				r.delta[(ch*r.h+win[0]+a)*r.w+win[1]+b] = r.fresh[(ch*s+a)*s+b]
			}
		}
	}
	r.finish(x0, out)
}

// finish maps the perturbation in r.delta into the threat model and stores
// x0 + δ into out: L2 rescales δ to norm eps and clips to [0,1]; L1 projects
// it onto the ball of radius eps·(1 − 1e-6) ∩ box.
func (r *squareLpRun) finish(x0, out []float32) {
	if r.norm == L2 {
		f := r.eps / (normOf(L2, r.delta) + 1e-12)
		for j := range r.delta {
			r.delta[j] *= f
		}
		clipToBox(x0, r.delta)
	} else {
		r.events = projectL1Box(x0, r.delta, r.eps*(1-1e-6), r.events)
	}
	storeRow(r.norm, x0, r.delta, r.eps, out)
}

// accumulate adds v to a running sum of the norm's terms (v² for L2, |v|
// for L1); finishNorm turns the sum into the norm.
func (r *squareLpRun) accumulate(sum, v float64) float64 {
	if r.norm == L2 {
		return sum + v*v
	}
	return sum + math.Abs(v)
}

func (r *squareLpRun) finishNorm(sum float64) float64 {
	if r.norm == L2 {
		return math.Sqrt(sum)
	}
	return sum
}

// sign draws ±1.
func (r *squareLpRun) sign() float64 {
	if r.rng.Float64() < 0.5 {
		return -1
	}
	return 1
}

// etaSquare writes the reference's s×s pattern η(s) into out (grown as
// needed): the top ⌊s/2⌋ rows a positive bump, the rest a negative one,
// normalised in the run's norm, transposed with probability ½.
func (r *squareLpRun) etaSquare(s int, out []float64) []float64 {
	out = grow(out, s*s)
	top := s / 2
	r.etaRect(top, s, out[:top*s])
	r.etaRect(s-top, s, out[top*s:])
	for j := top * s; j < s*s; j++ {
		out[j] = -out[j]
	}
	if n := normOf(r.norm, out); n > 0 {
		for j := range out {
			out[j] /= n
		}
	}
	if r.rng.Float64() > 0.5 {
		for a := range s {
			for b := a + 1; b < s; b++ {
				out[a*s+b], out[b*s+a] = out[b*s+a], out[a*s+b]
			}
		}
	}
	return out
}

// etaRect writes the rows×cols bump of nested centred rectangles, the one
// of half-size k weighted 1/(k+1)² (L2) or 1/(k+1)⁴ (L1), normalised.
func (r *squareLpRun) etaRect(rows, cols int, out []float64) {
	clear(out)
	if rows == 0 || cols == 0 {
		return
	}
	pow := 2.0
	if r.norm == L1 {
		pow = 4
	}
	cr, cc := rows/2, cols/2
	for k := range max(rows/2+1, cols/2+1) {
		v := 1 / math.Pow(float64(k+1), pow)
		for a := max(cr, 0); a < min(cr+2*k+1, rows); a++ {
			for b := max(cc, 0); b < min(cc+2*k+1, cols); b++ {
				out[a*cols+b] += v
			}
		}
		cr--
		cc--
	}
	if n := normOf(r.norm, out); n > 0 {
		for j := range out {
			out[j] /= n
		}
	}
}
