package report

import (
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// A figure's legend sits outside its panels — in one column to the right of
// a single panel when it is narrow enough, else below the panels in as many
// columns as fit — so it never covers data or the title. It is drawn here
// rather than by gonum's plot.Legend, which only draws inside a plot's data
// area and cannot flow entries into columns.

// entryKind is what a legend entry's thumbnail shows.
type entryKind int

const (
	entryLine entryKind = iota // a line segment in the entry's colour and dash pattern
	entryBar                   // a filled, outlined swatch, for histograms and bars
)

// LegendGroup is a titled set of legend entries, e.g. the colours of the
// methods or the dash patterns of the noise rates.
type LegendGroup struct {
	Title   string
	Entries []LegendEntry
}

// LegendEntry is one legend line: a thumbnail drawn in Style, and a label.
type LegendEntry struct {
	Label string
	Style Style
	Kind  entryKind
}

// Legend geometry, in points.
const (
	legendThumb  = 22  // thumbnail width
	legendGap    = 4   // between thumbnail and label
	legendColGap = 12  // between columns
	legendRow    = 1.5 // row height, in font sizes
	legendSpace  = 0.5 // extra space between groups, in rows
)

// legendItem is a placed title or entry: its row box's lower-left corner.
type legendItem struct {
	at    vg.Point
	title string // non-empty: a group title
	entry LegendEntry
}

// legendPlan is a laid-out legend: its size and placed items, relative to
// its lower-left corner.
type legendPlan struct {
	size  vg.Point
	items []legendItem
	style text.Style
}

// layoutColumn lays out groups in one column: each title on a row of its
// own, then one entry per row.
func layoutColumn(groups []LegendGroup, sty text.Style) legendPlan {
	row := vg.Length(legendRow) * sty.Font.Size
	var items []legendItem
	var width vg.Length
	y := vg.Length(0) // rows go downwards from 0; shifted up at the end
	for g, group := range groups {
		if g > 0 {
			y -= vg.Length(legendSpace) * row
		}
		if group.Title != "" {
			y -= row
			items = append(items, legendItem{at: vg.Point{Y: y}, title: group.Title})
			width = max(width, sty.Width(group.Title))
		}
		for _, e := range group.Entries {
			y -= row
			items = append(items, legendItem{at: vg.Point{Y: y}, entry: e})
			width = max(width, entryWidth(e, sty))
		}
	}
	return shiftUp(legendPlan{size: vg.Point{X: width, Y: -y}, items: items, style: sty})
}

// layoutRows lays out groups below the panels, at most maxWidth wide: per
// group, its title at the left of its first row and its entries flowing
// left to right in equal columns, as many as fit.
func layoutRows(groups []LegendGroup, sty text.Style, maxWidth vg.Length) legendPlan {
	row := vg.Length(legendRow) * sty.Font.Size
	var titleW, colW vg.Length
	for _, group := range groups {
		if group.Title != "" {
			titleW = max(titleW, sty.Width(group.Title+":")+legendColGap)
		}
		for _, e := range group.Entries {
			colW = max(colW, entryWidth(e, sty)+legendColGap)
		}
	}
	cols := max(1, int((maxWidth-titleW+legendColGap)/max(colW, 1)))
	var items []legendItem
	var width vg.Length
	y := vg.Length(0)
	for g, group := range groups {
		if g > 0 {
			y -= vg.Length(legendSpace) * row
		}
		y -= row
		if group.Title != "" {
			items = append(items, legendItem{at: vg.Point{Y: y}, title: group.Title + ":"})
		}
		for i, e := range group.Entries {
			if i > 0 && i%cols == 0 {
				y -= row
			}
			x := titleW + vg.Length(i%cols)*colW
			items = append(items, legendItem{at: vg.Point{X: x, Y: y}, entry: e})
			width = max(width, x+entryWidth(e, sty))
		}
	}
	return shiftUp(legendPlan{size: vg.Point{X: width, Y: -y}, items: items, style: sty})
}

// shiftUp moves items laid out below 0 so that the legend's lower-left
// corner is at the origin.
func shiftUp(p legendPlan) legendPlan {
	for i := range p.items {
		p.items[i].at.Y += p.size.Y
	}
	return p
}

// entryWidth is the width of an entry: thumbnail, gap and label.
func entryWidth(e LegendEntry, sty text.Style) vg.Length {
	return legendThumb + legendGap + sty.Width(e.Label)
}

// draw draws the legend with its lower-left corner at origin.
func (p legendPlan) draw(c draw.Canvas, origin vg.Point) {
	row := vg.Length(legendRow) * p.style.Font.Size
	sty := p.style
	sty.YAlign = draw.YCenter
	for _, it := range p.items {
		at := vg.Point{X: origin.X + it.at.X, Y: origin.Y + it.at.Y}
		mid := at.Y + row/2
		if it.title != "" {
			c.FillText(sty, vg.Point{X: at.X, Y: mid}, it.title)
			continue
		}
		drawThumb(c, it.entry, vg.Rectangle{Min: at, Max: vg.Point{X: at.X + legendThumb, Y: at.Y + row}})
		c.FillText(sty, vg.Point{X: at.X + legendThumb + legendGap, Y: mid}, it.entry.Label)
	}
}

// drawThumb draws an entry's thumbnail in r.
func drawThumb(c draw.Canvas, e LegendEntry, r vg.Rectangle) {
	col := e.Style.color()
	mid := (r.Min.Y + r.Max.Y) / 2
	h := r.Max.Y - r.Min.Y
	switch e.Kind {
	case entryBar:
		box := vg.Rectangle{Min: vg.Point{X: r.Min.X + 2, Y: mid - h*0.3}, Max: vg.Point{X: r.Max.X - 2, Y: mid + h*0.3}}
		c.SetColor(withAlpha(col, barAlpha))
		c.Fill(box.Path())
		c.SetLineStyle(draw.LineStyle{Color: col, Width: vg.Points(0.8), Dashes: e.Style.dashes()})
		c.Stroke(box.Path())
	default:
		c.StrokeLine2(draw.LineStyle{Color: col, Width: vg.Points(lineWidth), Dashes: e.Style.dashes()},
			r.Min.X, mid, r.Max.X, mid)
	}
	if g := e.Style.marker(); g != nil {
		c.DrawGlyphNoClip(draw.GlyphStyle{Color: col, Radius: vg.Points(markerRadius), Shape: g},
			vg.Point{X: (r.Min.X + r.Max.X) / 2, Y: mid})
	}
}
