// Package eval is the built-in `eval` stage: it measures the accuracy of one
// or more models on a dataset, clean and under each requested attack (white
// box, or transferred from a source model), and keeps every sample's logits
// for calibration.
//
// Choices where the protocol leaves room (documented in the parameters too):
//   - Each model is labelled by its checkpoint label (CheckpointLabel): its
//     matrix tags and its "checkpoint" metadata, e.g. "best" or
//     "labels=sglr/best".
//   - The attack of each (model, attack) pair draws from its own generator,
//     seeded from the stage seed and the pair's names, so adding a model or an
//     attack leaves the other pairs' results unchanged.
//   - Samples are attacked in blocks of batch×workers; the results depend on
//     batch and workers (both parameters, so part of the cache key). workers
//     0 means every core of the machine running it: set it explicitly for
//     bit-identical replays elsewhere. Every output but the metrics' seconds
//     column is bit-identical for the same inputs, parameters and seed.
//   - With a source model, the adversarial examples are crafted once on the
//     source and every model is evaluated on them (black-box transfer). The
//     autoattack composite then gives only its final row: its per-attack
//     cumulative accuracies belong to the source.
package eval

import (
	"context"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	nnattack "github.com/sglr-pipe/sglr-pipe/nn/attack"
	"github.com/sglr-pipe/sglr-pipe/stages"
	"github.com/sglr-pipe/sglr-pipe/stages/internal/device"
	"github.com/sglr-pipe/sglr-pipe/stages/param"
)

// Column names of the metrics table.
const (
	ColCheckpoint = "checkpoint"
	// ColSplit names the evaluated dataset when the split param is set.
	ColSplit    = "split"
	ColAttack   = "attack"
	ColAccuracy = "accuracy"
	ColN        = "n"
)

// Stage is the `eval` stage.
type Stage struct{}

func init() { stages.Builtin.Register(Stage{}) }

