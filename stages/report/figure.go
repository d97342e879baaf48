package report

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// A Figure is what the report draws: panels side by side, a title above
// and a legend outside them, and the numbers behind every line and bar.
// Render writes it as a 300 dpi PNG, an SVG and a CSV of exactly what is
// drawn. No PDF: gonum's PDF writer stamps the creation time into the file
// (settable only process-wide) and embeds the fonts, so it would be neither
// reproducible nor small; the SVG is the vector form.

// Physical size and resolution. 6.4 × 4 in at 300 dpi is 1920 × 1200
// pixels; a legend below the panels makes the figure taller, not the
// panels smaller.
const (
	figWidth  = 6.4 * vg.Inch
	figHeight = 4 * vg.Inch
	figDPI    = 300
	figMargin = 0.08 * vg.Inch
	panelGap  = 14 // points between panels
)

// Font sizes (points) and stroke widths (points).
const (
	titleSize    = 11
	labelSize    = 10
	tickSize     = 9
	legendSize   = 9
	lineWidth    = 1.3
	markerRadius = 2.2
	bandAlpha    = 50  // of a ±std band's fill
	barAlpha     = 190 // of a histogram's fill
)

// maxRightLegend is the widest legend, as a share of the figure's width,
// that goes to the right of a single panel; wider ones go below.
const maxRightLegend = 0.3

// figFont is the figures' typeface.
var figFont = font.Font{Typeface: "Liberation", Variant: "Sans"}

// Figure is one report figure.
type Figure struct {
	Name     string   // base name of its files
	Title    string   // above the panels
	KeyNames []string // CSV columns naming each series (matrix axes and the like)
	XName    string   // CSV column of the x values of lines
	BarValue string   // CSV column of bar heights, e.g. fraction
	BarExtra string   // CSV column of Bin.Extra; "" for none
	Panels   []*Panel
	Legend   []LegendGroup
}

// Panel is one set of axes of a figure. X and Y are its axis ranges.
type Panel struct {
	Title          string
	XLabel, YLabel string
	X, Y           Range
	Lines          []Line
	Bars           []Bars
	Diagonal       bool // the line y = x (perfect calibration)
	PointMarkers   bool // a dot at every point of every line (measurements, not epochs)
	// Bounds, when set, are the values the quantity can take (0–100 for an
	// accuracy in percent): ±std bands and error bars are cut to them, so an
	// accuracy near 0 does not draw (or stretch the axis to) negative values.
	Bounds *Range
}

// spread is the extent of mean ± std that p draws: cut to its Bounds.
func (p *Panel) spread(mean, std float64) (lo, hi float64) {
	lo, hi = mean-std, mean+std
	if p.Bounds != nil {
		lo, hi = max(lo, p.Bounds.Min), min(hi, p.Bounds.Max)
	}
	return lo, hi
}

// Line is one series of means over replicates, drawn with a ±std band.
type Line struct {
	Keys   []string // values of Figure.KeyNames
	Style  Style
	Points []Point
}

// Point is the mean and sample standard deviation of N replicate values at X
// (Std is 0 when N < 2).
type Point struct {
	X, Mean, Std float64
	N            int
}

// Bars is one histogram: a bar per bin, with error bars where it averages
// replicates.
type Bars struct {
	Keys  []string
	Style Style
	Bins  []Bin
}

// Bin is one bar over [Lo, Hi]: the mean height of N replicates, their
// standard deviation, the samples it counts, and an extra figure for the
// CSV (the mean confidence of a reliability bin). N = 0 draws nothing.
type Bin struct {
	Lo, Hi, Mean, Std float64
	N                 int
	Count, Extra      float64
}

// Render draws f as PNG and SVG and writes its CSV.
func (f *Figure) Render() (pngData, svgData, csvData []byte, err error) {
	if len(f.Panels) == 0 {
		return nil, nil, nil, errors.New("figure has no panels")
	}
	pl := f.plan()
	img := vgimg.NewWith(vgimg.UseWH(pl.width, pl.height), vgimg.UseDPI(figDPI), vgimg.UseBackgroundColor(color.White))
	if _, err := f.draw(draw.New(img), pl); err != nil {
		return nil, nil, nil, err
	}
	var pb bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&pb); err != nil {
		return nil, nil, nil, fmt.Errorf("encode PNG: %w", err)
	}
	svg := vgsvg.New(pl.width, pl.height)
	if _, err := f.draw(draw.New(svg), pl); err != nil {
		return nil, nil, nil, err
	}
	var sb bytes.Buffer
	if _, err := svg.WriteTo(&sb); err != nil {
		return nil, nil, nil, fmt.Errorf("encode SVG: %w", err)
	}
	return pb.Bytes(), svgFallbackFonts(sb.Bytes()), f.CSV(), nil
}

// figPlan is where a figure's parts go: its size, the title's height, the
// area of the panels and the legend's lower-left corner.
type figPlan struct {
	width, height vg.Length
	title         text.Style
	titleH        vg.Length
	panels        vg.Rectangle
	legend        legendPlan
	legendAt      vg.Point
	right         bool // the legend is right of the panels (else below)
}

