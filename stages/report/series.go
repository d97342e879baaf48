package report

import (
	"bytes"
	"encoding/csv"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Replicates and the figures' CSV. Series that differ only in their seed
// are replicates: a figure draws their mean with a ±std band (the sample
// standard deviation, as the tables print it) and writes x, mean, std and n
// of every point to its CSV.

// meanStd is the mean and sample standard deviation of the finite values
// of vs and how many there are; std is 0 for fewer than two.
func meanStd(vs []float64) (mean, std float64, n int) {
	sum := 0.0
	for _, v := range vs {
		if finiteAll(v) {
			sum += v
			n++
		}
	}
	if n == 0 {
		return math.NaN(), 0, 0
	}
	mean = sum / float64(n)
	if n > 1 {
		ss := 0.0
		for _, v := range vs {
			if finiteAll(v) {
				ss += (v - mean) * (v - mean)
			}
		}
		std = math.Sqrt(ss / float64(n-1))
	}
	return mean, std, n
}

// replicates collects values by series and x and averages them.
type replicates struct {
	order  []string            // series keys in first-appearance order
	keys   map[string][]string // series key -> its values of the key names
	values map[string]map[float64][]float64
}

func newReplicates() *replicates {
	return &replicates{keys: map[string][]string{}, values: map[string]map[float64][]float64{}}
}

// add records value v at x for the series whose key values are keys.
func (r *replicates) add(keys []string, x, v float64) {
	k := strings.Join(keys, tupleSep)
	if _, ok := r.values[k]; !ok {
		r.order = append(r.order, k)
		r.keys[k] = keys
		r.values[k] = map[float64][]float64{}
	}
	r.values[k][x] = append(r.values[k][x], v)
}

// points are the series' points by increasing x: mean, std and n of the
// finite values at each x; an x without one is left out.
func (r *replicates) points(key string) []Point {
	var out []Point
	byX := r.values[key]
	for _, x := range sortedFloatKeys(byX) {
		mean, std, n := meanStd(byX[x])
		if n > 0 {
			out = append(out, Point{X: x, Mean: mean, Std: std, N: n})
		}
	}
	return out
}

// maxN is the largest number of replicates behind any point.
func (r *replicates) maxN() int {
	n := 0
	for _, byX := range r.values {
		for _, vs := range byX {
			n = max(n, len(vs))
		}
	}
	return n
}

// replicateNote is the title suffix saying what a band is, when one is drawn.
func replicateNote(n int) string {
	if n < 2 {
		return ""
	}
	return " (mean ± std over " + strconv.Itoa(n) + " seeds)"
}

// CSV writes what f draws, one row per point or bin: a panel column when
// there are several panels, the key columns, then for lines x, mean, std
// and n, and for bars lo, hi, the bar value, std, n, count and the extra
// column. A std over fewer than two replicates is empty. A figure with
// lines writes its lines only (the bars of such a figure would be a second
// table).
func (f *Figure) CSV() []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	multi := len(f.Panels) > 1
	head := []string{}
	if multi {
		head = append(head, "panel")
	}
	head = append(head, f.KeyNames...)
	lines := slices.ContainsFunc(f.Panels, func(p *Panel) bool { return len(p.Lines) > 0 })
	if lines {
		head = append(head, nonEmpty(f.XName, "x"), "mean", "std", "n")
	} else {
		head = append(head, "lo", "hi", nonEmpty(f.BarValue, "value"), "std", "n", "count")
		if f.BarExtra != "" {
			head = append(head, f.BarExtra)
		}
	}
	_ = w.Write(head) // a bytes.Buffer does not fail
	for _, p := range f.Panels {
		lead := []string{}
		if multi {
			lead = append(lead, p.Title)
		}
		if lines {
			for _, l := range p.Lines {
				for _, pt := range l.Points {
					_ = w.Write(slices.Concat(lead, padKeys(l.Keys, len(f.KeyNames)),
						[]string{csvNumber(pt.X), csvNumber(pt.Mean), csvStd(pt.Std, pt.N), strconv.Itoa(pt.N)}))
				}
			}
			continue
		}
		for _, bars := range p.Bars {
			for _, bin := range bars.Bins {
				row := slices.Concat(lead, padKeys(bars.Keys, len(f.KeyNames)), []string{csvNumber(bin.Lo), csvNumber(bin.Hi),
					csvNumber(bin.Mean), csvStd(bin.Std, bin.N), strconv.Itoa(bin.N), csvNumber(bin.Count)})
				if f.BarExtra != "" {
					row = append(row, csvNumber(bin.Extra))
				}
				_ = w.Write(row)
			}
		}
	}
	w.Flush()
	return b.Bytes()
}

// csvNumber prints v with up to 10 significant digits (so 0.507 × 100 is
// 50.7, not 50.699999999999996), "" for NaN or ±Inf, no negative zero.
func csvNumber(v float64) string {
	if !finiteAll(v) {
		return ""
	}
	s := strconv.FormatFloat(v, 'g', 10, 64)
	if s == "-0" {
		return "0"
	}
	return s
}

// csvStd is a standard deviation over n values: empty below two.
func csvStd(std float64, n int) string {
	if n < 2 {
		return ""
	}
	return csvNumber(std)
}

// padKeys is keys cut or padded with "" to n values.
func padKeys(keys []string, n int) []string {
	out := make([]string, n)
	copy(out, keys)
	return out
}

func nonEmpty(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}
