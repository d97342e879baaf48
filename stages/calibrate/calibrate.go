// Package calibrate is the built-in `calibrate` stage: from the predictions
// of the eval stage it measures, for every (checkpoint, attack) group, how
// well the model's confidence matches its accuracy (ECE, MCE, NLL, Brier
// score), the reliability-diagram bins, the histogram of the confidence on
// the labelled class (SGLR Fig. B.3) and, when validation predictions are
// given, the effect of temperature scaling fitted on them.
//
// Without the val input no temperature is fitted: the temperature,
// ece_scaled and nll_scaled columns are NaN. With it, each group's
// temperature is fitted on the val group of the same checkpoint and either
// the same attack (fit_on: same) or the clean predictions (fit_on: clean),
// and applied to the group's logits.
package calibrate

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/nn/metric"
	"github.com/sglr-pipe/sglr-pipe/stages"
)

// Column names of the output tables (checkpoint and attack lead each table).
const (
	ColCheckpoint  = "checkpoint"
	ColAttack      = "attack"
	ColN           = "n"
	ColAccuracy    = "accuracy"
	ColECE         = "ece"
	ColMCE         = "mce"
	ColNLL         = "nll"
	ColBrier       = "brier"
	ColTemperature = "temperature"
	ColECEScaled   = "ece_scaled"
	ColNLLScaled   = "nll_scaled"
	ColBin         = "bin"
	ColLo          = "lo"
	ColHi          = "hi"
	ColCount       = "count"
	ColConfidence  = "confidence"
)

// Values of the fit_on parameter.
const (
	FitOnSame  = "same"
	FitOnClean = "clean"
)

// Stage is the `calibrate` stage.
type Stage struct{}

func init() { stages.Builtin.Register(Stage{}) }

// Spec declares the stage.
func (Stage) Spec() stages.Spec {
	return stages.Spec{
		Name:    "calibrate",
		Version: "1",
		Doc: "Calibration of predictions per (checkpoint, attack): ECE, MCE, NLL, Brier, reliability bins, the " +
			"histogram of the confidence on the labelled class, and temperature scaling fitted on validation predictions.",
		Inputs: []stages.Port{
			{Name: "predictions", Kind: artifacts.KindPredictions, Doc: "the predictions to assess (e.g. eval.predictions on the test set)"},
			{Name: "val", Kind: artifacts.KindPredictions, Optional: true,
				Doc: "predictions of the same checkpoints on held-out data, to fit the temperature on; absent: no scaling (NaN columns)"},
		},
		Outputs: []stages.Port{
			{Name: "metrics", Kind: artifacts.KindTable,
				Doc: "per (checkpoint, attack): checkpoint, attack, n, accuracy, ece, mce, nll, brier, temperature, ece_scaled, nll_scaled"},
			{Name: "bins", Kind: artifacts.KindTable,
				Doc: "reliability bins per (checkpoint, attack): checkpoint, attack, bin, lo, hi, count, accuracy, confidence " +
					"(the bin holds confidences in (lo,hi], the first also 0; accuracy and confidence are NaN when count is 0)"},
			{Name: "hist", Kind: artifacts.KindTable,
				Doc: "histogram of the softmax probability of the labelled class per (checkpoint, attack): checkpoint, attack, bin, lo, hi, count"},
		},
		Params: []stages.Param{
			{Name: "bins", Type: stages.TypeInt, Default: int64(15), Min: stages.Float(1), Max: stages.Float(10000),
				Doc: "equal-width confidence bins of ECE, MCE and the reliability table (15 in SGLR)"},
			{Name: "hist_bins", Type: stages.TypeInt, Default: int64(15), Min: stages.Float(1), Max: stages.Float(10000),
				Doc: "equal-width bins of the labelled-class confidence histogram"},
			{Name: "fit_on", Type: stages.TypeString, Default: FitOnSame, Enum: []string{FitOnSame, FitOnClean},
				Doc: "val predictions the temperature of a group is fitted on: same (same checkpoint and attack) or " +
					"clean (same checkpoint, clean inputs)"},
		},
	}
}

// Config is the calibrate stage's configuration.
type Config struct {
	Bins     int
	HistBins int
	FitOn    string // FitOnSame or FitOnClean
}

// Tables are the stage's three outputs.
type Tables struct {
	Metrics, Bins, Hist *artifacts.Table
}