// plan lays f out: the title on top, shrunk to fit the width; the legend to
// the right of a lone panel when it is at most maxRightLegend of the width
// and fits in the height, else centred below the panels, with the figure
// taller by its height.
func (f *Figure) plan() figPlan {
	pl := figPlan{width: figWidth, height: figHeight, title: textStyle(titleSize)}
	inner := figWidth - 2*figMargin
	for pl.title.Font.Size > 7 && pl.title.Width(f.Title) > inner {
		pl.title.Font.Size -= 0.5
	}
	if f.Title != "" {
		pl.titleH = pl.title.Height(f.Title) + vg.Points(6)
	}
	sty := textStyle(legendSize)
	hasLegend := len(f.Legend) > 0
	if hasLegend && len(f.Panels) == 1 {
		col := layoutColumn(f.Legend, sty)
		if col.size.X <= maxRightLegend*figWidth && col.size.Y <= figHeight-2*figMargin-pl.titleH {
			pl.legend, pl.right = col, true
		}
	}
	if hasLegend && !pl.right {
		pl.legend = layoutRows(f.Legend, sty, inner)
		pl.height += pl.legend.size.Y + vg.Points(8)
	}
	top := pl.height - figMargin - pl.titleH
	pl.panels = vg.Rectangle{Min: vg.Point{X: figMargin, Y: figMargin}, Max: vg.Point{X: pl.width - figMargin, Y: top}}
	switch {
	case !hasLegend:
	case pl.right:
		pl.legendAt = vg.Point{X: pl.width - figMargin - pl.legend.size.X, Y: top - pl.legend.size.Y - vg.Points(4)}
		pl.panels.Max.X = pl.legendAt.X - vg.Points(10)
	default:
		pl.legendAt = vg.Point{X: figMargin + (inner-pl.legend.size.X)/2, Y: figMargin}
		pl.panels.Min.Y = figMargin + pl.legend.size.Y + vg.Points(8)
	}
	return pl
}

// frame is where a drawn figure's parts ended up, for tests: the title's
// box, each panel's data area and the legend's box.
type frame struct {
	title, legend vg.Rectangle
	data          []vg.Rectangle
}

// draw draws f on c as pl says and reports where its parts went.
func (f *Figure) draw(c draw.Canvas, pl figPlan) (frame, error) {
	var fr frame
	c.SetColor(color.White)
	c.Fill(c.Rectangle.Path())
	if f.Title != "" {
		sty := pl.title
		sty.XAlign, sty.YAlign = draw.XCenter, draw.YTop
		at := vg.Point{X: pl.width / 2, Y: pl.height - figMargin}
		c.FillText(sty, at, f.Title)
		w := sty.Width(f.Title)
		fr.title = vg.Rectangle{Min: vg.Point{X: at.X - w/2, Y: at.Y - sty.Height(f.Title)}, Max: vg.Point{X: at.X + w/2, Y: at.Y}}
	}
	plots := make([]*plot.Plot, len(f.Panels))
	for i, p := range f.Panels {
		gp, err := p.plot()
		if err != nil {
			return fr, fmt.Errorf("panel %d: %w", i+1, err)
		}
		plots[i] = gp
	}
	area := draw.Canvas{Canvas: c.Canvas, Rectangle: pl.panels}
	tiles := plot.Align([][]*plot.Plot{plots}, draw.Tiles{Rows: 1, Cols: len(plots), PadX: vg.Points(panelGap)}, area)
	for i, gp := range plots {
		gp.Draw(tiles[0][i])
		fr.data = append(fr.data, gp.DataCanvas(tiles[0][i]).Rectangle)
	}
	if len(pl.legend.items) > 0 {
		pl.legend.draw(c, pl.legendAt)
		fr.legend = vg.Rectangle{Min: pl.legendAt, Max: vg.Point{X: pl.legendAt.X + pl.legend.size.X, Y: pl.legendAt.Y + pl.legend.size.Y}}
	}
	return fr, nil
}

// svgFallbackFonts names metric-compatible fallbacks after Liberation Sans
// in an SVG (it does not embed its fonts), so that a viewer without it
// draws Arial or Helvetica, not a serif font, and the text still fits.
func svgFallbackFonts(svg []byte) []byte {
	return bytes.ReplaceAll(svg, []byte("font-family:Liberation Sans;"),
		[]byte("font-family:'Liberation Sans',Arial,Helvetica,sans-serif;"))
}

// textStyle is the figures' text style at size points.
func textStyle(size float64) text.Style {
	return text.Style{Color: color.Black, Font: font.From(figFont, vg.Points(size)), Handler: plot.DefaultTextHandler}
}

// finite reports whether r is a usable axis range.
func (r Range) finite() bool {
	return !math.IsNaN(r.Min) && !math.IsNaN(r.Max) && !math.IsInf(r.Min, 0) && !math.IsInf(r.Max, 0) && r.Max > r.Min
}
