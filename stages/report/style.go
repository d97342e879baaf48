package report

import (
	"image/color"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// How series are told apart. A figure gives each method — the values of one
// matrix axis, chosen by methodAxis — its own colour from a colour-blind-safe
// palette, and each combination of the other varying axes its own dash
// pattern. Only when there are more methods than colours do colours come
// back, and then each pass through the palette adds a marker shape, so no two
// methods look alike.

// palette is Okabe and Ito's colour-blind-safe palette (Color Universal
// Design, 2008), its yellow darkened to show on white, black last.
var palette = []color.NRGBA{
	{0x00, 0x72, 0xB2, 0xFF}, // blue
	{0xD5, 0x5E, 0x00, 0xFF}, // vermillion
	{0x00, 0x9E, 0x73, 0xFF}, // bluish green
	{0xCC, 0x79, 0xA7, 0xFF}, // reddish purple
	{0xE6, 0x9F, 0x00, 0xFF}, // orange
	{0x56, 0xB4, 0xE9, 0xFF}, // sky blue
	{0xB8, 0xA2, 0x00, 0xFF}, // yellow, darkened
	{0x00, 0x00, 0x00, 0xFF}, // black
}

// neutral draws legend entries that show a line style, not a method.
var neutral = color.NRGBA{0x55, 0x55, 0x55, 0xFF}

// dashPatterns are the line styles, solid first (lengths in points).
var dashPatterns = [][]float64{
	nil,
	{5, 2.5},
	{1.2, 1.8},
	{6, 2, 1.2, 2},
	{9, 3},
	{4, 1.5, 1.2, 1.5, 1.2, 1.5},
}

// markerShapes are the glyphs of the markers that tell methods apart once
// the palette is used up.
var markerShapes = []draw.GlyphDrawer{
	draw.CircleGlyph{}, draw.TriangleGlyph{}, draw.SquareGlyph{}, draw.PyramidGlyph{},
	draw.CrossGlyph{}, draw.PlusGlyph{}, draw.RingGlyph{}, draw.BoxGlyph{},
}

// Style is how one series is drawn: a palette colour (−1: neutral grey), a
// dash pattern and a marker shape (−1: none).
type Style struct {
	Color, Dash, Marker int
}

// color is the style's colour.
func (s Style) color() color.NRGBA {
	if s.Color < 0 {
		return neutral
	}
	return palette[s.Color%len(palette)]
}

// dashes is the style's dash pattern.
func (s Style) dashes() []vg.Length {
	p := dashPatterns[s.Dash%len(dashPatterns)]
	if p == nil {
		return nil
	}
	out := make([]vg.Length, len(p))
	for i, v := range p {
		out[i] = vg.Points(v)
	}
	return out
}

// marker is the style's marker glyph (nil: none).
func (s Style) marker() draw.GlyphDrawer {
	if s.Marker < 0 {
		return nil
	}
	return markerShapes[s.Marker%len(markerShapes)]
}

// withAlpha is c with alpha a.
func withAlpha(c color.NRGBA, a uint8) color.NRGBA {
	c.A = a
	return c
}

// methodAxis picks, among the axes that vary between series, the one whose
// values are the methods being compared: an axis named method; else a
// non-numeric axis before a numeric one (noise rates and eps are settings,
// not methods) and one that is not an eval column (checkpoint, attack,
// split); then the one with the most distinct values; the first on a tie.
// It returns −1 when no axis varies.
func methodAxis(names []string, keys [][]string) int {
	best, bestScore := -1, -1
	for i, n := range names {
		values := distinct(keys, i)
		if len(values) < 2 {
			continue
		}
		score := min(len(values), 999)
		if n == "method" {
			score += 1_000_000
		}
		if !allNumeric(values) {
			score += 100_000
		}
		if n != ColCheckpoint && n != "attack" && n != "split" {
			score += 10_000
		}
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	return best
}

// Styling is the styles of a figure's series and the legend that explains them.
type Styling struct {
	Styles []Style
	Legend []LegendGroup
}

// styleSeries gives series i, whose values of the axes names are keys[i],
// its style: a colour per value of the method axis and a dash pattern per
// combination of the other varying axes, both in first-appearance order.
// The legend has a group for the colours, titled by the method axis, and
// one for the dash patterns, titled by the other axes; its entries are
// drawn as kind. A lone series, or
// series that differ in nothing, get the first style and no legend.
func styleSeries(names []string, keys [][]string, kind entryKind) Styling {
	out := Styling{Styles: make([]Style, len(keys))}
	for i := range out.Styles {
		out.Styles[i] = Style{Marker: -1}
	}
	m := methodAxis(names, keys)
	if m < 0 {
		return out
	}
	var others []int
	for i := range names {
		if i != m && len(distinct(keys, i)) > 1 {
			others = append(others, i)
		}
	}
	colours := distinct(keys, m)
	dashValues := []string{}
	dashOf := map[string]int{}
	for i, k := range keys {
		out.Styles[i].Color = slices.Index(colours, k[m]) % len(palette)
		out.Styles[i].Marker = slices.Index(colours, k[m])/len(palette) - 1
		combo := joinAt(k, others, " ")
		if _, ok := dashOf[combo]; !ok {
			dashOf[combo] = len(dashValues)
			dashValues = append(dashValues, combo)
		}
		out.Styles[i].Dash = dashOf[combo]
	}
	group := LegendGroup{Title: names[m]}
	for j, v := range colours {
		group.Entries = append(group.Entries, LegendEntry{Label: v, Kind: kind, Style: Style{Color: j % len(palette), Marker: j/len(palette) - 1}})
	}
	out.Legend = append(out.Legend, group)
	if len(others) > 0 {
		titles := make([]string, len(others))
		for j, o := range others {
			titles[j] = names[o]
		}
		group := LegendGroup{Title: strings.Join(titles, ", ")}
		for j, v := range dashValues {
			group.Entries = append(group.Entries, LegendEntry{Label: v, Kind: kind, Style: Style{Color: -1, Dash: j, Marker: -1}})
		}
		out.Legend = append(out.Legend, group)
	}
	return out
}

// distinct lists the values of column i of keys in first-appearance order.
func distinct(keys [][]string, i int) []string {
	var out []string
	for _, k := range keys {
		if i < len(k) && !slices.Contains(out, k[i]) {
			out = append(out, k[i])
		}
	}
	return out
}

// allNumeric reports whether every value parses as a number.
func allNumeric(values []string) bool {
	for _, v := range values {
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			return false
		}
	}
	return true
}

// joinAt joins the values of k at the indices idx.
func joinAt(k []string, idx []int, sep string) string {
	parts := make([]string, len(idx))
	for j, i := range idx {
		parts[j] = k[i]
	}
	return strings.Join(parts, sep)
}
