// Package report is the `report` stage: it gathers metric tables, training
// curves and calibration bins across matrix instances and lays them out as
// the paper does (rows, columns, Best / Final / Diff, mean ± std over seeds)
// in Markdown, CSV and LaTeX, with figures fit for a paper as 300 dpi PNG,
// SVG and a CSV of what each draws.
package report

import (
	"context"
	"errors"
	"fmt"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/stages"
)

// Input and output ports.
const (
	PortTables = "tables"
	PortCurves = "curves"
	PortBins   = "bins"
	PortHist   = "hist"
	PortReport = "report"
)

// Names of the table files in the output.
const (
	FileMarkdown = "table.md"
	FileCSV      = "table.csv"
	FileLaTeX    = "table.tex"
)

// Stage is the `report` stage.
type Stage struct{}

func init() { stages.Builtin.Register(Stage{}) }

// Spec declares the stage: four optional gathered inputs, one files output.
func (Stage) Spec() stages.Spec {
	return stages.Spec{
		Name:    "report",
		Version: "4",
		Doc: "Lays out gathered metric tables as the paper does — rows, columns, metrics, Best / Final / Diff, " +
			"mean ± std over seeds — as Markdown (also printed), CSV and LaTeX (booktabs), and plots training curves, " +
			"reliability diagrams, confidence histograms and accuracy against a column as PNG, SVG and the CSV of what is drawn " +
			"(seeds as mean ± std bands, a colour per method). Without `tables`, " +
			"the table holds the best and final validation accuracies of the `curves`.",
		Inputs: []stages.Port{
			{Name: PortTables, Kind: artifacts.KindTable, Optional: true, Multi: true,
				Doc: "metric tables, e.g. eval.metrics[] or calibrate.metrics[]; their tags become columns"},
			{Name: PortCurves, Kind: artifacts.KindCurve, Optional: true, Multi: true,
				Doc: "training curves (train.curve[]) for the curves plot"},
			{Name: PortBins, Kind: artifacts.KindTable, Optional: true, Multi: true,
				Doc: "reliability bins (calibrate.bins[]) for reliability diagrams"},
			{Name: PortHist, Kind: artifacts.KindTable, Optional: true, Multi: true,
				Doc: "confidence histograms (calibrate.hist[])"},
		},
		Outputs: []stages.Port{{Name: PortReport, Kind: artifacts.KindFiles,
			Doc: "table.md, table.csv, table.tex and <plot>.png/.svg/.csv files"}},
		Params: []stages.Param{
			{Name: "title", Type: stages.TypeString, Default: "", Doc: "title above the table"},
			{Name: "rows", Type: stages.TypeList, Default: []any{},
				Doc: "columns or tags whose values form the rows (default: every string column and tag not used otherwise)"},
			{Name: "cols", Type: stages.TypeList, Default: []any{},
				Doc: "columns or tags whose values spread into columns, e.g. [attack] or [noise]"},
			{Name: "col_values", Type: stages.TypeList, Default: []any{},
				Doc: "the column groups to show, in this order, by label (the cols values joined by a space); default all"},
			{Name: "metrics", Type: stages.TypeList, Default: []any{"accuracy"}, Doc: "numeric columns to show"},
			{Name: "best_final", Type: stages.TypeBool, Default: true,
				Doc: "when a checkpoint column holds best/final, show Best, Final and Diff = Best − Final for each metric"},
			{Name: "compare", Type: stages.TypeList, Default: []any{},
				Doc: "[column, a, b]: instead of Best / Final, show values a and b of a text column and their difference a − b, " +
					"e.g. [split, train, test] for the train–test gap (rows with other values of the column are left out)"},
			{Name: "diff_label", Type: stages.TypeString, Default: "Diff", Doc: "the label of the difference column, e.g. Gap"},
			{Name: "diff_only", Type: stages.TypeBool, Default: false,
				Doc: "show only the difference column of Best / Final or of compare (one number per cell, as Table B.2)"},
			{Name: "aggregate", Type: stages.TypeString, Default: AggregateMeanStd, Enum: []string{AggregateMean, AggregateMeanStd},
				Doc: "rows that differ only in a seed tag are averaged; mean±std also shows the sample standard deviation"},
			{Name: "digits", Type: stages.TypeInt, Default: int64(1), Min: stages.Float(0), Max: stages.Float(10),
				Doc: "digits after the decimal point (two more for metrics that percent does not scale, such as ECE)"},
			{Name: "percent", Type: stages.TypeBool, Default: true,
				Doc: "show rates (accuracy, *_acc, *rate*, *error*, *recovered*) as percentages"},
			{Name: "plots", Type: stages.TypeList, Enum: []string{PlotCurves, PlotReliability, PlotConfidence, PlotAccuracyVs},
				Doc: "plots to draw, from curves, reliability, confidence, accuracy-vs (default: every plot whose inputs are present)"},
			{Name: "x", Type: stages.TypeString, Default: "",
				Doc: "the column on the x axis of accuracy-vs plots, e.g. noise"},
		},
	}
}

