// Package refine is the built-in `refine` stage, the offline form of
// self-guided label refinement: from a trained model and a dataset it writes
// soft labels r·(λ·p(x) + (1−λ)·p(x')) + (1−r)·onehot(y), where x' is a PGD
// adversarial example of x against its label y, for `train` to use with
// labels: given.
package refine

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/nn/attack"
	"github.com/sglr-pipe/sglr-pipe/nn/metric"
	"github.com/sglr-pipe/sglr-pipe/nn/model"
	"github.com/sglr-pipe/sglr-pipe/stages"
	"github.com/sglr-pipe/sglr-pipe/stages/internal/device"
)

// Stage is the `refine` stage.
type Stage struct{}

func init() { stages.Builtin.Register(Stage{}) }

// Spec declares the stage: a model and a dataset in, labels out.
func (Stage) Spec() stages.Spec {
	return stages.Spec{
		Name:    "refine",
		Version: "1",
		Doc: "Soft labels r·(λ·p(x) + (1−λ)·p(x')) + (1−r)·onehot(y) from a model's clean and PGD-adversarial " +
			"predictions, for train with labels: given.",
		Inputs: []stages.Port{
			{Name: "model", Kind: artifacts.KindModel, Doc: "the model whose predictions refine the labels"},
			{Name: "dataset", Kind: artifacts.KindDataset, Doc: "the samples to relabel (usually the training set)"},
		},
		Outputs: []stages.Port{{Name: "labels", Kind: artifacts.KindLabels,
			Doc: "soft labels with the dataset's hard labels and sample ids"}},
		Params: append([]stages.Param{
			{Name: "lambda", Type: stages.TypeFloat, Default: 0.2, Min: stages.Float(0), Max: stages.Float(1),
				Doc: "weight λ of the clean prediction p(x); 1−λ goes to the adversarial one p(x')"},
			{Name: "r", Type: stages.TypeFloat, Default: 1.0, Min: stages.Float(0), Max: stages.Float(1),
				Doc: "weight of the model's prediction; 1−r stays on the hard label"},
			{Name: "eps", Type: stages.TypeFloat, Default: 8.0 / 255, Min: stages.Float(0), Max: stages.Float(1),
				Doc: "L∞ radius of the PGD attack that gives x'"},
			{Name: "step", Type: stages.TypeFloat, Default: 2.0 / 255, Min: stages.Float(0), Max: stages.Float(1),
				Doc: "PGD step size"},
			{Name: "steps", Type: stages.TypeInt, Default: int64(10), Min: stages.Float(0), Max: stages.Float(1000),
				Doc: "PGD steps; 0 with random_start false makes x' = x"},
			{Name: "random_start", Type: stages.TypeBool, Default: true, Doc: "PGD starts from a uniform point of the eps-ball"},
			{Name: "batch", Type: stages.TypeInt, Default: int64(256), Min: stages.Float(1), Max: stages.Float(65536),
				Doc: "samples per forward pass (does not change the result)"},
			{Name: "workers", Type: stages.TypeInt, Default: int64(0), Min: stages.Float(0), Max: stages.Float(1024),
				Doc: "data-parallel workers; 0 = every core (results agree across counts up to float rounding)"},
		}, device.Params("refine")...),
		Cores: runtime.NumCPU(),
	}
}

// Config is the refine stage's checked configuration.
type Config struct {
	Lambda, R float64
	Attack    attack.PGD
	Batch     int
	Workers   int // 0 = runtime.NumCPU()
}

// KeyNeutral implements pipeline.KeyNeutralStage: device cpu (index 0) is
// how refine always ran, so it is left out of the cache key.
func (Stage) KeyNeutral() stages.Params { return device.KeyNeutral() }

// Run reads the model and dataset, refines the labels and writes them. A
// device it cannot compute on fails it before any input is read (see
// device.Require).
func (Stage) Run(ctx context.Context, env *stages.Env) error {
	if err := device.Require("refine", env.Params); err != nil {
		return err
	}
	cfg := Config{
		Lambda: env.Params.Float("lambda"),
		R:      env.Params.Float("r"),
		Attack: attack.PGD{Eps: env.Params.Float("eps"), Step: env.Params.Float("step"),
			Steps: int(env.Params.Int("steps")), RandomStart: env.Params.Bool("random_start"), Restarts: 1},
		Batch:   int(env.Params.Int("batch")),
		Workers: int(env.Params.Int("workers")),
	}
	m, err := env.ReadModel("model")
	if err != nil {
		return err
	}
	ds, err := env.ReadDataset("dataset")
	if err != nil {
		return err
	}
	w, err := stages.WeightsFromArtifact(m)
	if err != nil {
		return err
	}
	env.Progress.Start(int64(len(ds.Labels)), "images")
	labels, err := Refine(ctx, cfg, w, ds, env.Seed, env.Progress)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	if err := env.WriteLabels("labels", labels); err != nil {
		return err
	}
	if v, ok := labels.Meta["recovered"]; ok {
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			env.Report("recovered", f)
		}
	}
	if v, ok := labels.Meta["flipped"]; ok {
		if n, err := strconv.Atoi(v); err == nil {
			env.Report("flipped", n)
		}
	}
	return nil
}

