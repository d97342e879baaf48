package eval

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	nnattack "github.com/sglr-pipe/sglr-pipe/nn/attack"
	"github.com/sglr-pipe/sglr-pipe/nn/metric"
	nnmodel "github.com/sglr-pipe/sglr-pipe/nn/model"
	"github.com/sglr-pipe/sglr-pipe/stages"
)

// Target is a labelled model: one to evaluate, or the source of transferred
// adversarial examples.
type Target struct {
	Label   string // the checkpoint label written to the outputs
	Weights *nnmodel.Weights
}

// Result is what Evaluate produces.
type Result struct {
	Metrics     *artifacts.Table       // [split,] checkpoint, attack, accuracy, n
	Predictions *artifacts.Predictions // every sample's logits per (model, attack)
	Workers     int                    // the parallel workers used
	Resumed     int                    // (model, attack) pairs taken from checkpoints
	// Warnings are the sanity checks' findings (see sanity.go), also in the
	// metrics' "warnings" metadata, one per line.
	Warnings []string
	// Seconds is the wall time per attack row (summed over the models). It
	// stays out of Metrics so that the artifact is the same bytes on every run.
	Seconds map[string]float64
}

// Evaluate measures every target on the first cfg.Limit samples of ds (all
// when 0), clean and under each of cfg.Attacks, white-box or, when source is
// not nil, on adversarial examples crafted on source. The attack of each
// (model, attack) pair is seeded from seed and the pair's labels. Rows come
// model by model, attacks in cfg order. progress (may be nil) counts images.
func Evaluate(ctx context.Context, cfg Config, targets []Target, source *Target, ds *artifacts.Dataset,
	seed uint64, progress stages.Progress) (*Result, error) {
	if progress == nil {
		progress = stages.NopProgress{}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(targets) == 0 {
		return nil, fmt.Errorf("no model to evaluate")
	}
	n := len(ds.Labels)
	if n == 0 {
		return nil, fmt.Errorf("the dataset is empty")
	}
	if cfg.Limit > 0 {
		n = min(n, cfg.Limit)
	}
	all := slices.Clone(targets)
	if source != nil {
		all = append(all, *source)
	}
	for _, t := range all {
		if err := checkModel(t, ds); err != nil {
			return nil, err
		}
	}
	workers := cfg.Workers
	if workers == 0 {
		workers = runtime.NumCPU()
	}
	batch := min(cfg.Batch, n)
	evaluators := make([]attackModel, len(all))
	for i, t := range all {
		ev, err := nnmodel.NewEvaluator(t.Weights, batch, workers)
		if err != nil {
			return nil, fmt.Errorf("model %q: %w", t.Label, err)
		}
		evaluators[i] = attackModel{Evaluator: ev, shape: ds.Shape}
	}
	k, d := len(ds.ClassNames), all[0].Weights.Arch.InputSize()
	run := &evaluation{cfg: cfg, n: n, d: d, k: k, block: batch * workers, seed: seed, progress: progress,
		x: ds.Images[:n*d], y: ds.Labels[:n], xAdv: make([]float32, n*d)}
	progress.Start(run.totalPasses(len(targets), source != nil), "passes")
	checked := evaluators[:len(targets)]
	if source != nil { // transferred examples are crafted on the source alone
		checked = evaluators[len(targets):]
	}
	for i, m := range checked {
		w, err := run.modelWarnings(m, all[len(all)-len(checked)+i].Label)
		if err != nil {
			return nil, err
		}
		run.warnings = append(run.warnings, w...)
	}

	cells, err := run.attackAll(ctx, evaluators, targets, source)
	if err != nil {
		return nil, err
	}
	run.removeCells()
	if source == nil {
		for t, target := range targets {
			var rows []metricRow
			for _, c := range cells[t] {
				rows = append(rows, c.rows...)
			}
			run.warnings = append(run.warnings, attackWarnings(target.Label, rows)...)
		}
	}
	res := &Result{Workers: workers, Seconds: map[string]float64{}, Resumed: run.resumed, Warnings: run.warnings}
	res.Metrics, res.Predictions = run.outputs(targets, cells, ds.IDs[:n], source)
	for t := range targets {
		for _, c := range cells[t] {
			for _, r := range c.rows {
				res.Seconds[r.attack] += r.seconds
			}
		}
	}
	return res, nil
}

// attackAll runs every attack on every target (or, with a source, on the
// source for every target), in the configured order, taking the pairs a
// previous run finished from their checkpoints and keeping each new one. It
// returns the cells by [target][attack]; evaluators holds the targets' models
// and then the source's.
func (e *evaluation) attackAll(ctx context.Context, evaluators []attackModel, targets []Target, source *Target) ([][]cell, error) {
	cells := make([][]cell, len(targets)) // [target][attack]
	for i := range cells {
		cells[i] = make([]cell, len(e.cfg.Attacks))
	}
	for a, attack := range e.cfg.Attacks {
		if source != nil {
			row := e.loadCells(source.Label, attack, len(targets))
			if row != nil {
				e.progress.Add(int64(e.n) * (attackCost(e.cfg, attack, e.k) + int64(len(targets))))
			} else {
				var err error
				if row, err = e.transfer(ctx, evaluators[len(targets)], source.Label, evaluators[:len(targets)], targets, attack); err != nil {
					return nil, err
				}
				if err := e.saveCells(source.Label, attack, row); err != nil {
					return nil, err
				}
			}
			for t := range targets {
				cells[t][a] = row[t]
			}
			continue
		}
		for t, target := range targets {
			if saved := e.loadCells(target.Label, attack, 1); saved != nil {
				e.progress.Add(int64(e.n) * attackCost(e.cfg, attack, e.k))
				cells[t][a] = saved[0]
				continue
			}
			c, err := e.whiteBox(ctx, evaluators[t], target.Label, attack)
			if err != nil {
				return nil, err
			}
			if err := e.saveCells(target.Label, attack, []cell{c}); err != nil {
				return nil, err
			}
			cells[t][a] = c
		}
	}
	return cells, nil
}

// evaluation is one Evaluate call's shared state.
type evaluation struct {
	cfg      Config
	n, d, k  int
	block    int // samples per attack call
	seed     uint64
	progress stages.Progress
	x        []float32 // the n clean samples
	y        []int32
	xAdv     []float32 // the current attack's examples
	resumed  int       // pairs loaded from checkpoints
	warnings []string  // the sanity checks' findings
}

// totalPasses is the progress total: every attack's cost (attackCost) per
// image crafted, and one pass per image for each model measured on
// transferred examples.
func (e *evaluation) totalPasses(targets int, transfer bool) int64 {
	var total int64
	for _, attack := range e.cfg.Attacks {
		cost := attackCost(e.cfg, attack, e.k)
		if transfer {
			total += int64(e.n) * (cost + int64(targets))
		} else {
			total += int64(e.n) * cost * int64(targets)
		}
	}
	return total
}

// transfer crafts attack's examples on the source model and measures every
// target on them, one cell per target; each cell's seconds include the
// crafting.
func (e *evaluation) transfer(ctx context.Context, src attackModel, srcLabel string, models []attackModel, targets []Target,
	attack string) ([]cell, error) {
	start := time.Now()
	e.progress.Status(fmt.Sprintf("%s %s", srcLabel, attack))
	if _, err := e.craft(ctx, src, srcLabel, attack); err != nil {
		return nil, fmt.Errorf("%s on %q: %w", attack, srcLabel, err)
	}
	crafted := time.Since(start).Seconds()
	cells := make([]cell, len(targets))
	for t, target := range targets {
		start := time.Now()
		c, err := e.measure(models[t], target.Label, attack)
		if err != nil {
			return nil, err
		}
		e.progress.Add(int64(e.n))
		c.rows[0].seconds = crafted + time.Since(start).Seconds()
		cells[t] = c
	}
	return cells, nil
}

// whiteBox crafts attack's examples on model m (labelled label) and measures
// it on them. An autoattack cell gets a row per component before its own.
func (e *evaluation) whiteBox(ctx context.Context, m attackModel, label, attack string) (cell, error) {
	start := time.Now()
	e.progress.Status(fmt.Sprintf("%s %s", label, attack))
	steps, err := e.craft(ctx, m, label, attack)
	if err != nil {
		return cell{}, fmt.Errorf("%s on %q: %w", attack, label, err)
	}
	c, err := e.measure(m, label, attack)
	if err != nil {
		return cell{}, err
	}
	c.rows[0].seconds = time.Since(start).Seconds()
	for _, s := range steps {
		c.rows = append(c.rows, metricRow{attack: e.cfg.AttackLabel(nnattack.NameAutoAttack) + "/" + s.attack,
			accuracy: float64(s.robust) / float64(e.n), seconds: s.seconds})
	}
	if len(steps) > 0 { // the composite's final row comes after its components
		c.rows = append(c.rows[1:], c.rows[0])
	}
	e.progress.Status(fmt.Sprintf("%s %s %.1f%%", label, attack, 100*c.rows[len(c.rows)-1].accuracy))
	return c, nil
}

// cell is the outcome of one (model, attack) pair.
type cell struct {
	rows   []metricRow // the attack's row (last), after its components for autoattack
	logits []float32   // n*K logits on the attack's examples
}

type metricRow struct {
	attack   string
	accuracy float64
	seconds  float64
}

// autoStep is one AutoAttack component summed over the blocks.
type autoStep struct {
	attack  string
	robust  int // samples still correctly classified after it
	seconds float64
}

// craft writes the attack's examples against m into e.xAdv, block by block,
// with the generator of (label, attack). For autoattack it also returns the
// components' cumulative robust counts.
func (e *evaluation) craft(ctx context.Context, m attackModel, label, attack string) ([]autoStep, error) {
	if attack == nnattack.NameClean {
		copy(e.xAdv, e.x)
		e.progress.Add(int64(e.n))
		return nil, nil
	}
	cost := attackCost(e.cfg, attack, e.k)
	rng := pairRNG(e.seed, label, attack)
	var steps []autoStep
	for lo := 0; lo < e.n; lo += e.block {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hi := min(lo+e.block, e.n)
		blockSteps, err := runAttack(m, e.cfg, attack, e.x[lo*e.d:hi*e.d], e.y[lo:hi], hi-lo, rng, e.xAdv[lo*e.d:hi*e.d])
		if err != nil {
			return nil, fmt.Errorf("samples %d..%d: %w", lo, hi-1, err)
		}
		for i, s := range blockSteps {
			if i == len(steps) {
				steps = append(steps, autoStep{attack: s.attack})
			}
			steps[i].robust += s.robust
			steps[i].seconds += s.seconds
		}
		e.progress.Add(int64(hi-lo) * cost)
	}
	return steps, nil
}

// measure evaluates m on e.xAdv.
func (e *evaluation) measure(m attackModel, label, attack string) (cell, error) {
	logits := make([]float32, e.n*e.k)
	if err := m.Logits(e.xAdv, e.n, logits); err != nil {
		return cell{}, fmt.Errorf("logits of %q under %s: %w", label, attack, err)
	}
	for i, v := range logits {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return cell{}, fmt.Errorf("model %q gives the logit %v on sample %d under %s", label, v, i/e.k, attack)
		}
	}
	acc := metric.Accuracy(logits, e.y, e.k)
	return cell{rows: []metricRow{{attack: e.cfg.AttackLabel(attack), accuracy: acc}}, logits: logits}, nil
}

