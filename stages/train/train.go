// Package train is the built-in `train` stage: adversarial training (PGD-AT,
// TRADES) or standard training of an mlp, cnn or preact-resnet18 with every
// label strategy SGLR is compared with (hard, label smoothing, self-guided
// label refinement, given soft labels, distillation), selecting the best
// epoch on the validation set's PGD robust accuracy.
//
// Choices where the method leaves room (documented in the parameters too):
//   - The clean and adversarial predictions that feed the SGLR bank and the
//     training accuracies are computed in eval mode, by the same network the
//     attack runs on, before the batch's update; they are detached either way.
//     (The reference computes them in train mode; for BatchNorm-free models
//     the two agree.) With method standard there is no x', so p(x') = p(x).
//   - "Best" is the validated epoch with the highest robust accuracy; ties go
//     to the earlier epoch. The last epoch is always validated.
//   - Every output but the curve's `seconds` column is bit-identical for the
//     same inputs, seed and worker count. `workers` is a parameter (so part of
//     the cache key); its default 0 means every core of the machine running
//     it, so set it explicitly to replay bit-identically elsewhere.
package train

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"strconv"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/nn/model"
	"github.com/sglr-pipe/sglr-pipe/stages"
	"github.com/sglr-pipe/sglr-pipe/stages/internal/device"
)

// Stage is the `train` stage.
type Stage struct{}

func init() { stages.Builtin.Register(Stage{}) }

// Spec declares the stage.
func (Stage) Spec() stages.Spec {
	return stages.Spec{
		Name:    "train",
		Version: "2",
		Doc: "Trains a model (standard, PGD-AT or TRADES) with hard, smoothed, self-guided (SGLR), given or distilled " +
			"labels; keeps the epoch with the best validation PGD robust accuracy and the final one.",
		Inputs: []stages.Port{
			{Name: "train", Kind: artifacts.KindDataset, Doc: "training set (its labels may be noisy)"},
			{Name: "val", Kind: artifacts.KindDataset, Doc: "validation set for model selection"},
			{Name: "labels", Kind: artifacts.KindLabels, Optional: true,
				Doc: "labels: given: soft labels (e.g. from refine); distill: teacher probabilities; matched by sample id"},
		},
		Outputs: []stages.Port{
			{Name: "best", Kind: artifacts.KindModel, Doc: "the model after the epoch with the highest validation robust accuracy"},
			{Name: "final", Kind: artifacts.KindModel, Doc: "the model after the last epoch"},
			{Name: "curve", Kind: artifacts.KindCurve,
				Doc: "per epoch: epoch, lr, train_loss, train_clean_acc, train_robust_acc, val_clean_acc, val_robust_acc, recovered (epoch wall times go to the run record, so the curve is the same bytes on every run)"},
			{Name: "labels", Kind: artifacts.KindLabels,
				Doc: "the final SGLR bank (or the last epoch's targets) as soft labels, with the hard training labels"},
		},
		Params: params(),
		Cores:  runtime.NumCPU(),
	}
}

// KeyNeutral implements pipeline.KeyNeutralStage: device cpu (index 0) and
// norm linf are how train always ran, so they are left out of the cache key.
func (Stage) KeyNeutral() stages.Params { return keyNeutral() }

// CoresFor implements pipeline.CoresStage: an instance reserves as many
// cores as it has workers, so that a sweep with `workers: 1` runs one
// training per core.
func (Stage) CoresFor(ps stages.Params) int {
	cfg, err := ConfigFromParams(ps)
	if err != nil {
		return 1
	}
	cfg.resolveWorkers()
	return cfg.Workers
}

// Run trains and writes the four outputs. A device it cannot compute on
// fails it before any input is read (see device.Require).
func (Stage) Run(ctx context.Context, env *stages.Env) error {
	if err := device.Require("train", env.Params); err != nil {
		return err
	}
	cfg, err := ConfigFromParams(env.Params)
	if err != nil {
		return err
	}
	cfg.CheckpointDir = env.Checkpoints
	trainSet, err := env.ReadDataset("train")
	if err != nil {
		return err
	}
	valSet, err := env.ReadDataset("val")
	if err != nil {
		return err
	}
	var given *artifacts.Labels
	if p := cfg.labelsInputProblem(env.HasInput("labels")); p != nil {
		return p
	}
	if cfg.NeedsLabelsInput() {
		if given, err = env.ReadLabels("labels"); err != nil {
			return err
		}
	}
	res, err := Train(ctx, cfg, trainSet, valSet, given, ReplicateSeed(env.Seed, env.Params.Int("seed")), env.Progress)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	finalCurve := res.Curve.Column(artifacts.ColValRobustAcc).Floats
	finalRobust := finalCurve[len(finalCurve)-1]
	checkpoints := []struct {
		port   string
		w      *model.Weights
		epoch  int
		robust float64
	}{
		{"best", res.Best, res.BestEpoch, res.BestValRobust},
		{"final", res.Final, cfg.Epochs, finalRobust},
	}
	for _, c := range checkpoints {
		m, err := stages.ModelArtifact(c.w, map[string]string{
			"stage": "train", "checkpoint": c.port, "epoch": strconv.Itoa(c.epoch),
			"val_robust_acc": formatFloat(c.robust), "method": cfg.Method, "labels": cfg.Labels,
		})
		if err != nil {
			return fmt.Errorf("%s model: %w", c.port, err)
		}
		if err := env.WriteModel(c.port, m); err != nil {
			return err
		}
	}
	if err := env.WriteCurve("curve", res.Curve); err != nil {
		return err
	}
	if err := env.WriteLabels("labels", res.Labels); err != nil {
		return err
	}
	env.Report("best_epoch", res.BestEpoch)
	env.Report("best_val_robust_acc", res.BestValRobust)
	env.Report("final_val_robust_acc", finalRobust)
	env.Report("workers", res.Workers)
	if res.ResumedFrom > 0 {
		env.Report("resumed_from_epoch", res.ResumedFrom)
	}
	total := 0.0
	for _, s := range res.EpochSeconds {
		total += s
	}
	env.Report("seconds_per_epoch", total/float64(len(res.EpochSeconds)))
	if res.Flipped >= 0 {
		env.Report("flipped", res.Flipped)
	}
	if !math.IsNaN(res.Recovered) {
		env.Report("recovered", res.Recovered)
	}
	return nil
}

// ReplicateSeed mixes a replicate number into an instance's derived seed
// (splitmix64 of the pair), so replicates differ even where the instance id
// does not; replicate 0 keeps the derived seed.
func ReplicateSeed(derived uint64, replicate int64) uint64 {
	if replicate == 0 {
		return derived
	}
	z := derived ^ (uint64(replicate) * 0x9e3779b97f4a7c15)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
