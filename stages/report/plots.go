package report

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

// Plot kinds (the `plots` parameter).
const (
	PlotCurves      = "curves"      // train and validation robust accuracy per epoch, a line per method
	PlotReliability = "reliability" // accuracy against confidence per bin, with the diagonal
	PlotConfidence  = "confidence"  // histogram of the confidence on the labelled class
	PlotAccuracyVs  = "accuracy-vs" // each metric against the x column, a line per group
)

// CurvesFigure draws the robust accuracy of the training curves per epoch,
// in two panels with one y range: on the adversarial examples trained on
// (train) and on the validation set (the paper's Fig. B.6). Curves whose
// tags differ only in `seed` are replicates, drawn as their mean with a
// ±std band; each method has a colour and each combination of the other
// varying tags a dash pattern (styleSeries). Unvalidated epochs (NaN) are
// skipped.
func CurvesFigure(curves []*artifacts.Table, tags []map[string]string, percent bool) (*Figure, error) {
	names, keys := seriesKeys(tags, len(curves))
	panels := []struct{ col, title string }{
		{artifacts.ColTrainRobustAcc, "train"}, {artifacts.ColValRobustAcc, "validation"},
	}
	reps := []*replicates{newReplicates(), newReplicates()}
	scale := scaleFor(percent)
	for i, c := range curves {
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("curve %d: %w", i+1, err)
		}
		epoch := c.Column(artifacts.ColEpoch)
		if epoch == nil || epoch.Ints == nil {
			return nil, fmt.Errorf("curve %d (%s) has no integer column %q: not a train curve", i+1, strings.Join(keys[i], " "), artifacts.ColEpoch)
		}
		for j, p := range panels {
			col := c.Column(p.col)
			if col == nil || col.Floats == nil {
				return nil, fmt.Errorf("curve %d (%s) has no float column %q: not a train curve", i+1, strings.Join(keys[i], " "), p.col)
			}
			for r, v := range col.Floats {
				reps[j].add(keys[i], float64(epoch.Ints[r]), v*scale)
			}
		}
	}
	order := reps[0].order
	seriesKeys := make([][]string, len(order))
	for i, k := range order {
		seriesKeys[i] = reps[0].keys[k]
	}
	styling := styleSeries(names, seriesKeys, entryLine)
	f := &Figure{
		Name: "curves", Title: "Robust accuracy during training" + replicateNote(reps[0].maxN()),
		KeyNames: names, XName: "epoch", Legend: styling.Legend,
	}
	var xs, ys extent
	for j, p := range panels {
		panel := &Panel{Title: p.title, XLabel: "epoch", Bounds: &Range{0, scale}}
		for i, k := range order {
			pts := reps[j].points(k)
			for _, pt := range pts {
				xs.add(pt.X)
				ys.add(panel.spread(pt.Mean, pt.Std))
			}
			panel.Lines = append(panel.Lines, Line{Keys: seriesKeys[i], Style: styling.Styles[i], Points: pts})
		}
		f.Panels = append(f.Panels, panel)
	}
	f.Panels[0].YLabel = axisLabel("robust accuracy", percent)
	for _, p := range f.Panels {
		p.X, p.Y = xs.padded(0, true), ys.padded(0.05, true)
	}
	return f, nil
}

// seriesKeys names the series of n tagged inputs: the tag axes but `seed`,
// sorted, and each input's values of them ("" where it lacks one). Inputs
// with no tags at all are told apart by their position, as "run" 1, 2, ….
func seriesKeys(tags []map[string]string, n int) (names []string, keys [][]string) {
	seen := map[string]bool{}
	tagged := false
	for _, tg := range tags {
		for k := range tg {
			tagged = true
			if k != ColSeed && !seen[k] {
				seen[k] = true
				names = append(names, k)
			}
		}
	}
	slices.Sort(names)
	keys = make([][]string, n)
	for i := range keys {
		if !tagged {
			keys[i] = []string{strconv.Itoa(i + 1)}
			continue
		}
		var tg map[string]string
		if i < len(tags) {
			tg = tags[i]
		}
		keys[i] = make([]string, len(names))
		for j, name := range names {
			keys[i][j] = tg[name]
		}
	}
	if !tagged && n > 0 {
		names = []string{"run"}
	}
	return names, keys
}

