package report

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/xml"
	"errors"
	"image"
	_ "image/png"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/stages"
	"github.com/sglr-pipe/sglr-pipe/stages/stagetest"
)

// trainCurve is a train-stage-like curve: robust accuracy rising then
// overfitting, validated every other epoch (NaN in between) and at the end.
func trainCurve(epochs int, peak float64) *artifacts.Table {
	c := &artifacts.Table{Columns: []artifacts.Column{
		{Name: artifacts.ColEpoch, Ints: []int64{}},
		{Name: "train_robust_acc", Floats: []float64{}},
		{Name: "val_robust_acc", Floats: []float64{}},
		{Name: "val_clean_acc", Floats: []float64{}},
	}}
	for e := 1; e <= epochs; e++ {
		val := math.NaN()
		clean := math.NaN()
		if e%2 == 0 || e == epochs {
			val = peak - 0.02*math.Abs(float64(e-epochs/2))
			clean = val + 0.3
		}
		c.Columns[0].Ints = append(c.Columns[0].Ints, int64(e))
		c.Columns[1].Floats = append(c.Columns[1].Floats, 0.2+0.05*float64(e))
		c.Columns[2].Floats = append(c.Columns[2].Floats, val)
		c.Columns[3].Floats = append(c.Columns[3].Floats, clean)
	}
	return c
}

// binsTable is a calibrate-like reliability table of 5 bins per checkpoint.
func binsTable(withAccuracy bool) *artifacts.Table {
	t := &artifacts.Table{}
	var ck, attack []string
	var bin, count []int64
	var lo, hi, acc, conf []float64
	for _, c := range []string{"best", "final"} {
		for b := 0; b < 5; b++ {
			ck, attack = append(ck, c), append(attack, "pgd20")
			bin, count = append(bin, int64(b)), append(count, int64(10*b))
			lo, hi = append(lo, float64(b)/5), append(hi, float64(b+1)/5)
			a, c := float64(b)/6, (float64(b)+0.5)/5
			if b == 0 { // an empty bin: calibrate writes NaN
				a, c = math.NaN(), math.NaN()
			}
			acc, conf = append(acc, a), append(conf, c)
		}
	}
	t.Columns = []artifacts.Column{
		{Name: "checkpoint", Strings: ck}, {Name: "attack", Strings: attack}, {Name: "bin", Ints: bin},
		{Name: "lo", Floats: lo}, {Name: "hi", Floats: hi}, {Name: "count", Ints: count},
	}
	if withAccuracy {
		t.Columns = append(t.Columns, artifacts.Column{Name: "accuracy", Floats: acc}, artifacts.Column{Name: "confidence", Floats: conf})
	}
	return t
}

// noiseTables are accuracy tables over labels × noise (Table B.2-like).
func noiseTables() ([]*artifacts.Table, []map[string]string) {
	var tables []*artifacts.Table
	var tags []map[string]string
	for _, labels := range []string{"hard", "sglr"} {
		for i, noise := range []string{"0.0", "0.2", "0.4"} {
			acc := 0.8 - 0.2*float64(i)
			if labels == "sglr" {
				acc += 0.05
			}
			tables = append(tables, metricsTable(evalRow{"best", "pgd20", acc}, evalRow{"final", "pgd20", acc - 0.1}))
			tags = append(tags, map[string]string{"labels": labels, "noise": noise})
		}
	}
	return tables, tags
}

func fullInputs() Inputs {
	tables, tableTags := noiseTables()
	return Inputs{
		Tables: tables, TableTags: tableTags,
		Curves:    []*artifacts.Table{trainCurve(8, 0.5), trainCurve(8, 0.6)},
		CurveTags: []map[string]string{{"labels": "hard"}, {"labels": "sglr"}},
		Bins:      []*artifacts.Table{binsTable(true)},
		BinTags:   []map[string]string{{"labels": "sglr"}},
		Hist:      []*artifacts.Table{binsTable(false)},
		HistTags:  []map[string]string{{"labels": "sglr"}},
	}
}

func defaultOptions() Options {
	return Options{Title: "Robustness", X: "noise", Layout: Layout{Rows: []string{"labels"}, Cols: []string{"noise"},
		Metrics: []string{"accuracy"}, BestFinal: true, Aggregate: AggregateMeanStd, Digits: 1, Percent: true}}
}

func TestBuildWritesTablesAndValidDeterministicPlots(t *testing.T) {
	files, md, err := Build(context.Background(), fullInputs(), defaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	wantNames := []string{"table.md", "table.csv", "table.tex"}
	for _, fig := range []string{"curves", "reliability-sglr-best-pgd20", "reliability-sglr-final-pgd20",
		"confidence-pgd20", "accuracy-vs-noise"} {
		wantNames = append(wantNames, fig+".png", fig+".svg", fig+".csv")
	}
	if !reflect.DeepEqual(files.Names, wantNames) {
		t.Fatalf("files %q\nwant %q", files.Names, wantNames)
	}
	if !strings.Contains(md, "| hard   |     80.0 |      70.0 |     10.0 |     60.0 |") {
		t.Errorf("markdown:\n%s", md)
	}
	for i, name := range files.Names {
		data := files.Data[i]
		switch {
		case strings.HasSuffix(name, ".png"):
			// 6.4 in wide at 300 dpi; 4 in high, more with a legend below the panels.
			cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
			if err != nil || format != "png" || cfg.Width != 1920 || cfg.Height < 1200 || cfg.Height > 1600 {
				t.Errorf("%s: %v %s %dx%d, want a 1920 pixels wide PNG, 1200 to 1600 high", name, err, format, cfg.Width, cfg.Height)
			}
		case strings.HasSuffix(name, ".csv"):
			rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
			if err != nil || len(rows) < 2 {
				t.Errorf("%s: %v, %d rows", name, err, len(rows))
			}
		case strings.HasSuffix(name, ".svg"):
			if err := checkSVG(data); err != nil {
				t.Errorf("%s: %v", name, err)
			}
			if !bytes.Contains(data, []byte("font-family:'Liberation Sans',Arial,Helvetica,sans-serif;")) {
				t.Errorf("%s names no fallback for Liberation Sans", name)
			}
		}
	}
	again, _, err := Build(context.Background(), fullInputs(), defaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again, files) {
		t.Error("the same inputs gave different bytes")
	}
}

// checkSVG parses data as XML and checks that it is a non-trivial SVG.
func checkSVG(data []byte) error {
	dec := xml.NewDecoder(bytes.NewReader(data))
	root, elements := "", 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if se, ok := tok.(xml.StartElement); ok {
			if root == "" {
				root = se.Name.Local
			}
			elements++
		}
	}
	if root != "svg" || elements < 10 {
		return errors.New("not an SVG drawing (root " + root + ")")
	}
	return nil
}