// Spec declares the stage.
func (Stage) Spec() stages.Spec {
	return stages.Spec{
		Name:    "eval",
		Version: "2",
		Doc: "Accuracy of models on a dataset, clean and under attacks (FGSM, PGD, CW∞, APGD-CE, APGD-T, FAB-T, " +
			"Square, AutoAttack) in the L∞, L2 or L1 threat model, white-box or transferred from a source model, with every sample's logits.",
		Inputs: []stages.Port{
			{Name: "models", Kind: artifacts.KindModel, Multi: true,
				Doc: "the models to evaluate (e.g. train.best[]); each is labelled by its matrix tags and checkpoint metadata"},
			{Name: "dataset", Kind: artifacts.KindDataset, Doc: "the samples to evaluate on (usually the test set)"},
			{Name: "source", Kind: artifacts.KindModel, Optional: true,
				Doc: "transfer: craft the adversarial examples on this model and evaluate the models on them"},
		},
		Outputs: []stages.Port{
			{Name: "metrics", Kind: artifacts.KindTable,
				Doc: "one row per (model, attack): [split,] checkpoint, attack, accuracy, n (wall times go to the run record, not the artifact, which is the same bytes on every run); autoattack adds " +
					"autoattack/<attack> rows with the cumulative robust accuracy after each of its attacks"},
			{Name: "predictions", Kind: artifacts.KindPredictions,
				Doc: "per (model, attack, sample): id, label, logits, attack, checkpoint"},
		},
		Params: append([]stages.Param{
			{Name: "attacks", Type: stages.TypeList, Default: []any{nnattack.NameClean, nnattack.NamePGD}, Enum: nnattack.Names,
				Doc: "attacks to run, in order: " + strings.Join(nnattack.Names, ", ")},
			{Name: "eps", Type: stages.TypeFloat, Default: 8.0 / 255, Min: stages.Float(0),
				Doc: "radius of the attacks in the norm `norm` (8/255 = 0.0313725; at most 1 for linf)"},
			{Name: "norm", Type: stages.TypeString, Default: NormLinf, Enum: nnattack.NormNames,
				Doc: "threat model: linf, l2 or l1 (‖x' − x‖ ≤ eps, x' in [0,1]); l2: fgsm, pgd, apgd-ce, apgd-t, fab-t, square, " +
					"autoattack; l1: apgd-ce, apgd-t (l1-APGD), fab-t, square, autoattack; cw is linf only. Other than linf, " +
					"the attack names in the outputs carry it (pgd-l2, autoattack-l1/apgd-ce); linf, the default, is left out of the cache key"},
			{Name: "step", Type: stages.TypeFloat, Default: 0.0, Min: stages.Float(0), Max: stages.Float(1),
				Doc: "step size of fgsm, pgd and cw; 0 = eps for fgsm, eps/4 for pgd and cw (2/255 at eps 8/255)"},
			{Name: "steps", Type: stages.TypeInt, Default: int64(0), Min: stages.Float(0), Max: stages.Float(10000),
				Doc: "iterations; 0 = each attack's protocol default: 20 for pgd and cw (PGD-20), 100 for apgd-ce, apgd-t, " +
					"fab-t and the attacks inside autoattack; a positive value applies to all of them"},
			{Name: "restarts", Type: stages.TypeInt, Default: int64(1), Min: stages.Float(1), Max: stages.Float(100),
				Doc: "random restarts of pgd, cw, apgd-ce, apgd-t, fab-t and square, keeping each sample's worst case " +
					"(autoattack runs each of its attacks once)"},
			{Name: "queries", Type: stages.TypeInt, Default: int64(5000), Min: stages.Float(1), Max: stages.Float(1000000),
				Doc: "square: queries per sample"},
			{Name: "kappa", Type: stages.TypeFloat, Default: 50.0, Min: stages.Float(0),
				Doc: "cw: confidence κ of the margin loss"},
			{Name: "targets", Type: stages.TypeInt, Default: int64(9), Min: stages.Float(1), Max: stages.Float(1000),
				Doc: "apgd-t, fab-t: target classes (the most likely wrong ones; capped at K−1)"},
			{Name: "batch", Type: stages.TypeInt, Default: int64(256), Min: stages.Float(1), Max: stages.Float(65536),
				Doc: "samples per forward pass"},
			{Name: "workers", Type: stages.TypeInt, Default: int64(0), Min: stages.Float(0), Max: stages.Float(1024),
				Doc: "parallel workers; 0 = every core (results depend on batch and workers: set it for bit-identical replays)"},
			{Name: "limit", Type: stages.TypeInt, Default: int64(0), Min: stages.Float(0),
				Doc: "evaluate only the first limit samples (0 = all)"},
			{Name: "split", Type: stages.TypeString, Default: "",
				Doc: "a name for the dataset (e.g. train or test), written as a `split` column of the metrics so that a report can set one split against another (compare: [split, train, test])"},
		}, device.Params("eval")...),
		Cores: runtime.NumCPU(),
	}
}

// NormLinf is the default threat model of the norm parameter, the one eval
// always used; it is left out of the cache key (see Stage.KeyNeutral).
const NormLinf = "linf"

// Config is the eval stage's checked configuration.
type Config struct {
	Attacks  []string
	Norm     nnattack.Norm // threat model of every attack; eps is a radius in it
	Eps      float64
	Step     float64 // 0 = the attack's default
	Steps    int     // 0 = each attack's default
	Restarts int
	Queries  int
	Kappa    float64
	Targets  int
	Batch    int
	Workers  int    // 0 = runtime.NumCPU()
	Limit    int    // 0 = every sample
	Split    string // the dataset's name in the metrics' split column; "" = no column

	// CheckpointDir keeps finished (model, attack) pairs for a rerun to
	// reuse (Env.Checkpoints; set by Run, not a parameter); "" keeps none.
	CheckpointDir string
}

// ConfigFromParams builds a Config from typed params. It is checked once
// where it is used: by Stage.Check at plan time and by Evaluate when it runs.
func ConfigFromParams(ps stages.Params) (Config, error) {
	cfg := Config{
		Eps: ps.Float("eps"), Step: ps.Float("step"), Steps: int(ps.Int("steps")), Restarts: int(ps.Int("restarts")),
		Queries: int(ps.Int("queries")), Kappa: ps.Float("kappa"), Targets: int(ps.Int("targets")),
		Batch: int(ps.Int("batch")), Workers: int(ps.Int("workers")), Limit: int(ps.Int("limit")),
		Split: ps.String("split"),
	}
	if name := ps.String("norm"); name != "" {
		norm, err := nnattack.ParseNorm(name)
		if err != nil {
			return Config{}, err
		}
		cfg.Norm = norm
	}
	for i, v := range ps.List("attacks") {
		name, ok := v.(string)
		if !ok {
			return Config{}, fmt.Errorf("attacks[%d] is %v (%T), want an attack name", i, v, v)
		}
		cfg.Attacks = append(cfg.Attacks, name)
	}
	return cfg, nil
}