// AccuracyVsFigures draws, for each metric, its value against the numeric
// key column x: a line per group of records that agree on every other
// categorical key but the seed, with a dot per measured x. Seeds are
// replicates: mean and ±std band. Only the keys that vary name the lines.
func AccuracyVsFigures(records []Record, metrics []string, x string, percent bool) ([]*Figure, error) {
	if len(records) == 0 {
		return nil, fmt.Errorf("accuracy-vs: the tables have no rows")
	}
	_, categorical, _ := namesOf(records)
	var groupKeys []string
	for _, n := range categorical {
		if n != x && n != ColSeed {
			groupKeys = append(groupKeys, n)
		}
	}
	names := varyingKeys(records, groupKeys)
	var out []*Figure
	for _, m := range metrics {
		scale := 1.0
		if percent && IsRate(m) {
			scale = 100
		}
		reps := newReplicates()
		for _, r := range records {
			v, ok := r.Nums[m]
			xs, hasX := r.Keys[x]
			if !ok || !hasX || !finiteAll(v) {
				continue
			}
			xv, err := strconv.ParseFloat(xs, 64)
			if err != nil {
				return nil, fmt.Errorf("accuracy-vs: x column %q has the value %q, which is not a number", x, xs)
			}
			keys := make([]string, len(names))
			for i, n := range names {
				keys[i] = r.Keys[n]
			}
			reps.add(keys, xv, v*scale)
		}
		if len(reps.order) == 0 {
			continue
		}
		out = append(out, accuracyVsFigure(reps, names, m, x, scale == 100))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("accuracy-vs: no record has both %q and a metric of %s", x, strings.Join(metrics, ", "))
	}
	return out, nil
}

// accuracyVsFigure is the figure of metric m against x from its replicates.
func accuracyVsFigure(reps *replicates, names []string, m, x string, percent bool) *Figure {
	keys := make([][]string, len(reps.order))
	for i, k := range reps.order {
		keys[i] = reps.keys[k]
	}
	styling := styleSeries(names, keys, entryLine)
	panel := &Panel{XLabel: x, YLabel: axisLabel(m, percent), PointMarkers: true}
	if IsRate(m) {
		panel.Bounds = &Range{0, scaleFor(percent)}
	}
	var xs, ys extent
	for i, k := range reps.order {
		pts := reps.points(k)
		for _, pt := range pts {
			xs.add(pt.X)
			ys.add(panel.spread(pt.Mean, pt.Std))
		}
		panel.Lines = append(panel.Lines, Line{Keys: keys[i], Style: styling.Styles[i], Points: pts})
	}
	panel.X, panel.Y = xs.padded(0.04, false), ys.padded(0.06, true)
	return &Figure{
		Name:     slug(m) + "-vs-" + slug(x),
		Title:    titleCase(fmt.Sprintf("%s against %s", m, x)) + replicateNote(reps.maxN()),
		KeyNames: names, XName: x, Panels: []*Panel{panel}, Legend: styling.Legend,
	}
}

// varyingKeys keeps the names whose value differs between records.
func varyingKeys(records []Record, names []string) []string {
	var out []string
	for _, n := range names {
		for _, r := range records[1:] {
			if r.Keys[n] != records[0].Keys[n] {
				out = append(out, n)
				break
			}
		}
	}
	return out
}

func sortedFloatKeys[V any](m map[float64]V) []float64 {
	keys := make([]float64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// slug makes s safe as a file name: letters, digits and ._+- kept, runs of
// anything else become one "-".
func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range s {
		ok := r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._+", r))
		if ok {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	out := strings.Trim(b.String(), "-.")
	if out == "" {
		return "plot"
	}
	return out
}

func axisLabel(what string, percent bool) string {
	if percent {
		return what + " (%)"
	}
	return what
}

func scaleFor(percent bool) float64 {
	if percent {
		return 100
	}
	return 1
}