// Run reads the predictions, computes the tables and writes them.
func (Stage) Run(ctx context.Context, env *stages.Env) error {
	cfg := Config{Bins: int(env.Params.Int("bins")), HistBins: int(env.Params.Int("hist_bins")), FitOn: env.Params.String("fit_on")}
	preds, err := env.ReadPredictions("predictions")
	if err != nil {
		return err
	}
	var val *artifacts.Predictions
	if env.HasInput("val") {
		if val, err = env.ReadPredictions("val"); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	tables, err := Calibrate(cfg, preds, val)
	if err != nil {
		return err
	}
	for _, out := range []struct {
		port  string
		table *artifacts.Table
	}{{"metrics", tables.Metrics}, {"bins", tables.Bins}, {"hist", tables.Hist}} {
		if err := env.WriteTable(out.port, out.table); err != nil {
			return err
		}
	}
	checkpoints, attacks := tables.Metrics.Column(ColCheckpoint).Strings, tables.Metrics.Column(ColAttack).Strings
	for i, ece := range tables.Metrics.Column(ColECE).Floats {
		env.Report("ece "+checkpoints[i]+" "+attacks[i], ece)
	}
	return nil
}

// Calibrate computes the three tables for every (checkpoint, attack) group
// of preds, in order of first appearance, fitting temperatures on val when
// it is not nil.
func Calibrate(cfg Config, preds, val *artifacts.Predictions) (*Tables, error) {
	if cfg.Bins < 1 || cfg.HistBins < 1 {
		return nil, fmt.Errorf("bins %d and hist_bins %d must be >= 1", cfg.Bins, cfg.HistBins)
	}
	if cfg.FitOn != FitOnSame && cfg.FitOn != FitOnClean {
		return nil, fmt.Errorf("fit_on %q: want %s or %s", cfg.FitOn, FitOnSame, FitOnClean)
	}
	groups := groupRows(preds)
	if len(groups) == 0 {
		return nil, fmt.Errorf("the predictions are empty")
	}
	var valGroups []group
	if val != nil {
		if val.K != preds.K {
			return nil, fmt.Errorf("the val predictions have %d classes, the predictions %d", val.K, preds.K)
		}
		valGroups = groupRows(val)
	}
	meta := map[string]string{"stage": "calibrate", "bins": strconv.Itoa(cfg.Bins), "hist_bins": strconv.Itoa(cfg.HistBins)}
	if val != nil {
		meta["fit_on"] = cfg.FitOn
	}
	m, b, h := newTable(meta, metricsColumns()), newTable(meta, binsColumns()), newTable(meta, histColumns())
	for _, g := range groups {
		logits, labels := g.rows(preds)
		c, err := metric.Calibrate(logits, labels, preds.K, cfg.Bins)
		if err != nil {
			return nil, fmt.Errorf("checkpoint %q, attack %q: %w", g.checkpoint, g.attack, err)
		}
		hist, err := metric.LabelConfidenceHistogram(logits, labels, preds.K, cfg.HistBins)
		if err != nil {
			return nil, fmt.Errorf("checkpoint %q, attack %q: %w", g.checkpoint, g.attack, err)
		}
		temp, eceScaled, nllScaled := math.NaN(), math.NaN(), math.NaN()
		if val != nil {
			if temp, eceScaled, nllScaled, err = scaled(cfg, g, logits, labels, preds.K, val, valGroups); err != nil {
				return nil, fmt.Errorf("checkpoint %q, attack %q: %w", g.checkpoint, g.attack, err)
			}
		}
		m.add(g, int64(c.N), c.Accuracy, c.ECE, c.MCE, c.NLL, c.Brier, temp, eceScaled, nllScaled)
		for i, bin := range c.Bins {
			b.add(g, int64(i), bin.Lo, bin.Hi, int64(bin.Count), bin.Accuracy, bin.Confidence)
		}
		for i, bin := range hist {
			h.add(g, int64(i), bin.Lo, bin.Hi, int64(bin.Count))
		}
	}
	return &Tables{Metrics: m.Table, Bins: b.Table, Hist: h.Table}, nil
}

// scaled fits the group's temperature on its val group and returns it with
// the ECE and NLL of the scaled logits.
func scaled(cfg Config, g group, logits []float32, labels []int32, k int, val *artifacts.Predictions, valGroups []group) (temp, ece, nll float64, err error) {
	attack := g.attack
	if cfg.FitOn == FitOnClean {
		attack = FitOnClean
	}
	var fit *group
	for i := range valGroups {
		if valGroups[i].checkpoint == g.checkpoint && valGroups[i].attack == attack {
			fit = &valGroups[i]
		}
	}
	if fit == nil {
		names := make([]string, len(valGroups))
		for i, v := range valGroups {
			names[i] = fmt.Sprintf("%s %s", v.checkpoint, v.attack)
		}
		return 0, 0, 0, fmt.Errorf("the val predictions have no checkpoint %q under attack %q to fit the temperature on "+
			"(they hold: %s)", g.checkpoint, attack, strings.Join(names, "; "))
	}
	valLogits, valLabels := fit.rows(val)
	if temp, err = metric.FitTemperature(valLogits, valLabels, k); err != nil {
		return 0, 0, 0, fmt.Errorf("fit temperature on val: %w", err)
	}
	scaledLogits, err := metric.ScaleLogits(logits, temp)
	if err != nil {
		return 0, 0, 0, err
	}
	c, err := metric.Calibrate(scaledLogits, labels, k, cfg.Bins)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("scaled logits: %w", err)
	}
	return temp, c.ECE, c.NLL, nil
}