// Validate reports the configuration's mistakes (see problems).
func (c Config) Validate() error { return param.Join(c.problems()) }

// KeyNeutral implements pipeline.KeyNeutralStage: device cpu (index 0) and
// norm linf are how eval always ran, so they are left out of the cache key.
func (Stage) KeyNeutral() stages.Params {
	ps := device.KeyNeutral()
	ps["norm"] = NormLinf
	return ps
}

// AttackLabel is the name under which attack appears in the outputs: the
// attack itself under L∞ (so tables written before the norm parameter keep
// their bytes), else with the norm appended, e.g. pgd-l2; clean has no norm.
func (c Config) AttackLabel(attack string) string {
	if c.Norm == nnattack.Linf || attack == nnattack.NameClean {
		return attack
	}
	return attack + "-" + c.Norm.String()
}

// Run reads the models and the dataset, evaluates and writes both outputs. A
// device it cannot compute on fails it before any input is read (see
// device.Require).
func (Stage) Run(ctx context.Context, env *stages.Env) error {
	if err := device.Require("eval", env.Params); err != nil {
		return err
	}
	cfg, err := ConfigFromParams(env.Params)
	if err != nil {
		return err
	}
	cfg.CheckpointDir = env.Checkpoints
	ds, err := env.ReadDataset("dataset")
	if err != nil {
		return err
	}
	models, tags, err := env.ReadModels("models")
	if err != nil {
		return err
	}
	targets := make([]Target, len(models))
	for i, m := range models {
		w, err := stages.WeightsFromArtifact(m)
		if err != nil {
			return fmt.Errorf("model %d of %d (tags %v): %w", i+1, len(models), tags[i], err)
		}
		targets[i] = Target{Label: CheckpointLabel(tags[i], m.Meta), Weights: w}
	}
	if len(targets) > 1 {
		for i := range targets {
			if slices.IndexFunc(targets, func(t Target) bool { return t.Label == targets[i].Label }) != i {
				return fmt.Errorf("two models have the checkpoint label %q: gather models that differ in their matrix tags "+
					"or checkpoint metadata", targets[i].Label)
			}
		}
	}
	var source *Target
	if env.HasInput("source") {
		m, err := env.ReadModel("source")
		if err != nil {
			return err
		}
		w, err := stages.WeightsFromArtifact(m)
		if err != nil {
			return fmt.Errorf("source model: %w", err)
		}
		source = &Target{Label: "source:" + CheckpointLabel(env.Inputs["source"][0].Tags, m.Meta), Weights: w}
	}
	res, err := Evaluate(ctx, cfg, targets, source, ds, env.Seed, env.Progress)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	if err := env.WriteTable("metrics", res.Metrics); err != nil {
		return err
	}
	if err := env.WritePredictions("predictions", res.Predictions); err != nil {
		return err
	}
	acc := res.Metrics.Column(ColAccuracy).Floats
	for i, label := range res.Metrics.Column(ColCheckpoint).Strings {
		env.Report(label+" "+res.Metrics.Column(ColAttack).Strings[i], acc[i])
	}
	for attack, s := range res.Seconds {
		env.Report("seconds "+attack, s)
	}
	env.Report("workers", res.Workers)
	if res.Resumed > 0 {
		env.Report("resumed_pairs", res.Resumed)
	}
	if len(res.Warnings) > 0 {
		env.Report(stages.SummaryWarnings, res.Warnings)
	}
	return nil
}

// CheckpointLabel names a model in the eval outputs: its matrix tags as
// "axis=value" pairs sorted by axis and joined by ",", then "/" and its
// "checkpoint" metadata (train writes best or final). Either part may be
// missing: "best", "labels=sglr/best", "labels=sglr"; a model with neither is
// "model".
func CheckpointLabel(tags, meta map[string]string) string {
	var parts []string
	for _, axis := range slices.Sorted(maps.Keys(tags)) {
		parts = append(parts, axis+"="+tags[axis])
	}
	label := strings.Join(parts, ",")
	if c := meta["checkpoint"]; c != "" {
		if label != "" {
			label += "/"
		}
		label += c
	}
	if label == "" {
		return "model"
	}
	return label
}
