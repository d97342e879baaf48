package attack

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/sglr-pipe/sglr-pipe/nn/model"
)

// Square configures the score-based L∞ Square attack (Andriushchenko et al.
// 2020, following AutoAttack's square.py). It needs only logits: starting
// from vertical stripes x + eps·(±1 per channel and column), each query
// proposes to set a random s×s window of every channel to x ± eps (one sign
// per channel, the same window and signs for the whole batch) and keeps the
// proposal for the samples whose margin z_y − max_{k≠y} z_k went down (or
// became negative). The window covers a fraction p of the pixels, p halving
// on the published schedule (p_init at first, p_init/2 after 10 of 10000
// rescaled iterations, /4 after 50, /8 after 200, /16 after 500, /32 after
// 1000, /64 after 2000, /128 after 4000, /256 after 6000, /512 after 8000).
// Samples stop once misclassified.
//
// The image grid comes from the model's InputShape when it implements
// InputShaper; otherwise the input is a flat row and a window is a run of
// about p·D consecutive features.
//
// Under L2 and L1 (Norm) the proposals are the reference's: see square_lp.go.
type Square struct {
	Eps      float64 // radius in Norm
	Queries  int     // queries per run (5000 in AutoAttack)
	Restarts int     // runs on the points still robust; 0 counts as 1
	PInit    float64 // initial window fraction p; 0 means the published 0.8
	Norm     Norm    // threat model: Linf (the zero value), L2 or L1
}

// Validate reports whether the configuration is usable.
func (c Square) Validate() error {
	if err := checkEps("square", c.Eps); err != nil {
		return err
	}
	if err := checkNorm("square", c.Norm, Linf, L2, L1); err != nil {
		return err
	}
	if c.Queries < 1 {
		return fmt.Errorf("square: queries %d must be >= 1", c.Queries)
	}
	if c.Restarts < 0 {
		return fmt.Errorf("square: restarts %d must be >= 0", c.Restarts)
	}
	if !(c.PInit >= 0 && c.PInit <= 1) {
		return fmt.Errorf("square: p_init %v must be in [0,1]", c.PInit)
	}
	return nil
}

// SquareP is the published window-fraction schedule: p at query it of
// queries (rescaled to a 10000-query budget), from pInit.
func SquareP(pInit float64, it, queries int) float64 {
	it = int(float64(it) / float64(queries) * 10000)
	for _, s := range []struct {
		upTo int
		div  float64
	}{{10, 1}, {50, 2}, {200, 4}, {500, 8}, {1000, 16}, {2000, 32}, {4000, 64}, {6000, 128}, {8000, 256}} {
		if it <= s.upTo {
			return pInit / s.div
		}
	}
	return pInit / 512
}

// Run writes into xAdv (may alias x) the Square attack's misclassified point
// for every sample it breaks and the clean input for the others. rng must
// not be nil.
func (c Square) Run(m GradModel, x []float32, labels []int32, n int, rng *rand.Rand, xAdv []float32) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if rng == nil {
		return errors.New("square: rng is nil; the attack is randomised")
	}
	d, k, err := checkEvalInputs("square", m, x, labels, n, xAdv)
	if err != nil {
		return err
	}
	shape, err := squareShape(m, d)
	if err != nil {
		return err
	}
	pInit := cmpOr(c.PInit, 0.8)
	clean := append([]float32(nil), x...)
	copy(xAdv, clean)
	logits := make([]float32, n*k)
	robust, err := correctIndices(m, clean, labels, n, k, logits)
	if err != nil {
		return fmt.Errorf("square: %w", err)
	}
	if c.Norm != Linf {
		return c.runLp(m, shape, clean, labels, robust, rng, xAdv)
	}
	run := &squareRun{eps: c.Eps, m: m, d: d, k: k, c: shape[0], h: shape[1], w: shape[2], rng: rng}
	return squareRestarts(run, c.Restarts, c.Queries, pInit, d, clean, labels, robust, xAdv)
}

// squareSearch is one Square search over the samples loaded into it: the
// L∞ run (squareRun) or the L2/L1 one (squareLpRun).
type squareSearch interface {
	size(na int)
	load(clean []float32, labels []int32, rows []int)
	single(na, queries int, pInit float64) error
	// found reports whether the search broke loaded sample j, and its point.
	found(j int) (broken bool, point []float32)
}

// squareRestarts is Square's restart loop: each restart searches the
// samples still robust (robust, indices into clean) and writes the points it
// breaks into xAdv.
func squareRestarts(run squareSearch, restarts, queries int, pInit float64, d int, clean []float32, labels []int32, robust []int, xAdv []float32) error {
	for restart := range max(restarts, 1) {
		if len(robust) == 0 {
			return nil
		}
		na := len(robust)
		run.size(na)
		run.load(clean, labels, robust)
		if err := run.single(na, queries, pInit); err != nil {
			return fmt.Errorf("square restart %d: %w", restart+1, err)
		}
		kept := robust[:0]
		for j, i := range robust {
			broken, point := run.found(j)
			if !broken {
				kept = append(kept, i)
				continue
			}
			copy(xAdv[i*d:(i+1)*d], point)
		}
		robust = kept
	}
	return nil
}

func (r *squareRun) load(clean []float32, labels []int32, rows []int) {
	model.Gather(clean, r.d, rows, r.x0)
	model.GatherLabels(labels, rows, r.y)
}

func (r *squareRun) found(j int) (bool, []float32) {
	return r.margin[j] <= 0, r.best[j*r.d : (j+1)*r.d]
}