// group is the rows of one (checkpoint, attack) pair.
type group struct {
	checkpoint, attack string
	index              []int
}

// rows copies the group's logits and labels out of p.
func (g group) rows(p *artifacts.Predictions) ([]float32, []int32) {
	logits := make([]float32, 0, len(g.index)*p.K)
	labels := make([]int32, 0, len(g.index))
	for _, i := range g.index {
		logits = append(logits, p.Logits[i*p.K:(i+1)*p.K]...)
		labels = append(labels, p.Labels[i])
	}
	return logits, labels
}

// groupRows splits p's rows by (checkpoint, attack), in order of first appearance.
func groupRows(p *artifacts.Predictions) []group {
	var groups []group
	at := map[[2]string]int{}
	for i := range p.IDs {
		key := [2]string{p.Checkpoint[i], p.Attack[i]}
		g, ok := at[key]
		if !ok {
			g = len(groups)
			at[key] = g
			groups = append(groups, group{checkpoint: key[0], attack: key[1]})
		}
		groups[g].index = append(groups[g].index, i)
	}
	return groups
}

// columnTable is a table under construction whose first two columns are
// checkpoint and attack and whose other columns are ints or floats.
type columnTable struct{ *artifacts.Table }

// newTable starts a table with the given columns after checkpoint and attack.
func newTable(meta map[string]string, cols []artifacts.Column) columnTable {
	t := &artifacts.Table{Meta: meta, Columns: append([]artifacts.Column{
		{Name: ColCheckpoint, Strings: []string{}}, {Name: ColAttack, Strings: []string{}}}, cols...)}
	return columnTable{t}
}

// add appends one row: the group's names, then one value per column (int64
// or float64, as the column).
func (t columnTable) add(g group, values ...any) {
	t.Columns[0].Strings = append(t.Columns[0].Strings, g.checkpoint)
	t.Columns[1].Strings = append(t.Columns[1].Strings, g.attack)
	for i, v := range values {
		c := &t.Columns[i+2]
		switch v := v.(type) {
		case int64:
			c.Ints = append(c.Ints, v)
		case float64:
			c.Floats = append(c.Floats, v)
		default:
			panic(fmt.Sprintf("calibrate: column %q gets a %T", c.Name, v))
		}
	}
}

func metricsColumns() []artifacts.Column {
	return []artifacts.Column{ints(ColN), floats(ColAccuracy), floats(ColECE), floats(ColMCE), floats(ColNLL),
		floats(ColBrier), floats(ColTemperature), floats(ColECEScaled), floats(ColNLLScaled)}
}

func binsColumns() []artifacts.Column {
	return []artifacts.Column{ints(ColBin), floats(ColLo), floats(ColHi), ints(ColCount), floats(ColAccuracy), floats(ColConfidence)}
}

func histColumns() []artifacts.Column {
	return []artifacts.Column{ints(ColBin), floats(ColLo), floats(ColHi), ints(ColCount)}
}

func ints(name string) artifacts.Column   { return artifacts.Column{Name: name, Ints: []int64{}} }
func floats(name string) artifacts.Column { return artifacts.Column{Name: name, Floats: []float64{}} }
