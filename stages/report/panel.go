package report

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// maxMarkers is how many markers a line that is told apart by its marker
// carries at most (a curve has a point per epoch: marking each would hide it).
const maxMarkers = 12

// plot builds the gonum plot of a panel: grid, ±std bands under the lines,
// histograms with error bars, the diagonal, round ticks and the panel's
// axis ranges (an unusable range becomes [0, 1]).
func (p *Panel) plot() (*plot.Plot, error) {
	gp := plot.New()
	gp.BackgroundColor = nil // the figure is filled white once
	gp.Title.Text = p.Title
	gp.Title.TextStyle = textStyle(labelSize)
	gp.Title.TextStyle.XAlign, gp.Title.TextStyle.YAlign = draw.XCenter, draw.YTop
	gp.Title.Padding = vg.Points(4)
	for _, ax := range []*plot.Axis{&gp.X, &gp.Y} {
		ax.Label.TextStyle.Font = textStyle(labelSize).Font
		ax.Tick.Label.Font = textStyle(tickSize).Font
		ax.Tick.Marker = niceTicks{}
		ax.Tick.Length = vg.Points(4)
		ax.Padding = vg.Points(2)
	}
	gp.X.Label.Text, gp.Y.Label.Text = p.XLabel, p.YLabel
	grid := plotter.NewGrid()
	grid.Vertical.Color, grid.Horizontal.Color = color.Gray{Y: 225}, color.Gray{Y: 225}
	grid.Vertical.Width, grid.Horizontal.Width = vg.Points(0.5), vg.Points(0.5)
	gp.Add(grid)
	if err := p.addBars(gp); err != nil {
		return nil, err
	}
	if p.Diagonal {
		diag, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: 1, Y: 1}})
		if err != nil {
			return nil, err
		}
		diag.Color, diag.Width = neutral, vg.Points(1)
		diag.Dashes = Style{Dash: 1}.dashes()
		gp.Add(diag)
	}
	if err := p.addLines(gp); err != nil {
		return nil, err
	}
	x, y := p.X, p.Y
	if !x.finite() {
		x = Range{0, 1}
	}
	if !y.finite() {
		y = Range{0, 1}
	}
	gp.X.Min, gp.X.Max, gp.Y.Min, gp.Y.Max = x.Min, x.Max, y.Min, y.Max
	return gp, nil
}

// addLines adds every line's band, then every line with its markers, so
// that no band covers a line.
func (p *Panel) addLines(gp *plot.Plot) error {
	for i, l := range p.Lines {
		if band := bandPolygon(l.Points, p.spread); band != nil {
			poly, err := plotter.NewPolygon(band)
			if err != nil {
				return fmt.Errorf("band of line %d: %w", i+1, err)
			}
			poly.Color = withAlpha(l.Style.color(), bandAlpha)
			poly.LineStyle.Width = 0
			gp.Add(poly)
		}
	}
	for i, l := range p.Lines {
		var xys plotter.XYs
		for _, pt := range l.Points {
			if finiteAll(pt.X, pt.Mean) {
				xys = append(xys, plotter.XY{X: pt.X, Y: pt.Mean})
			}
		}
		if len(xys) == 0 {
			continue
		}
		line, err := plotter.NewLine(xys)
		if err != nil {
			return fmt.Errorf("line %d: %w", i+1, err)
		}
		line.Color, line.Width, line.Dashes = l.Style.color(), vg.Points(lineWidth), l.Style.dashes()
		gp.Add(line)
		if p.PointMarkers {
			if err := addMarkers(gp, xys, draw.CircleGlyph{}, l.Style.color(), markerRadius*0.8); err != nil {
				return err
			}
		}
		if g := l.Style.marker(); g != nil {
			if err := addMarkers(gp, spread(xys, maxMarkers, l.Style.Color), g, l.Style.color(), markerRadius*1.3); err != nil {
				return err
			}
		}
	}
	return nil
}