func TestBuildChoosesPlots(t *testing.T) {
	full := fullInputs()
	curvesOnly := Inputs{Curves: full.Curves, CurveTags: full.CurveTags}
	tests := []struct {
		name    string
		in      Inputs
		plots   []string
		x       string
		want    []string // file names
		wantErr string
	}{
		{name: "curves only: table of validation best/final", in: curvesOnly,
			want: []string{"table.md", "table.csv", "table.tex", "curves.png", "curves.svg", "curves.csv"}},
		{name: "no plots", in: curvesOnly, plots: []string{}, want: []string{"table.md", "table.csv", "table.tex"}},
		{name: "missing input", in: curvesOnly, plots: []string{PlotReliability}, wantErr: "needs the bins input"},
		{name: "accuracy-vs without x", in: full, plots: []string{PlotAccuracyVs}, wantErr: "x parameter"},
		{name: "x not numeric", in: full, plots: []string{PlotAccuracyVs}, x: "labels", wantErr: "not a number"},
		{name: "nothing", in: Inputs{}, wantErr: "nothing to report"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := Options{Plots: tt.plots, X: tt.x, Layout: Layout{Metrics: []string{"accuracy"}, BestFinal: true, Digits: 1, Percent: true}}
			if tt.in.Tables != nil {
				opts.Layout.Rows, opts.Layout.Cols = []string{"labels"}, []string{"noise"}
			}
			files, _, err := Build(context.Background(), tt.in, opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Build = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(files.Names, tt.want) {
				t.Errorf("files %q, want %q", files.Names, tt.want)
			}
		})
	}
}

func TestCurvesOnlyTable(t *testing.T) {
	in := fullInputs()
	_, md, err := Build(context.Background(), Inputs{Curves: in.Curves, CurveTags: in.CurveTags},
		Options{Plots: []string{}, Layout: Layout{Cols: []string{"attack"}, Metrics: []string{"accuracy"}, BestFinal: true, Digits: 1, Percent: true}})
	if err != nil {
		t.Fatal(err)
	}
	// trainCurve(8, 0.5): validated at 2,4,6,8 with 0.46, 0.50, 0.46, 0.42;
	// best epoch 4 (robust 50, clean 80), final epoch 8 (42, 72).
	want := "| labels | clean Best | clean Final | clean Diff | robust Best | robust Final | robust Diff |\n" +
		"| ------ | ---------: | ----------: | ---------: | ----------: | -----------: | ----------: |\n" +
		"| hard   |       80.0 |        72.0 |        8.0 |        50.0 |         42.0 |         8.0 |\n" +
		"| sglr   |       90.0 |        82.0 |        8.0 |        60.0 |         52.0 |         8.0 |\n"
	if md != want {
		t.Errorf("got\n%s\nwant\n%s", md, want)
	}
}

func TestStageRunWritesFilesAndReportsTable(t *testing.T) {
	producer := &stages.Env{Instance: "eval", OutDir: t.TempDir(), Progress: stages.NopProgress{}}
	tables, tags := paperTables()
	var ins []stages.Input
	for i, tb := range tables {
		port := "metrics" + string(rune('0'+i))
		if err := producer.WriteTable(port, tb); err != nil {
			t.Fatal(err)
		}
		ins = append(ins, stagetest.Input(t, producer.OutputPath(port), tags[i]))
	}
	params := stages.Params{"title": "", "rows": []any{"method"}, "cols": []any{"attack"}, "col_values": []any{},
		"metrics": []any{"accuracy"}, "best_final": true, "aggregate": AggregateMeanStd, "digits": int64(1),
		"percent": true, "x": ""}
	env := &stages.Env{Instance: "report", Params: params, Inputs: map[string][]stages.Input{PortTables: ins},
		OutDir: t.TempDir(), Progress: stages.NopProgress{}}
	if err := (Stage{}).Run(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	files, err := artifacts.ReadFilesFile(env.OutputPath(PortReport))
	if err != nil {
		t.Fatal(err)
	}
	md, ok := files.File(FileMarkdown)
	if !ok || files.Len() != 3 {
		t.Fatalf("files %q", files.Names)
	}
	if got := env.Summary()["table"]; got != string(md) || !strings.Contains(string(md), "| AT+SGLR |       82.9 |") {
		t.Errorf("reported table %q, file %q", got, md)
	}
	params["plots"] = []any{"bogus"}
	if err := (Stage{}).Run(context.Background(), env); err == nil || !strings.Contains(err.Error(), `"bogus"`) {
		t.Errorf("unknown plot: %v", err)
	}
}
