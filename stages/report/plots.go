package report

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

// Plot kinds (the `plots` parameter).
const (
	PlotCurves      = "curves"      // train and validation robust accuracy per epoch, one line per run
	PlotReliability = "reliability" // accuracy against confidence per bin, with the diagonal
	PlotConfidence  = "confidence"  // histogram of the confidence on the labelled class
	PlotAccuracyVs  = "accuracy-vs" // each metric against the x column, one line per group
)

// Size and resolution of every plot.
const (
	plotWidth  = 6 * vg.Inch
	plotHeight = 4 * vg.Inch
	plotDPI    = 100
)

// NamedPlot is a plot and the base name of its files (without extension).
type NamedPlot struct {
	Name string
	Plot *plot.Plot
}

// Render draws p as PNG and as SVG (fonts not embedded). Both encodings are
// deterministic: nothing time-dependent is written.
func Render(p *plot.Plot) (pngData, svgData []byte, err error) {
	img := vgimg.NewWith(vgimg.UseWH(plotWidth, plotHeight), vgimg.UseDPI(plotDPI))
	p.Draw(draw.New(img))
	var pb bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&pb); err != nil {
		return nil, nil, fmt.Errorf("encode PNG: %w", err)
	}
	svg := vgsvg.New(plotWidth, plotHeight)
	p.Draw(draw.New(svg))
	var sb bytes.Buffer
	if _, err := svg.WriteTo(&sb); err != nil {
		return nil, nil, fmt.Errorf("encode SVG: %w", err)
	}
	return pb.Bytes(), sb.Bytes(), nil
}

// CurvesPlot draws the train (dashed) and validation (solid) robust accuracy
// of each training curve per epoch, one colour per run labelled by its tags
// (the paper's Fig. B.6). Unvalidated epochs (NaN) are skipped.
func CurvesPlot(curves []*artifacts.Table, tags []map[string]string, percent bool) (*plot.Plot, error) {
	p := newPlot("Robust accuracy during training", "epoch", axisLabel("robust accuracy", percent))
	labels := runLabels(tags, len(curves))
	for i, c := range curves {
		epoch := c.Column(artifacts.ColEpoch)
		for _, series := range []struct {
			col    string
			suffix string
			dashed bool
		}{{artifacts.ColTrainRobustAcc, "train", true}, {artifacts.ColValRobustAcc, "val", false}} {
			col := c.Column(series.col)
			if col == nil || col.Floats == nil {
				return nil, fmt.Errorf("curve %d (%s) has no float column %q: not a train curve", i+1, labels[i], series.col)
			}
			var pts plotter.XYs
			for r, v := range col.Floats {
				if !math.IsNaN(v) && !math.IsInf(v, 0) {
					pts = append(pts, plotter.XY{X: float64(epoch.Ints[r]), Y: v * scaleFor(percent)})
				}
			}
			if err := addLine(p, pts, labels[i]+" "+series.suffix, i, series.dashed, false); err != nil {
				return nil, fmt.Errorf("curve %d: %w", i+1, err)
			}
		}
	}
	p.Legend.Top, p.Legend.Left = false, false
	return p, nil
}

// ReliabilityPlots draws one reliability diagram per gathered bins table,
// checkpoint and attack: the accuracy of each non-empty confidence bin as a
// bar over [lo, hi], the diagonal of perfect calibration, and the ECE the
// bins imply in the title.
func ReliabilityPlots(tables []*artifacts.Table, tags []map[string]string) ([]NamedPlot, error) {
	groups, err := binGroups(tables, tags, []string{"count", "accuracy", "confidence"}, true)
	if err != nil {
		return nil, fmt.Errorf("bins: %w", err)
	}
	var out []NamedPlot
	for _, g := range groups {
		total := 0.0
		for _, b := range g.bins {
			total += b.count
		}
		ece := 0.0
		var bars []plotter.HistogramBin
		for _, b := range g.bins {
			if b.count > 0 {
				ece += b.count / total * math.Abs(b.accuracy-b.confidence)
				bars = append(bars, plotter.HistogramBin{Min: b.lo, Max: b.hi, Weight: b.accuracy})
			}
		}
		p := newPlot(fmt.Sprintf("Reliability: %s (ECE %.3f)", g.label, ece), "confidence", "accuracy")
		h := &plotter.Histogram{Bins: bars, FillColor: color.NRGBA{R: 70, G: 110, B: 200, A: 200}}
		h.LineStyle = plotter.DefaultLineStyle
		h.LineStyle.Width = vg.Points(0.5)
		p.Add(h)
		p.Legend.Add("accuracy", h)
		diag, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: 1, Y: 1}})
		if err != nil {
			return nil, err
		}
		diag.Color = color.Gray{Y: 80}
		diag.Dashes = plotutil.Dashes(1)
		p.Add(diag)
		p.Legend.Add("perfect calibration", diag)
		p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1
		p.Legend.Top, p.Legend.Left = true, true
		out = append(out, NamedPlot{Name: "reliability-" + g.slug, Plot: p})
	}
	return out, nil
}