// addBars adds each histogram, with error bars where a bin averages
// replicates. Several histograms in one panel are dodged, not overlaid:
// each bin's width is shared out among them, so every bar stays visible.
func (p *Panel) addBars(gp *plot.Plot) error {
	k := len(p.Bars)
	for i, b := range p.Bars {
		var bins []plotter.HistogramBin
		var errs errorPoints
		for _, bin := range b.Bins {
			if bin.N == 0 || !finiteAll(bin.Lo, bin.Hi, bin.Mean) || bin.Mean == 0 && bin.Std == 0 && bin.Count == 0 {
				continue // an empty bin: a bar of height 0 would only stroke the axis
			}
			lo, hi := dodge(bin.Lo, bin.Hi, i, k)
			bins = append(bins, plotter.HistogramBin{Min: lo, Max: hi, Weight: bin.Mean})
			if bin.N > 1 && bin.Std > 0 {
				down, up := p.spread(bin.Mean, bin.Std)
				errs.xys = append(errs.xys, plotter.XY{X: (lo + hi) / 2, Y: bin.Mean})
				errs.low, errs.high = append(errs.low, bin.Mean-down), append(errs.high, up-bin.Mean)
			}
		}
		if len(bins) == 0 {
			continue
		}
		h := &plotter.Histogram{Bins: bins, FillColor: withAlpha(b.Style.color(), barAlpha)}
		h.LineStyle = draw.LineStyle{Color: b.Style.color(), Width: vg.Points(0.8), Dashes: b.Style.dashes()}
		gp.Add(h)
		if len(errs.xys) > 0 {
			eb, err := plotter.NewYErrorBars(errs)
			if err != nil {
				return fmt.Errorf("error bars of histogram %d: %w", i+1, err)
			}
			eb.Color, eb.Width, eb.CapWidth = color.Black, vg.Points(0.7), vg.Points(2.5)
			gp.Add(eb)
		}
	}
	return nil
}

// dodge is the part of [lo, hi] that bar i of k drawn side by side takes:
// the whole bin for one bar, else a k-th of it with a small gap at each end.
func dodge(lo, hi float64, i, k int) (float64, float64) {
	if k <= 1 {
		return lo, hi
	}
	w := hi - lo
	return lo + w*(0.05+0.9*float64(i)/float64(k)), lo + w*(0.05+0.9*float64(i+1)/float64(k))
}

// errorPoints are bar tops with the errors below and above them, for
// plotter.YErrorBars.
type errorPoints struct {
	xys       plotter.XYs
	low, high []float64
}

func (e errorPoints) Len() int                    { return len(e.xys) }
func (e errorPoints) XY(i int) (float64, float64) { return e.xys[i].X, e.xys[i].Y }
func (e errorPoints) YError(i int) (float64, float64) {
	return e.low[i], e.high[i]
}

// addMarkers adds glyphs of shape g at pts.
func addMarkers(gp *plot.Plot, pts plotter.XYs, g draw.GlyphDrawer, c color.Color, radius float64) error {
	s, err := plotter.NewScatter(pts)
	if err != nil {
		return fmt.Errorf("markers: %w", err)
	}
	s.Color, s.Shape, s.Radius = c, g, vg.Points(radius)
	gp.Add(s)
	return nil
}

// spread picks at most n of pts, evenly spaced, starting at an offset
// that depends on seed so that markers of different lines do not coincide.
func spread(pts plotter.XYs, n, seed int) plotter.XYs {
	if len(pts) <= n {
		return pts
	}
	step := float64(len(pts)) / float64(n)
	off := float64(seed%4) * step / 4
	var out plotter.XYs
	for k := 0; k < n; k++ {
		out = append(out, pts[min(len(pts)-1, int(off+float64(k)*step))])
	}
	return out
}

// bandPolygon is the outline of the mean ± std band of pts, as spread cuts
// it: the upper edge forwards and the lower edge back. It is nil when no
// point has a spread.
func bandPolygon(pts []Point, spread func(mean, std float64) (float64, float64)) plotter.XYs {
	var upper, lower plotter.XYs
	spreads := false
	for _, pt := range pts {
		if !finiteAll(pt.X, pt.Mean, pt.Std) {
			continue
		}
		spreads = spreads || (pt.N > 1 && pt.Std > 0)
		lo, hi := spread(pt.Mean, pt.Std)
		upper = append(upper, plotter.XY{X: pt.X, Y: hi})
		lower = append(lower, plotter.XY{X: pt.X, Y: lo})
	}
	if !spreads || len(upper) < 2 {
		return nil
	}
	for i := len(lower) - 1; i >= 0; i-- {
		upper = append(upper, lower[i])
	}
	return upper
}

// finiteAll reports whether every value is finite.
func finiteAll(vs ...float64) bool {
	for _, v := range vs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}
