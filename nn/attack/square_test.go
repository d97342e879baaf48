package attack

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/nn/model"
)

// TestSquareMatchesTheStraightforwardLoop checks that Square, which keeps
// the robust samples' candidate rows and only rewrites and restores the
// window, gives bit-identical adversarial examples to the straightforward
// loop that rebuilds every candidate from the best point at every query
// (squareReference), on flat and image
// grids, with and without restarts.
func TestSquareMatchesTheStraightforwardLoop(t *testing.T) {
	m, x, labels := evalTrained(t, 16)
	for _, tc := range []struct {
		name     string
		shape    []int // nil: a flat row
		eps      float64
		queries  int
		restarts int
	}{
		{"flat", nil, 0.1, 300, 1},
		{"flat restarts", nil, 0.08, 200, 2},
		{"grid 1x5x6", []int{1, 5, 6}, 0.1, 300, 1},
		{"grid 2x3x5", []int{2, 3, 5}, 0.12, 250, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var gm GradModel = m
			if tc.shape != nil {
				gm = shapedModel{m, tc.shape}
			}
			cfg := Square{Eps: tc.eps, Queries: tc.queries, Restarts: tc.restarts}
			got, want := make([]float32, len(x)), make([]float32, len(x))
			rngGot, rngWant := evalRNG(9), evalRNG(9)
			if err := cfg.Run(gm, x, labels, evalN, rngGot, got); err != nil {
				t.Fatal(err)
			}
			if err := squareReference(cfg, gm, x, labels, evalN, rngWant, want); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Fatal("adversarial examples differ from the straightforward loop's")
			}
			if rngGot.Uint64() != rngWant.Uint64() {
				t.Error("the generators are left in different states")
			}
			acc, err := RobustAccuracy(gm, got, labels, evalN)
			if err != nil {
				t.Fatal(err)
			}
			if acc > 0.9 {
				t.Errorf("square left robust accuracy %.3f: the comparison is vacuous", acc)
			}
		})
	}
}

// shapedModel gives an evalMLP an image shape for Square's window.
type shapedModel struct {
	*evalMLP
	shape []int
}

func (s shapedModel) InputShape() []int { return s.shape }

// squareReference is Square as first written: every query copies each
// robust sample's best point into a fresh candidate row and evaluates the
// rows of all samples still robust.
func squareReference(c Square, m GradModel, x []float32, labels []int32, n int, rng *rand.Rand, xAdv []float32) error {
	d, k := m.InputSize(), m.Classes()
	shape, err := squareShape(m, d)
	if err != nil {
		return err
	}
	nc, h, w := shape[0], shape[1], shape[2]
	eps := c.Eps
	pInit := cmpOr(c.PInit, 0.8)
	clean := slices.Clone(x)
	copy(xAdv, clean)
	robust, err := correctIndices(m, clean, labels, n, k, make([]float32, n*k))
	if err != nil {
		return err
	}
	window := (&squareRun{h: h, w: w}).window
	for range max(c.Restarts, 1) {
		na := len(robust)
		if na == 0 {
			return nil
		}
		x0, best := make([]float32, na*d), make([]float32, na*d)
		y, margin := make([]int32, na), make([]float64, na)
		logits := make([]float32, na*k)
		model.Gather(clean, d, robust, x0)
		model.GatherLabels(labels, robust, y)
		for i := range na {
			for ch := range nc {
				for col := range w {
					s := eps
					if rng.Float64() < 0.5 {
						s = -s
					}
					for row := range h {
						j := i*d + (ch*h+row)*w + col
						best[j] = float32(math.Min(math.Max(float64(x0[j])+s, 0), 1))
					}
				}
			}
		}
		if err := m.Logits(best, na, logits); err != nil {
			return err
		}
		for i := range na {
			margin[i] = marginRow(logits[i*k:(i+1)*k], int(y[i]))
		}
		signs := make([]float32, nc)
		for it := range c.Queries {
			var idx []int
			for i := range na {
				if margin[i] > 0 {
					idx = append(idx, i)
				}
			}
			if len(idx) == 0 {
				break
			}
			wh, ww := window(SquareP(pInit, it, c.Queries))
			vh := int(float64(h-wh) * rng.Float64())
			vw := int(float64(w-ww) * rng.Float64())
			for ch := range nc {
				signs[ch] = float32(eps)
				if rng.Float64() < 0.5 {
					signs[ch] = -float32(eps)
				}
			}
			cands := make([]float32, len(idx)*d)
			for a, i := range idx {
				cand := cands[a*d : (a+1)*d]
				copy(cand, best[i*d:(i+1)*d])
				for ch := range nc {
					for row := vh; row < vh+wh; row++ {
						for col := vw; col < vw+ww; col++ {
							j := (ch*h+row)*w + col
							cand[j] = project(float64(cand[j])+2*float64(signs[ch]), x0[i*d+j], eps)
						}
					}
				}
			}
			if err := m.Logits(cands, len(idx), logits[:len(idx)*k]); err != nil {
				return err
			}
			for a, i := range idx {
				mg := marginRow(logits[a*k:(a+1)*k], int(y[i]))
				if mg < margin[i] || mg <= 0 {
					margin[i] = mg
					copy(best[i*d:(i+1)*d], cands[a*d:(a+1)*d])
				}
			}
		}
		kept := robust[:0]
		for j, i := range robust {
			if margin[j] > 0 {
				kept = append(kept, i)
				continue
			}
			copy(xAdv[i*d:(i+1)*d], best[j*d:(j+1)*d])
		}
		robust = kept
	}
	return nil
}