// outputs lays the cells out as the metrics table and the predictions.
func (e *evaluation) outputs(targets []Target, cells [][]cell, ids []int64, source *Target) (*artifacts.Table, *artifacts.Predictions) {
	meta := map[string]string{
		"stage": "eval", "eps": formatFloat(e.cfg.Eps), "step": formatFloat(e.cfg.Step),
		"steps": strconv.Itoa(e.cfg.Steps), "restarts": strconv.Itoa(e.cfg.Restarts), "samples": strconv.Itoa(e.n),
	}
	if source != nil {
		meta["source"] = source.Label
	}
	if e.cfg.Norm != nnattack.Linf { // linf tables keep the bytes they had before the norm parameter
		meta["norm"] = e.cfg.Norm.String()
	}
	if len(e.warnings) > 0 { // and so do tables without a warning
		meta["warnings"] = strings.Join(e.warnings, "\n")
	}
	var checkpoints, attacks []string
	var accuracies []float64
	var ns []int64
	preds := &artifacts.Predictions{K: e.k, Meta: meta, IDs: []int64{}, Labels: []int32{}, Logits: []float32{},
		Attack: []string{}, Checkpoint: []string{}}
	for t, target := range targets {
		for a, c := range cells[t] {
			for _, r := range c.rows {
				checkpoints = append(checkpoints, target.Label)
				attacks = append(attacks, r.attack)
				accuracies = append(accuracies, r.accuracy)
				ns = append(ns, int64(e.n))
			}
			preds.IDs = append(preds.IDs, ids...)
			preds.Labels = append(preds.Labels, e.y...)
			preds.Logits = append(preds.Logits, c.logits...)
			for range e.n {
				preds.Attack = append(preds.Attack, e.cfg.AttackLabel(e.cfg.Attacks[a]))
				preds.Checkpoint = append(preds.Checkpoint, target.Label)
			}
		}
	}
	table := &artifacts.Table{Meta: meta, Columns: []artifacts.Column{
		{Name: ColCheckpoint, Strings: checkpoints},
		{Name: ColAttack, Strings: attacks},
		{Name: ColAccuracy, Floats: accuracies},
		{Name: ColN, Ints: ns},
	}}
	if e.cfg.Split != "" {
		split := artifacts.Column{Name: ColSplit, Strings: make([]string, len(checkpoints))}
		for i := range split.Strings {
			split.Strings[i] = e.cfg.Split
		}
		table.Columns = append([]artifacts.Column{split}, table.Columns...)
	}
	return table, preds
}

// checkModel reports a model that does not fit the dataset.
func checkModel(t Target, ds *artifacts.Dataset) error {
	if k := len(ds.ClassNames); t.Weights.Arch.Classes != k {
		return fmt.Errorf("model %q has %d classes, the dataset %d", t.Label, t.Weights.Arch.Classes, k)
	}
	if !slices.Equal(t.Weights.Arch.Input, ds.Shape) {
		return fmt.Errorf("model %q takes samples of shape %v, the dataset has %v", t.Label, t.Weights.Arch.Input, ds.Shape)
	}
	return nil
}

// pairRNG is the generator of one (model, attack) pair: seeded by the stage
// seed and an FNV-1a hash of the two names, so it does not depend on which
// other models or attacks run.
func pairRNG(seed uint64, label, attack string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(label))
	h.Write([]byte{0})
	h.Write([]byte(attack))
	return rand.New(rand.NewPCG(seed, h.Sum64()))
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
