package report

import (
	"context"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

func nanF() float64 { return math.NaN() }
func infF() float64 { return math.Inf(1) }

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func TestMeanStd(t *testing.T) {
	tests := []struct {
		values    []float64
		mean, std float64
		n         int
	}{
		{[]float64{0.50, 0.52}, 0.51, math.Sqrt(0.0002), 2},
		{[]float64{1, 2, 3, 4}, 2.5, math.Sqrt(5.0 / 3), 4},
		{[]float64{7}, 7, 0, 1},
		{[]float64{2, nanF(), 4, infF()}, 3, math.Sqrt(2), 2},
	}
	for _, tt := range tests {
		mean, std, n := meanStd(tt.values)
		if !near(mean, tt.mean) || !near(std, tt.std) || n != tt.n {
			t.Errorf("meanStd(%v) = %g, %g, %d; want %g, %g, %d", tt.values, mean, std, n, tt.mean, tt.std, tt.n)
		}
	}
	if mean, std, n := meanStd(nil); !math.IsNaN(mean) || std != 0 || n != 0 {
		t.Errorf("meanStd(nil) = %g, %g, %d", mean, std, n)
	}
}

// curve is a train curve of the given per-epoch train and validation accuracies.
func curve(train, val []float64) *artifacts.Table {
	epochs := make([]int64, len(train))
	for i := range epochs {
		epochs[i] = int64(i + 1)
	}
	return &artifacts.Table{Columns: []artifacts.Column{
		{Name: artifacts.ColEpoch, Ints: epochs},
		{Name: artifacts.ColTrainRobustAcc, Floats: train},
		{Name: artifacts.ColValRobustAcc, Floats: val},
	}}
}

func TestCurvesFigureAveragesSeeds(t *testing.T) {
	nan := math.NaN()
	curves := []*artifacts.Table{
		curve([]float64{0.1, 0.2, 0.3}, []float64{0.10, nan, 0.30}),
		curve([]float64{0.3, 0.4, 0.5}, []float64{0.20, nan, 0.40}),
		curve([]float64{0.5, 0.5, 0.5}, []float64{0.5, 0.5, 0.5}),
	}
	tags := []map[string]string{{"method": "AT", "seed": "0"}, {"method": "AT", "seed": "1"}, {"method": "SGLR", "seed": "0"}}
	f, err := CurvesFigure(curves, tags, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Panels) != 2 || len(f.Panels[0].Lines) != 2 || !strings.Contains(f.Title, "over 2 seeds") {
		t.Fatalf("figure %q with %d panels", f.Title, len(f.Panels))
	}
	at := f.Panels[0].Lines[0]
	s := 100 * math.Sqrt(0.02) // std of {0.1, 0.3}, {0.2, 0.4}, … in percent
	want := []Point{{1, 20, s, 2}, {2, 30, s, 2}, {3, 40, s, 2}}
	for i, p := range at.Points {
		if p.X != want[i].X || !near(p.Mean, want[i].Mean) || !near(p.Std, want[i].Std) || p.N != want[i].N {
			t.Errorf("train point %d = %+v, want %+v", i, p, want[i])
		}
	}
	if got := len(f.Panels[1].Lines[0].Points); got != 2 {
		t.Errorf("validation has %d points, want 2 (epoch 2 unvalidated)", got)
	}
	if at.Style.Color == f.Panels[0].Lines[1].Style.Color {
		t.Error("two methods share a colour")
	}
	wantCSV := "panel,method,epoch,mean,std,n\n" +
		"train,AT,1,20,14.14213562,2\ntrain,AT,2,30,14.14213562,2\ntrain,AT,3,40,14.14213562,2\n" +
		"train,SGLR,1,50,,1\ntrain,SGLR,2,50,,1\ntrain,SGLR,3,50,,1\n" +
		"validation,AT,1,15,7.071067812,2\nvalidation,AT,3,35,7.071067812,2\n" +
		"validation,SGLR,1,50,,1\nvalidation,SGLR,2,50,,1\nvalidation,SGLR,3,50,,1\n"
	if got := string(f.CSV()); got != wantCSV {
		t.Errorf("CSV\n%s\nwant\n%s", got, wantCSV)
	}
	checkAxesHoldData(t, f)
}

func TestCurvesFigureRejectsBadCurves(t *testing.T) {
	bad := &artifacts.Table{Columns: []artifacts.Column{{Name: artifacts.ColEpoch, Ints: []int64{1}}, {Name: "loss", Floats: []float64{1}}}}
	if _, err := CurvesFigure([]*artifacts.Table{bad}, nil, true); err == nil || !strings.Contains(err.Error(), "train_robust_acc") {
		t.Errorf("a curve without train_robust_acc: %v", err)
	}
	ragged := curve([]float64{0.1, 0.2}, []float64{0.1})
	if _, err := CurvesFigure([]*artifacts.Table{ragged}, nil, true); err == nil || !strings.Contains(err.Error(), "curve 1") {
		t.Errorf("columns of different lengths: %v", err)
	}
	noEpoch := &artifacts.Table{Columns: []artifacts.Column{{Name: artifacts.ColTrainRobustAcc, Floats: []float64{1}}}}
	if _, err := CurvesFigure([]*artifacts.Table{noEpoch}, nil, true); err == nil || !strings.Contains(err.Error(), "epoch") {
		t.Errorf("a curve without epoch: %v", err)
	}
}

// histTable is a calibrate-like hist table: bins [0, 0.5) and [0.5, 1] with
// the counts given per checkpoint label.
func histTable(counts map[string][2]int64, labels ...string) *artifacts.Table {
	t := &artifacts.Table{Columns: []artifacts.Column{
		{Name: "checkpoint", Strings: []string{}}, {Name: "attack", Strings: []string{}},
		{Name: "lo", Floats: []float64{}}, {Name: "hi", Floats: []float64{}}, {Name: "count", Ints: []int64{}},
	}}
	for _, l := range labels {
		for b := 0; b < 2; b++ {
			t.Columns[0].Strings = append(t.Columns[0].Strings, l)
			t.Columns[1].Strings = append(t.Columns[1].Strings, "pgd")
			t.Columns[2].Floats = append(t.Columns[2].Floats, float64(b)/2)
			t.Columns[3].Floats = append(t.Columns[3].Floats, float64(b+1)/2)
			t.Columns[4].Ints = append(t.Columns[4].Ints, counts[l][b])
		}
	}
	return t
}

func TestConfidenceFigurePanelPerCheckpointColourPerMethod(t *testing.T) {
	counts := map[string][2]int64{"method=AT/best": {30, 10}, "method=AT/final": {10, 30}, "method=SGLR/best": {20, 20}, "method=SGLR/final": {25, 15}}
	tables := []*artifacts.Table{histTable(counts, "method=AT/best", "method=SGLR/best", "method=AT/final", "method=SGLR/final")}
	figs, err := ConfidenceFigures(tables, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(figs) != 1 || figs[0].Name != "confidence-pgd" {
		t.Fatalf("%d figures, first %q", len(figs), figs[0].Name)
	}
	f := figs[0]
	if len(f.Panels) != 2 || f.Panels[0].Title != "best checkpoint" || f.Panels[1].Title != "final checkpoint" {
		t.Fatalf("panels %d", len(f.Panels))
	}
	best := f.Panels[0].Bars
	if len(best) != 2 || best[0].Style.Color == best[1].Style.Color || best[0].Style != f.Panels[1].Bars[0].Style {
		t.Errorf("styles: best %v %v, final %v", best[0].Style, best[1].Style, f.Panels[1].Bars[0].Style)
	}
	if b := best[0].Bins; !near(b[0].Mean, 0.75) || !near(b[1].Mean, 0.25) || b[0].Count != 30 {
		t.Errorf("AT best bins %+v, want fractions 0.75 and 0.25", b)
	}
	if f.Legend[0].Title != "method" || f.Legend[0].Entries[0].Kind != entryBar {
		t.Errorf("legend %+v", f.Legend)
	}
	wantCSV := "panel,method,checkpoint,lo,hi,fraction,std,n,count\n" +
		"best checkpoint,AT,best,0,0.5,0.75,,1,30\nbest checkpoint,AT,best,0.5,1,0.25,,1,10\n" +
		"best checkpoint,SGLR,best,0,0.5,0.5,,1,20\nbest checkpoint,SGLR,best,0.5,1,0.5,,1,20\n" +
		"final checkpoint,AT,final,0,0.5,0.25,,1,10\nfinal checkpoint,AT,final,0.5,1,0.75,,1,30\n" +
		"final checkpoint,SGLR,final,0,0.5,0.625,,1,25\nfinal checkpoint,SGLR,final,0.5,1,0.375,,1,15\n"
	if got := string(f.CSV()); got != wantCSV {
		t.Errorf("CSV\n%s\nwant\n%s", got, wantCSV)
	}
	checkAxesHoldData(t, f)
}

func TestConfidenceFigureAveragesSeeds(t *testing.T) {
	a := histTable(map[string][2]int64{"best": {90, 10}}, "best")
	b := histTable(map[string][2]int64{"best": {70, 30}}, "best")
	figs, err := ConfidenceFigures([]*artifacts.Table{a, b}, []map[string]string{{"seed": "0"}, {"seed": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	f := figs[0]
	if len(f.Panels) != 1 || len(f.Panels[0].Bars) != 1 || !strings.Contains(f.Title, "2 seeds") {
		t.Fatalf("figure %q: %d panels", f.Title, len(f.Panels))
	}
	bin := f.Panels[0].Bars[0].Bins[0]
	if !near(bin.Mean, 0.8) || !near(bin.Std, math.Sqrt(0.02)) || bin.N != 2 || bin.Count != 160 {
		t.Errorf("bin %+v, want mean 0.8, std 0.1414, n 2, count 160", bin)
	}
	checkAxesHoldData(t, f)
	bad := histTable(map[string][2]int64{"best": {-1, 1}}, "best")
	if _, err := ConfidenceFigures([]*artifacts.Table{bad}, nil); err == nil || !strings.Contains(err.Error(), "count") {
		t.Errorf("a negative count: %v", err)
	}
}

func TestAccuracyVsAveragesSeeds(t *testing.T) {
	var tables []*artifacts.Table
	var tags []map[string]string
	for _, labels := range []string{"hard", "sglr"} {
		for _, noise := range []string{"0", "0.4"} {
			for seed, acc := range []float64{0.5, 0.7} {
				tables = append(tables, metricsTable(evalRow{"best", "pgd", acc}))
				tags = append(tags, map[string]string{"labels": labels, "noise": noise, "seed": string(rune('0' + seed))})
			}
		}
	}
	records, err := Records(tables, tags)
	if err != nil {
		t.Fatal(err)
	}
	figs, err := AccuracyVsFigures(records, []string{"accuracy"}, "noise", true)
	if err != nil {
		t.Fatal(err)
	}
	f := figs[0]
	if f.Name != "accuracy-vs-noise" || len(f.Panels[0].Lines) != 2 || !reflect.DeepEqual(f.KeyNames, []string{"labels"}) {
		t.Fatalf("figure %q keys %q lines %d", f.Name, f.KeyNames, len(f.Panels[0].Lines))
	}
	p := f.Panels[0].Lines[0].Points[1]
	if p.X != 0.4 || !near(p.Mean, 60) || !near(p.Std, 100*math.Sqrt(0.02)) || p.N != 2 {
		t.Errorf("point %+v, want x 0.4, mean 60, std 14.14, n 2", p)
	}
	checkAxesHoldData(t, f)
	if _, err := AccuracyVsFigures(nil, []string{"accuracy"}, "noise", true); err == nil {
		t.Error("no records: no error")
	}
}

func TestBuildFiguresHoldTheirData(t *testing.T) {
	in := fullInputs()
	records, err := tableRecords(in)
	if err != nil {
		t.Fatal(err)
	}
	figs, err := drawFigures(context.Background(), in, defaultOptions(), []string{PlotCurves, PlotReliability, PlotConfidence, PlotAccuracyVs}, records)
	if err != nil {
		t.Fatal(err)
	}
	if len(figs) != 5 {
		t.Fatalf("%d figures, want 5", len(figs))
	}
	for _, f := range figs {
		checkAxesHoldData(t, f)
	}
}

// checkAxesHoldData checks that every panel's axis ranges hold every point
// with its band and every bar with its error bar, the tallest with room above.
func checkAxesHoldData(t *testing.T, f *Figure) {
	t.Helper()
	for i, p := range f.Panels {
		if !p.X.finite() || !p.Y.finite() {
			t.Errorf("%s panel %d: ranges %v %v", f.Name, i+1, p.X, p.Y)
			continue
		}
		in := func(r Range, v float64) bool { return v >= r.Min && v <= r.Max }
		for _, l := range p.Lines {
			for _, pt := range l.Points {
				lo, hi := p.spread(pt.Mean, pt.Std)
				if !in(p.X, pt.X) || !in(p.Y, lo) || !in(p.Y, hi) {
					t.Errorf("%s panel %d: point %+v outside x %v y %v", f.Name, i+1, pt, p.X, p.Y)
				}
			}
		}
		for _, b := range p.Bars {
			for _, bin := range b.Bins {
				if bin.N == 0 {
					continue
				}
				if _, hi := p.spread(bin.Mean, bin.Std); !in(p.X, bin.Lo) || !in(p.X, bin.Hi) || hi >= p.Y.Max || p.Y.Min > 0 {
					t.Errorf("%s panel %d: bin %+v outside x %v y %v (want room above)", f.Name, i+1, bin, p.X, p.Y)
				}
			}
		}
	}
}

func TestBandsStayWithinAnAccuracysBounds(t *testing.T) {
	// Epoch 1: 0 % and 10 %, mean 5 ± 7.07: the band would reach −2.07 %.
	curves := []*artifacts.Table{curve([]float64{0, 0.5}, []float64{0, 0.5}), curve([]float64{0.1, 0.6}, []float64{0.1, 0.6})}
	f, err := CurvesFigure(curves, []map[string]string{{"seed": "0"}, {"seed": "1"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	p := f.Panels[0]
	if p.Y.Min != 0 {
		t.Errorf("y axis from %g, want 0", p.Y.Min)
	}
	for _, xy := range bandPolygon(p.Lines[0].Points, p.spread) {
		if xy.Y < 0 || xy.Y > 100 {
			t.Errorf("band reaches %g %%", xy.Y)
		}
	}
	if lo, hi := (&Panel{}).spread(5, 7); lo != -2 || hi != 12 {
		t.Errorf("unbounded spread = %g, %g; want -2, 12", lo, hi)
	}
	checkAxesHoldData(t, f)
}
