package report

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/recorder"
)

func TestNiceTicks(t *testing.T) {
	tests := []struct {
		lo, hi float64
		want   string // labels joined by spaces
	}{
		{0, 94, "0 20 40 60 80"},
		{0, 1.04, "0 0.2 0.4 0.6 0.8 1"},
		{0, 200, "0 50 100 150 200"},
		{0, 30, "0 10 20 30"},
		{27, 88, "30 40 50 60 70 80"},
		{-0.032, 0.832, "0 0.2 0.4 0.6 0.8"},
		{0.5, 1.5, "0.6 0.8 1 1.2 1.4"},
		{0, 0.0005, "0 0.0001 0.0002 0.0003 0.0004 0.0005"},
		{-12, 7, "-10 -5 0 5"},
		{0, 0.43, "0 0.1 0.2 0.3 0.4"},
		{1, 1, ""},
	}
	for _, tt := range tests {
		var labels []string
		for _, tk := range (niceTicks{}).Ticks(tt.lo, tt.hi) {
			labels = append(labels, tk.Label)
			if tk.Value < tt.lo || tk.Value > tt.hi {
				t.Errorf("[%g, %g]: tick %g outside the axis", tt.lo, tt.hi, tk.Value)
			}
		}
		if got := strings.Join(labels, " "); got != tt.want {
			t.Errorf("Ticks(%g, %g) = %q, want %q", tt.lo, tt.hi, got, tt.want)
		}
	}
}

func TestTickLabel(t *testing.T) {
	tests := []struct {
		v, step float64
		want    string
	}{
		{50, 10, "50"}, {0.25, 0.05, "0.25"}, {-1.5, 0.5, "-1.5"}, {-1e-12, 0.1, "0"},
		{0.30000000000000004, 0.1, "0.3"}, {1e6, 2e5, "1000000"}, {0.0002, 0.0001, "0.0002"},
	}
	for _, tt := range tests {
		if got := tickLabel(tt.v, tt.step); got != tt.want {
			t.Errorf("tickLabel(%g, %g) = %q, want %q", tt.v, tt.step, got, tt.want)
		}
	}
}

func TestExtentPadded(t *testing.T) {
	tests := []struct {
		name   string
		values []float64
		pad    float64
		zero   bool
		want   Range
	}{
		{"no data", nil, 0.05, true, Range{0, 1}},
		{"accuracy from near 0 starts at 0", []float64{5, 66}, 0.05, true, Range{0, 69.05}},
		{"far from 0 keeps its padding", []float64{40, 60}, 0.05, true, Range{39, 61}},
		{"negative data are not anchored", []float64{-2, 2}, 0.25, true, Range{-3, 3}},
		{"without zero the padding stays", []float64{0, 0.8}, 0.05, false, Range{-0.04, 0.84}},
		{"one value", []float64{3}, 0.05, false, Range{2.5, 3.5}},
		{"NaN and Inf ignored", []float64{10, nanF(), 20, infF()}, 0.1, false, Range{9, 21}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e extent
			e.add(tt.values...)
			got := e.padded(tt.pad, tt.zero)
			if !near(got.Min, tt.want.Min) || !near(got.Max, tt.want.Max) {
				t.Errorf("padded = %v, want %v", got, tt.want)
			}
			if e.any && (got.Min > e.lo || got.Max < e.hi) {
				t.Errorf("range %v does not hold the data [%g, %g]", got, e.lo, e.hi)
			}
		})
	}
}