// Refine computes the refined soft labels of every sample of ds with the
// model w, attacking in eval mode with a generator seeded by seed. It adds
// len(batch) to progress per batch (progress may be nil).
func Refine(ctx context.Context, cfg Config, w *model.Weights, ds *artifacts.Dataset, seed uint64, progress stages.Progress) (*artifacts.Labels, error) {
	if progress == nil {
		progress = stages.NopProgress{}
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	k, d := len(ds.ClassNames), w.Arch.InputSize()
	if w.Arch.Classes != k {
		return nil, fmt.Errorf("the model has %d classes, the dataset %d", w.Arch.Classes, k)
	}
	if !slices.Equal(w.Arch.Input, ds.Shape) {
		return nil, fmt.Errorf("the model takes samples of shape %v, the dataset has %v", w.Arch.Input, ds.Shape)
	}
	n := len(ds.Labels)
	if n == 0 {
		return nil, fmt.Errorf("the dataset is empty")
	}
	workers := cfg.Workers
	if workers == 0 {
		workers = runtime.NumCPU()
	}
	batch := min(cfg.Batch, n)
	eval, err := model.NewEvaluator(w, batch, workers)
	if err != nil {
		return nil, fmt.Errorf("evaluator: %w", err)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	var attacker attack.Attacker
	soft := make([]float32, n*k)
	logits, pClean, pAdv := make([]float32, batch*k), make([]float32, batch*k), make([]float32, batch*k)
	xAdv := make([]float32, batch*d)
	lam, r := cfg.Lambda, cfg.R
	for start := 0; start < n; start += batch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m := min(batch, n-start)
		x := ds.Images[start*d : (start+m)*d]
		y := ds.Labels[start : start+m]
		if err := eval.Logits(x, m, logits[:m*k]); err != nil {
			return nil, fmt.Errorf("samples %d..%d: %w", start, start+m-1, err)
		}
		metric.Softmax(logits[:m*k], m, k, pClean[:m*k])
		if err := attacker.PGD(eval, x, y, m, cfg.Attack, rng, xAdv[:m*d]); err != nil {
			return nil, fmt.Errorf("samples %d..%d: attack: %w", start, start+m-1, err)
		}
		if err := eval.Logits(xAdv[:m*d], m, logits[:m*k]); err != nil {
			return nil, fmt.Errorf("samples %d..%d: %w", start, start+m-1, err)
		}
		metric.Softmax(logits[:m*k], m, k, pAdv[:m*k])
		for i := range m {
			row := soft[(start+i)*k : (start+i+1)*k]
			for j := range k {
				v := r * (lam*float64(pClean[i*k+j]) + (1-lam)*float64(pAdv[i*k+j]))
				if j == int(y[i]) {
					v += 1 - r
				}
				row[j] = float32(v)
			}
		}
		progress.Add(int64(m))
	}
	meta := map[string]string{
		"stage": "refine", "lambda": formatFloat(lam), "r": formatFloat(r),
		"eps": formatFloat(cfg.Attack.Eps), "steps": strconv.Itoa(cfg.Attack.Steps),
	}
	if rec, flipped := stages.Recovered(soft, k, ds.CleanLabels, ds.Flipped); flipped >= 0 {
		meta["flipped"] = strconv.Itoa(flipped)
		if !math.IsNaN(rec) {
			meta["recovered"] = formatFloat(rec)
		}
	}
	return &artifacts.Labels{IDs: slices.Clone(ds.IDs), Hard: slices.Clone(ds.Labels), Soft: soft, K: k, Meta: meta}, nil
}

// validate reports a configuration mistake.
func (c Config) validate() error {
	if !(c.Lambda >= 0 && c.Lambda <= 1) || !(c.R >= 0 && c.R <= 1) {
		return fmt.Errorf("lambda %v and r %v must be in [0,1]", c.Lambda, c.R)
	}
	if c.Batch < 1 {
		return fmt.Errorf("batch %d must be >= 1", c.Batch)
	}
	if c.Workers < 0 {
		return fmt.Errorf("workers %d must be >= 0 (0 = every core)", c.Workers)
	}
	if err := c.Attack.Validate(); err != nil {
		return fmt.Errorf("eps, step, steps: %w", err)
	}
	return nil
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