// ConfidencePlots draws one histogram of the confidence on the labelled
// class per gathered hist table and attack, with one outlined histogram per
// checkpoint (e.g. best against final, the paper's Fig. B.3); bar heights
// are fractions of the samples.
func ConfidencePlots(tables []*artifacts.Table, tags []map[string]string) ([]NamedPlot, error) {
	groups, err := binGroups(tables, tags, []string{"count"}, false)
	if err != nil {
		return nil, fmt.Errorf("hist: %w", err)
	}
	var out []NamedPlot
	for _, g := range groups {
		p := newPlot("Confidence on the labelled class: "+g.label, "confidence", "fraction of samples")
		for i, ck := range g.checkpoints {
			total := 0.0
			for _, b := range g.byCheckpoint[ck] {
				total += b.count
			}
			var bars []plotter.HistogramBin
			for _, b := range g.byCheckpoint[ck] {
				w := 0.0
				if total > 0 {
					w = b.count / total
				}
				bars = append(bars, plotter.HistogramBin{Min: b.lo, Max: b.hi, Weight: w})
			}
			h := &plotter.Histogram{Bins: bars, FillColor: withAlpha(plotutil.Color(i), 90)}
			h.LineStyle = plotter.DefaultLineStyle
			h.LineStyle.Color = plotutil.Color(i)
			p.Add(h)
			name := ck
			if name == "" {
				name = "all"
			}
			p.Legend.Add(name, h)
		}
		p.X.Min, p.X.Max = 0, 1
		p.Legend.Top, p.Legend.Left = true, true
		out = append(out, NamedPlot{Name: "confidence-" + g.slug, Plot: p})
	}
	return out, nil
}

// AccuracyVsPlots draws, for each metric, its value against the numeric key
// column x, one line per group of records that agree on every other
// categorical key but the seed (seeds are averaged). The line labels name
// only the keys that vary.
func AccuracyVsPlots(records []Record, metrics []string, x string, percent bool) ([]NamedPlot, error) {
	_, categorical, _ := namesOf(records)
	var groupKeys []string
	for _, n := range categorical {
		if n != x && n != ColSeed {
			groupKeys = append(groupKeys, n)
		}
	}
	varying := varyingKeys(records, groupKeys)
	var out []NamedPlot
	for _, m := range metrics {
		type point struct {
			sum float64
			n   int
		}
		var order []string
		points := map[string]map[float64]*point{}
		for _, r := range records {
			v, ok := r.Nums[m]
			xs, hasX := r.Keys[x]
			if !ok || !hasX || math.IsNaN(v) {
				continue
			}
			xv, err := strconv.ParseFloat(xs, 64)
			if err != nil {
				return nil, fmt.Errorf("accuracy-vs: x column %q has the value %q, which is not a number", x, xs)
			}
			g := r.tuple(varying)
			if points[g] == nil {
				points[g] = map[float64]*point{}
				order = append(order, g)
			}
			pt := points[g][xv]
			if pt == nil {
				pt = &point{}
				points[g][xv] = pt
			}
			pt.sum += v
			pt.n++
		}
		if len(order) == 0 {
			continue
		}
		scale := 1.0
		if percent && IsRate(m) {
			scale = 100
		}
		p := newPlot(fmt.Sprintf("%s against %s", m, x), x, axisLabel(m, scale == 100))
		for i, g := range order {
			xs := sortedFloatKeys(points[g])
			pts := make(plotter.XYs, len(xs))
			for j, xv := range xs {
				pts[j] = plotter.XY{X: xv, Y: points[g][xv].sum / float64(points[g][xv].n) * scale}
			}
			label := tupleLabel(g)
			if label == "" {
				label = m
			}
			if err := addLine(p, pts, strings.ReplaceAll(label, ", ", " "), i, false, true); err != nil {
				return nil, err
			}
		}
		out = append(out, NamedPlot{Name: slug(m) + "-vs-" + slug(x), Plot: p})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("accuracy-vs: no record has both %q and a metric of %s", x, strings.Join(metrics, ", "))
	}
	return out, nil
}

// binGroup is the bins of one (table, checkpoint, attack) — or, for
// histograms, of one (table, attack) with the checkpoints kept apart.
type binGroup struct {
	label, slug  string
	bins         []bin
	checkpoints  []string
	byCheckpoint map[string][]bin
}

type bin struct{ lo, hi, count, accuracy, confidence float64 }

