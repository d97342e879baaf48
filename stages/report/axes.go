package report

import (
	"math"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
)

// Axis ranges and ticks. gonum's default ticker picks steps such as 10/30/50
// and prints "50.00"; a paper figure wants round steps (1, 2 or 5 × 10^k)
// with labels that carry no trailing zeros, and axes that hold every drawn
// thing — lines, ±std bands, the tallest bar — with some room to spare.

// targetTicks is about how many major ticks an axis gets.
const targetTicks = 5

// Range is a closed interval of data values on one axis.
type Range struct{ Min, Max float64 }

// extent accumulates the smallest and largest finite value it is shown.
type extent struct {
	lo, hi float64
	any    bool
}

// add widens e to hold every finite value of vs.
func (e *extent) add(vs ...float64) {
	for _, v := range vs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		if !e.any {
			e.lo, e.hi, e.any = v, v, true
			continue
		}
		e.lo, e.hi = math.Min(e.lo, v), math.Max(e.hi, v)
	}
}

// padded is the axis range that holds e with pad × span free on each side.
// With zero set and data that are non-negative and start near zero (below a
// quarter of the largest value) the axis starts at exactly 0, as accuracies
// and fractions are read against 0. Without data it is [0, 1]; a single
// value gets a unit-wide range around it.
func (e extent) padded(pad float64, zero bool) Range {
	if !e.any {
		return Range{0, 1}
	}
	lo, hi := e.lo, e.hi
	if lo == hi {
		w := math.Max(math.Abs(lo)*0.1, 0.5)
		if zero && lo >= 0 && lo-w < 0 {
			return Range{0, hi + w}
		}
		return Range{lo - w, hi + w}
	}
	span := hi - lo
	r := Range{lo - pad*span, hi + pad*span}
	if zero && lo >= 0 && (r.Min < 0 || lo <= 0.25*hi) {
		r.Min = 0
	}
	return r
}

// niceStep is the round step (1, 2 or 5 × 10^k) whose multiples inside
// [lo, hi] come closest to n ticks; on a tie, the larger step.
func niceStep(lo, hi float64, n int) float64 {
	span := hi - lo
	if !(span > 0) || math.IsInf(span, 0) || n < 1 {
		return 1
	}
	mag := math.Pow(10, math.Floor(math.Log10(span/float64(n))))
	best, bestMiss := 0.0, math.Inf(1)
	for _, step := range []float64{10 * mag, 5 * mag, 2 * mag, mag, mag / 2} {
		count := math.Floor(hi/step+1e-9) - math.Ceil(lo/step-1e-9) + 1
		if miss := math.Abs(count - float64(n)); miss < bestMiss {
			best, bestMiss = step, miss
		}
	}
	return best
}

// decimalsFor is how many decimals a multiple of step needs.
func decimalsFor(step float64) int {
	if step <= 0 || math.IsInf(step, 0) || math.IsNaN(step) {
		return 0
	}
	d := -int(math.Floor(math.Log10(step) + 1e-9))
	return max(0, d)
}

// tickLabel prints v with the decimals a multiple of step needs, without
// trailing zeros or a negative zero: 50, 0.25, -1.5.
func tickLabel(v, step float64) string {
	d := decimalsFor(step)
	s := strconv.FormatFloat(v, 'f', d, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}

// niceTicks is a plot.Ticker with major ticks at the multiples of a round
// step inside [min, max] and labels from tickLabel; there are no minor ticks.
type niceTicks struct{}

// Ticks implements plot.Ticker.
func (niceTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(hi > lo) || math.IsInf(lo, 0) || math.IsInf(hi, 0) {
		return nil
	}
	step := niceStep(lo, hi, targetTicks)
	first := math.Ceil(lo/step - 1e-9)
	var ticks []plot.Tick
	for k := first; k*step <= hi+step*1e-9 && len(ticks) < 100; k++ {
		v := k * step
		if math.Abs(v) < step*1e-9 {
			v = 0
		}
		ticks = append(ticks, plot.Tick{Value: v, Label: tickLabel(v, step)})
	}
	return ticks
}