// squareRun holds one Square run's state.
type squareRun struct {
	eps     float64
	m       GradModel
	d, k    int
	c, h, w int
	rng     *rand.Rand

	x0, best []float32 // na*D
	cand     []float32 // len(idx)*D: the current point of each sample still robust
	y        []int32   // na
	margin   []float64 // na, best margin
	idx      []int     // positions of the samples still robust
	logits   []float32
	signs    []float32 // per channel
}

// size grows the buffers for na samples.
func (r *squareRun) size(na int) {
	nd := na * r.d
	r.x0, r.best, r.cand = grow(r.x0, nd), grow(r.best, nd), grow(r.cand, nd)
	r.y, r.margin = grow(r.y, na), grow(r.margin, na)
	r.logits = grow(r.logits, na*r.k)
	r.signs = grow(r.signs, r.c)
}

// single runs the attack on the na samples of r.x0.
func (r *squareRun) single(na, queries int, pInit float64) error {
	d := r.d
	// Vertical stripes: one sign per sample, channel and column.
	for i := range na {
		for ch := range r.c {
			for col := range r.w {
				s := r.eps
				if r.rng.Float64() < 0.5 {
					s = -s
				}
				for row := range r.h {
					j := i*d + (ch*r.h+row)*r.w + col
					r.best[j] = float32(math.Min(math.Max(float64(r.x0[j])+s, 0), 1))
				}
			}
		}
	}
	if err := r.m.Logits(r.best[:na*d], na, r.logits); err != nil {
		return fmt.Errorf("start: logits: %w", err)
	}
	for i := range na {
		r.margin[i] = marginRow(r.logits[i*r.k:(i+1)*r.k], int(r.y[i]))
	}
	// r.idx lists the samples still robust and r.cand holds their current
	// best points (row a for sample r.idx[a]); a query only rewrites the
	// window of each row, and restores it when the proposal is rejected, so
	// the rows are not copied afresh for every query.
	r.idx = r.idx[:0]
	for i := range na {
		if r.margin[i] > 0 {
			r.idx = append(r.idx, i)
		}
	}
	r.cand = grow(r.cand, len(r.idx)*d)
	model.Gather(r.best, d, r.idx, r.cand)
	for it := range queries {
		if len(r.idx) == 0 {
			return nil
		}
		p := SquareP(pInit, it, queries)
		wh, ww := r.window(p)
		vh := int(float64(r.h-wh) * r.rng.Float64())
		vw := int(float64(r.w-ww) * r.rng.Float64())
		for ch := range r.c {
			r.signs[ch] = float32(r.eps)
			if r.rng.Float64() < 0.5 {
				r.signs[ch] = -float32(r.eps)
			}
		}
		nc := len(r.idx)
		for a, i := range r.idx {
			cand := r.cand[a*d : (a+1)*d]
			x0 := r.x0[i*d : (i+1)*d]
			for ch := range r.c {
				for row := vh; row < vh+wh; row++ {
					lo := (ch*r.h+row)*r.w + vw
					for j := lo; j < lo+ww; j++ {
						// x_best + 2·eps·sign, projected: the window lands on x0 ± eps.
						v := float64(cand[j]) + 2*float64(r.signs[ch])
						cand[j] = project(v, x0[j], r.eps)
					}
				}
			}
		}
		if err := r.m.Logits(r.cand[:nc*d], nc, r.logits[:nc*r.k]); err != nil {
			return fmt.Errorf("query %d: logits of %d samples: %w", it+1, nc, err)
		}
		kept := 0
		for a, i := range r.idx {
			cand, best := r.cand[a*d:(a+1)*d], r.best[i*d:(i+1)*d]
			mg := marginRow(r.logits[a*r.k:(a+1)*r.k], int(r.y[i]))
			accept := mg < r.margin[i] || mg <= 0
			if accept {
				r.margin[i] = mg
			}
			for ch := range r.c {
				for row := vh; row < vh+wh; row++ {
					lo := (ch*r.h+row)*r.w + vw
					if accept {
						copy(best[lo:lo+ww], cand[lo:lo+ww])
					} else {
						copy(cand[lo:lo+ww], best[lo:lo+ww])
					}
				}
			}
			if r.margin[i] > 0 { // still robust: keep its row, compacted
				if kept != a {
					copy(r.cand[kept*d:(kept+1)*d], cand)
				}
				r.idx[kept] = i
				kept++
			}
		}
		r.idx = r.idx[:kept]
	}
	return nil
}

// window returns the height and width of the window for fraction p:
// s = max(round(√(p·H·W)), 1) squared on an image grid, a run of
// max(round(p·W), 1) features on a flat row.
func (r *squareRun) window(p float64) (int, int) {
	if r.h == 1 {
		return 1, min(max(int(math.Round(p*float64(r.w))), 1), r.w)
	}
	s := max(int(math.Round(math.Sqrt(p*float64(r.h*r.w)))), 1)
	s = min(s, r.h, r.w)
	return s, s
}

// marginRow is z_y − max_{k≠y} z_k (negative when misclassified).
func marginRow(z []float32, y int) float64 {
	other := math.Inf(-1)
	for j, v := range z {
		if j != y {
			other = max(other, float64(v))
		}
	}
	return float64(z[y]) - other
}

// squareShape returns the C,H,W grid of the model's inputs.
func squareShape(m GradModel, d int) ([3]int, error) {
	s, ok := m.(InputShaper)
	if !ok {
		return [3]int{1, 1, d}, nil
	}
	shape := s.InputShape()
	if len(shape) != 3 || shape[0] < 1 || shape[1] < 1 || shape[2] < 1 || shape[0]*shape[1]*shape[2] != d {
		return [3]int{}, fmt.Errorf("square: model input shape %v is not C,H,W with product InputSize %d", shape, d)
	}
	return [3]int{shape[0], shape[1], shape[2]}, nil
}