// binGroups splits bins/hist tables into groups, by checkpoint too when
// perCheckpoint. need lists the numeric columns besides lo and hi.
func binGroups(tables []*artifacts.Table, tags []map[string]string, need []string, perCheckpoint bool) ([]*binGroup, error) {
	var groups []*binGroup
	byKey := map[string]*binGroup{}
	used := map[string]int{}
	for i, t := range tables {
		var tg map[string]string
		if i < len(tags) {
			tg = tags[i]
		}
		cols := map[string][]float64{}
		for _, name := range append([]string{"lo", "hi"}, need...) {
			v, err := numericColumn(t, name)
			if err != nil {
				return nil, fmt.Errorf("table %d: %w", i+1, err)
			}
			cols[name] = v
		}
		ckCol, atCol := stringColumn(t, ColCheckpoint), stringColumn(t, "attack")
		for r := 0; r < t.Len(); r++ {
			ck, attack := ckCol(r), atCol(r)
			parts := tagValues(tg)
			if perCheckpoint && ck != "" {
				parts = append(parts, ck)
			}
			if attack != "" {
				parts = append(parts, attack)
			}
			key := fmt.Sprint(i, "\x00", strings.Join(parts, "\x00"))
			g := byKey[key]
			if g == nil {
				label := strings.Join(parts, " ")
				if label == "" {
					label = fmt.Sprintf("table %d", i+1)
				}
				s := slug(label)
				if used[s]++; used[s] > 1 {
					s += "-" + strconv.Itoa(used[s])
				}
				g = &binGroup{label: label, slug: s, byCheckpoint: map[string][]bin{}}
				byKey[key] = g
				groups = append(groups, g)
			}
			b := bin{lo: cols["lo"][r], hi: cols["hi"][r], count: cols["count"][r]}
			if perCheckpoint {
				b.accuracy, b.confidence = cols["accuracy"][r], cols["confidence"][r]
			}
			values := []float64{b.lo, b.hi, b.count}
			if b.count > 0 { // an empty bin has no accuracy or confidence (NaN)
				values = append(values, b.accuracy, b.confidence)
			}
			for _, v := range values {
				if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
					return nil, fmt.Errorf("table %d row %d: a bin holds %v, want a finite value ≥ 0", i+1, r+1, v)
				}
			}
			g.bins = append(g.bins, b)
			if _, ok := g.byCheckpoint[ck]; !ok {
				g.checkpoints = append(g.checkpoints, ck)
			}
			g.byCheckpoint[ck] = append(g.byCheckpoint[ck], b)
		}
	}
	return groups, nil
}

// numericColumn returns an int or float column as floats.
func numericColumn(t *artifacts.Table, name string) ([]float64, error) {
	c := t.Column(name)
	switch {
	case c == nil || c.Strings != nil:
		return nil, fmt.Errorf("no numeric column %q", name)
	case c.Floats != nil:
		return c.Floats, nil
	}
	out := make([]float64, len(c.Ints))
	for i, v := range c.Ints {
		out[i] = float64(v)
	}
	return out, nil
}

// stringColumn returns an accessor of a string column ("" when absent).
func stringColumn(t *artifacts.Table, name string) func(int) string {
	c := t.Column(name)
	if c == nil || c.Strings == nil {
		return func(int) string { return "" }
	}
	return func(r int) string { return c.Strings[r] }
}

// newPlot makes a plot with a title, axis labels and a grid.
func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Add(plotter.NewGrid())
	return p
}

// addLine adds a line of colour i (dashed or solid, with a glyph of shape
// i at each point when glyphs) to p and the legend.
func addLine(p *plot.Plot, pts plotter.XYs, label string, i int, dashed, glyphs bool) error {
	if len(pts) == 0 {
		return nil
	}
	l, err := plotter.NewLine(pts)
	if err != nil {
		return fmt.Errorf("line %q: %w", label, err)
	}
	l.Color = plotutil.Color(i)
	l.Width = vg.Points(1.5)
	if dashed {
		l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
	}
	p.Add(l)
	if !glyphs {
		p.Legend.Add(label, l)
		return nil
	}
	s, err := plotter.NewScatter(pts)
	if err != nil {
		return fmt.Errorf("points %q: %w", label, err)
	}
	s.Color, s.Shape, s.Radius = plotutil.Color(i), plotutil.Shape(i), vg.Points(3)
	p.Add(s)
	p.Legend.Add(label, l, s)
	return nil
}

// runLabels labels each run by its tags ("labels=sglr noise=0.2"), or by
// its position when it has none.
func runLabels(tags []map[string]string, n int) []string {
	out := make([]string, n)
	for i := range out {
		var tg map[string]string
		if i < len(tags) {
			tg = tags[i]
		}
		var parts []string
		for _, k := range sortedKeys(tg) {
			parts = append(parts, k+"="+tg[k])
		}
		out[i] = strings.Join(parts, " ")
		if out[i] == "" {
			out[i] = fmt.Sprintf("run %d", i+1)
		}
	}
	return out
}

// tagValues lists the values of tags in the order of their sorted axes.
func tagValues(tags map[string]string) []string {
	var out []string
	for _, k := range sortedKeys(tags) {
		out = append(out, tags[k])
	}
	return out
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

func withAlpha(c color.Color, a uint8) color.Color {
	r, g, b, _ := c.RGBA()
	return color.NRGBA{R: uint8(r >> 8), G: uint8(g >> 8), B: uint8(b >> 8), A: a}
}