// Run reads the inputs, lays out the table, draws the plots and writes the
// files; the Markdown table is also reported in the run record.
func (Stage) Run(ctx context.Context, env *stages.Env) error {
	in, err := readInputs(env)
	if err != nil {
		return err
	}
	opts, err := optionsFrom(env.Params)
	if err != nil {
		return err
	}
	files, markdown, err := Build(ctx, in, opts)
	if err != nil {
		return err
	}
	if err := env.WriteFiles(PortReport, files); err != nil {
		return err
	}
	if markdown != "" {
		env.Report("table", markdown)
	}
	env.Report("files", files.Len())
	return nil
}

// Inputs are the gathered artifacts of a report, each with its tags.
type Inputs struct {
	Tables, Curves, Bins, Hist              []*artifacts.Table
	TableTags, CurveTags, BinTags, HistTags []map[string]string
}

// Options are a report's parameters.
type Options struct {
	Title  string
	Layout Layout
	Plots  []string // nil: every plot whose inputs are present
	X      string
}

// Build makes the report files from the inputs: table.md, table.csv and
// table.tex when there is a table to show, and a PNG and an SVG per plot.
// It returns the Markdown table too ("" when there is none).
func Build(ctx context.Context, in Inputs, opts Options) (*artifacts.Files, string, error) {
	if len(in.Tables)+len(in.Curves)+len(in.Bins)+len(in.Hist) == 0 {
		return nil, "", errors.New("nothing to report: connect at least one of tables, curves, bins, hist")
	}
	files := &artifacts.Files{}
	records, err := tableRecords(in)
	if err != nil {
		return nil, "", err
	}
	markdown := ""
	if len(records) > 0 {
		grid, err := opts.Layout.Build(records)
		if err != nil {
			return nil, "", fmt.Errorf("table: %w", err)
		}
		md := grid.Markdown(opts.Title, opts.Layout.Digits)
		markdown = string(md)
		files.Add(FileMarkdown, md)
		files.Add(FileCSV, grid.CSV())
		files.Add(FileLaTeX, grid.LaTeX(opts.Title, opts.Layout.Digits))
	}
	plots, err := choosePlots(in, opts)
	if err != nil {
		return nil, "", err
	}
	figures, err := drawFigures(ctx, in, opts, plots, records)
	if err != nil {
		return nil, "", err
	}
	for _, f := range figures {
		if err := ctx.Err(); err != nil {
			return nil, "", err
		}
		pngData, svgData, csvData, err := f.Render()
		if err != nil {
			return nil, "", fmt.Errorf("plot %s: %w", f.Name, err)
		}
		files.Add(f.Name+".png", pngData)
		files.Add(f.Name+".svg", svgData)
		files.Add(f.Name+".csv", csvData)
	}
	if err := files.Validate(); err != nil {
		return nil, "", err
	}
	return files, markdown, nil
}

// drawFigures builds the figures of the chosen plot kinds, in that order.
func drawFigures(ctx context.Context, in Inputs, opts Options, plots []string, records []Record) ([]*Figure, error) {
	var out []*Figure
	for _, kind := range plots {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var more []*Figure
		var err error
		switch kind {
		case PlotCurves:
			var f *Figure
			if f, err = CurvesFigure(in.Curves, in.CurveTags, opts.Layout.Percent); err != nil {
				return nil, fmt.Errorf("curves plot: %w", err)
			}
			more = []*Figure{f}
		case PlotReliability:
			more, err = ReliabilityFigures(in.Bins, in.BinTags)
		case PlotConfidence:
			more, err = ConfidenceFigures(in.Hist, in.HistTags)
		case PlotAccuracyVs:
			more, err = AccuracyVsFigures(records, opts.Layout.Metrics, opts.X, opts.Layout.Percent)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, more...)
	}
	return out, nil
}

// readInputs reads whichever inputs are connected.
func readInputs(env *stages.Env) (Inputs, error) {
	var in Inputs
	var err error
	read := func(port string, tables *[]*artifacts.Table, tags *[]map[string]string, f func(string) ([]*artifacts.Table, []map[string]string, error)) {
		if err != nil || !env.HasInput(port) {
			return
		}
		*tables, *tags, err = f(port)
	}
	read(PortTables, &in.Tables, &in.TableTags, env.ReadTables)
	read(PortCurves, &in.Curves, &in.CurveTags, env.ReadCurves)
	read(PortBins, &in.Bins, &in.BinTags, env.ReadTables)
	read(PortHist, &in.Hist, &in.HistTags, env.ReadTables)
	return in, err
}