func TestMethodAxis(t *testing.T) {
	tests := []struct {
		name  string
		names []string
		keys  [][]string
		want  int
	}{
		{"named method wins", []string{"labels", "method"}, [][]string{{"a", "x"}, {"b", "y"}, {"c", "x"}}, 1},
		{"text before numbers", []string{"labels", "noise"}, [][]string{{"hard", "0"}, {"hard", "0.2"}, {"sglr", "0.4"}, {"sglr", "0.6"}}, 0},
		{"not checkpoint or attack", []string{"attack", "checkpoint", "labels"},
			[][]string{{"clean", "best", "hard"}, {"pgd", "final", "sglr"}, {"cw", "best", "hard"}}, 2},
		{"most values", []string{"a", "b"}, [][]string{{"1", "x"}, {"2", "y"}, {"1", "z"}}, 1},
		{"nothing varies", []string{"a"}, [][]string{{"1"}, {"1"}}, -1},
	}
	for _, tt := range tests {
		if got := methodAxis(tt.names, tt.keys); got != tt.want {
			t.Errorf("%s: methodAxis = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestStyleSeriesColourPerMethodDashPerOtherAxis(t *testing.T) {
	names := []string{"method", "noise"}
	keys := [][]string{{"AT", "0.2"}, {"AT", "0.4"}, {"SGLR", "0.2"}, {"SGLR", "0.4"}}
	s := styleSeries(names, keys, entryLine)
	want := []Style{{0, 0, -1}, {0, 1, -1}, {1, 0, -1}, {1, 1, -1}}
	if !reflect.DeepEqual(s.Styles, want) {
		t.Errorf("styles %v, want %v", s.Styles, want)
	}
	if len(s.Legend) != 2 || s.Legend[0].Title != "method" || s.Legend[1].Title != "noise" ||
		len(s.Legend[0].Entries) != 2 || s.Legend[1].Entries[1].Label != "0.4" || s.Legend[1].Entries[1].Style.Color != -1 {
		t.Errorf("legend %+v", s.Legend)
	}
	if one := styleSeries(names, keys[:1], entryLine); len(one.Legend) != 0 || one.Styles[0] != (Style{0, 0, -1}) {
		t.Errorf("a lone series: %+v", one)
	}
}

func TestStyleSeriesNeverRepeatsALook(t *testing.T) {
	for _, n := range []int{2, len(palette), len(palette) + 1, 3*len(palette) + 2} {
		var keys [][]string
		for i := 0; i < n; i++ {
			keys = append(keys, []string{fmt.Sprint("m", i)})
		}
		s := styleSeries([]string{"method"}, keys, entryLine)
		seen := map[Style]bool{}
		colours := map[int]bool{}
		for i, st := range s.Styles {
			if seen[st] {
				t.Errorf("%d methods: method %d repeats style %v", n, i, st)
			}
			seen[st] = true
			if i < len(palette) {
				if colours[st.Color] || st.Marker != -1 {
					t.Errorf("%d methods: method %d has colour %d marker %d, want a colour of its own and no marker", n, i, st.Color, st.Marker)
				}
				colours[st.Color] = true
			}
		}
		if len(s.Legend) != 1 || len(s.Legend[0].Entries) != n {
			t.Errorf("%d methods: legend %+v", n, s.Legend)
		}
	}
}

// legendFigure is a one-panel figure with a legend of labels.
func legendFigure(panels int, labels ...string) *Figure {
	f := &Figure{Name: "f", Title: "A title that is long enough to matter for the layout"}
	group := LegendGroup{Title: "method"}
	for i, l := range labels {
		group.Entries = append(group.Entries, LegendEntry{Label: l, Style: Style{Color: i, Marker: -1}})
	}
	f.Legend = []LegendGroup{group}
	for p := 0; p < panels; p++ {
		line := Line{Points: []Point{{X: 0, Mean: 0}, {X: 10, Mean: 90, Std: 5, N: 2}}}
		f.Panels = append(f.Panels, &Panel{Title: fmt.Sprint("panel ", p), XLabel: "epoch", YLabel: "accuracy",
			X: Range{0, 10}, Y: Range{0, 100}, Lines: []Line{line}})
	}
	return f
}

func TestLegendIsOutsideTheDataAndTitle(t *testing.T) {
	long := strings.Repeat("a long method name ", 3)
	tests := []struct {
		name  string
		fig   *Figure
		right bool
	}{
		{"narrow legend right of one panel", legendFigure(1, "AT", "AT+SGLR"), true},
		{"wide legend below one panel", legendFigure(1, "AT", long), false},
		{"legend below two panels", legendFigure(2, "AT", "AT+SGLR", "TRADES"), false},
		{"too many entries for a column", legendFigure(1, strings.Split(strings.Repeat("x ", 30), " ")...), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pl := tt.fig.plan()
			if pl.right != tt.right {
				t.Errorf("legend right = %v, want %v", pl.right, tt.right)
			}
			c := draw.NewCanvas(&recorder.Canvas{}, pl.width, pl.height)
			fr, err := tt.fig.draw(c, pl)
			if err != nil {
				t.Fatal(err)
			}
			whole := vg.Rectangle{Max: vg.Point{X: pl.width, Y: pl.height}}
			if len(fr.data) != len(tt.fig.Panels) {
				t.Fatalf("%d data areas for %d panels", len(fr.data), len(tt.fig.Panels))
			}
			for i, d := range fr.data {
				if overlap(fr.legend, d) {
					t.Errorf("legend %v overlaps the data of panel %d %v", fr.legend, i+1, d)
				}
				if overlap(fr.title, d) {
					t.Errorf("title %v overlaps the data of panel %d %v", fr.title, i+1, d)
				}
				if !inside(d, whole) || d.Size().X < 100 || d.Size().Y < 100 {
					t.Errorf("data area %d %v: not a sizeable area of %v", i+1, d, whole)
				}
			}
			if overlap(fr.legend, fr.title) || !inside(fr.legend, whole) || !inside(fr.title, whole) {
				t.Errorf("legend %v, title %v, figure %v", fr.legend, fr.title, whole)
			}
			if pl.width != figWidth || pl.height < figHeight {
				t.Errorf("figure %v × %v, want %v wide and at least %v high", pl.width, pl.height, figWidth, figHeight)
			}
		})
	}
}

// overlap reports whether two rectangles share more than an edge.
func overlap(a, b vg.Rectangle) bool {
	return a.Min.X < b.Max.X && b.Min.X < a.Max.X && a.Min.Y < b.Max.Y && b.Min.Y < a.Max.Y
}

// inside reports whether a lies within b.
func inside(a, b vg.Rectangle) bool {
	return a.Min.X >= b.Min.X && a.Min.Y >= b.Min.Y && a.Max.X <= b.Max.X && a.Max.Y <= b.Max.Y
}

func TestDodgeSharesABinWithoutOverlap(t *testing.T) {
	for _, k := range []int{1, 2, 3, 5} {
		prevHi := 0.0
		for i := 0; i < k; i++ {
			lo, hi := dodge(0.2, 0.4, i, k)
			if lo < 0.2 || hi > 0.4 || !(hi > lo) || lo < prevHi-1e-12 {
				t.Errorf("dodge(0.2, 0.4, %d, %d) = [%g, %g] after %g: want a slice of the bin after the last", i, k, lo, hi, prevHi)
			}
			prevHi = hi
		}
		if lo, hi := dodge(0.2, 0.4, 0, 1); k == 1 && (lo != 0.2 || hi != 0.4) {
			t.Errorf("a lone bar takes [%g, %g], want the whole bin", lo, hi)
		}
	}
}