// optionsFrom reads the typed parameters (the pipeline checked them with
// Stage.Check; compare is checked again for a request from elsewhere).
func optionsFrom(p stages.Params) (Options, error) {
	o := Options{
		Title: p.String("title"),
		X:     p.String("x"),
		Layout: Layout{
			Rows:      stringList(p.List("rows")),
			Cols:      stringList(p.List("cols")),
			ColValues: stringList(p.List("col_values")),
			Metrics:   stringList(p.List("metrics")),
			BestFinal: p.Bool("best_final"),
			Aggregate: p.String("aggregate"),
			Digits:    int(p.Int("digits")),
			Percent:   p.Bool("percent"),
			DiffName:  p.String("diff_label"),
			DiffOnly:  p.Bool("diff_only"),
		},
	}
	cmp, problem := comparisonFrom(stringList(p.List("compare")))
	if problem != nil {
		return o, problem
	}
	o.Layout.Compare = cmp
	if p.Has("plots") {
		o.Plots = stringList(p.List("plots"))
		if o.Plots == nil {
			o.Plots = []string{}
		}
	}
	return o, nil
}

// choosePlots resolves the plots to draw: the requested ones, whose inputs
// must be present, or by default every plot whose inputs are present.
func choosePlots(in Inputs, opts Options) ([]string, error) {
	present := map[string]bool{
		PlotCurves:      len(in.Curves) > 0,
		PlotReliability: len(in.Bins) > 0,
		PlotConfidence:  len(in.Hist) > 0,
		PlotAccuracyVs:  len(in.Tables) > 0 && opts.X != "",
	}
	needs := map[string]string{
		PlotCurves: "the curves input", PlotReliability: "the bins input", PlotConfidence: "the hist input",
		PlotAccuracyVs: "the tables input and the x parameter",
	}
	order := []string{PlotCurves, PlotReliability, PlotConfidence, PlotAccuracyVs}
	if opts.Plots == nil {
		var out []string
		for _, kind := range order {
			if present[kind] {
				out = append(out, kind)
			}
		}
		return out, nil
	}
	for _, kind := range opts.Plots {
		if !present[kind] {
			return nil, fmt.Errorf("plot %q needs %s", kind, needs[kind])
		}
	}
	return opts.Plots, nil
}

// tableRecords are the records the table shows: the tables input, or
// without it the best and final validation accuracies of the curves.
func tableRecords(in Inputs) ([]Record, error) {
	if len(in.Tables) > 0 {
		return Records(in.Tables, in.TableTags)
	}
	if len(in.Curves) == 0 {
		return nil, nil
	}
	summary, err := stages.BestFinal(in.Curves, in.CurveTags)
	if err != nil {
		return nil, fmt.Errorf("curves: %w", err)
	}
	return curveRecords(summary), nil
}

// curveRecords turns a best-final summary into long records: per run, a
// checkpoint (best, final) × attack (clean, robust) grid of validation
// accuracies, with the epoch each comes from.
func curveRecords(s *artifacts.Table) []Record {
	var out []Record
	for r := 0; r < s.Len(); r++ {
		var axes []string
		keys := map[string]string{}
		for _, c := range s.Columns {
			if c.Strings != nil { // the matrix tags; the rest are figures
				axes = append(axes, c.Name)
				keys[c.Name] = c.Strings[r]
			}
		}
		epochs := s.Column("epochs").Ints[r]
		epochOf := map[string]int64{CheckpointBest: s.Column("best_epoch").Ints[r], CheckpointFinal: epochs}
		for _, ck := range []string{CheckpointBest, CheckpointFinal} {
			for _, attack := range []string{"clean", "robust"} {
				rec := Record{Keys: map[string]string{}, Nums: map[string]float64{}}
				for _, a := range axes {
					rec.Keys[a] = keys[a]
				}
				rec.Keys[ColCheckpoint], rec.Keys["attack"] = ck, attack
				rec.Categorical = append(append([]string{}, axes...), ColCheckpoint, "attack")
				rec.Nums["accuracy"] = s.Column(ck + "_val_" + attack + "_acc").Floats[r]
				rec.Nums["epoch"] = float64(epochOf[ck])
				out = append(out, rec)
			}
		}
	}
	return out
}

// stringList converts a validated list parameter to strings (fmt for non-strings).
func stringList(list []any) []string {
	if len(list) == 0 {
		return nil
	}
	out := make([]string, len(list))
	for i, v := range list {
		if s, ok := v.(string); ok {
			out[i] = s
		} else {
			out[i] = fmt.Sprint(v)
		}
	}
	return out
}
