package train

import (
	"fmt"
	"os"

	"github.com/sglr-pipe/sglr-pipe/stages"
)

// resume restores the run from the checkpoint in cfg.CheckpointDir that is
// furthest along and fits, and returns the 0-based epoch whose validation is
// pending with its training figures. It returns errNoCheckpoint when none
// fits; a checkpoint that fits by its header but does not verify or does not
// match the model is removed (it is only a cache of work) and reported
// through warn, and the next best one is tried.
func (t *trainingRun) resume(warn func(string)) (int, epochRow, error) {
	for {
		path, h := bestCheckpoint(t.cfg.CheckpointDir, t.cfg, t.sched, t.batchesPerEpoch())
		if path == "" {
			return 0, epochRow{}, errNoCheckpoint
		}
		_, b, err := readCheckpoint(path)
		if err == nil {
			err = t.restore(b)
		}
		if err == nil {
			return h.Epoch - 1, b.Pending.epochRow(), nil
		}
		warn(fmt.Sprintf("ignoring checkpoint %s: %v", path, err))
		if rerr := os.Remove(path); rerr != nil {
			return 0, epochRow{}, fmt.Errorf("remove unusable checkpoint %s: %w", path, rerr)
		}
	}
}

// restore sets the run's state to b's. It checks everything before it
// changes anything, so a bad checkpoint leaves a fresh run untouched.
func (t *trainingRun) restore(b checkpointBody) error {
	if err := t.checkpointShapes(b); err != nil {
		return err
	}
	shuffle, augment, attackState := *t.shufflePCG, *t.augmentPCG, *t.attackPCG
	if err := shuffle.UnmarshalBinary(b.Shuffle); err != nil {
		return fmt.Errorf("shuffle stream: %w", err)
	}
	if err := augment.UnmarshalBinary(b.Augment); err != nil {
		return fmt.Errorf("augmentation stream: %w", err)
	}
	if err := attackState.UnmarshalBinary(b.Attack); err != nil {
		return fmt.Errorf("attack stream: %w", err)
	}
	if t.bank != nil {
		if err := t.bank.SetState(b.Bank, b.History); err != nil {
			return err
		}
	} else if b.Bank != nil {
		return fmt.Errorf("it holds an SGLR bank, this run uses %s labels", t.cfg.Labels)
	}
	if err := t.sgd.SetState(t.weights.Params, b.Momentum); err != nil {
		return err
	}
	for i, p := range t.weights.Params {
		copy(p.Data, b.Weights[i])
	}
	if err := t.eval.SetWeights(t.weights); err != nil {
		return err
	}
	*t.shufflePCG, *t.augmentPCG, *t.attackPCG = shuffle, augment, attackState
	t.best, t.bestEpoch, t.bestValRobust = nil, b.BestEpoch, b.BestValRobust
	if b.Best != nil {
		t.best = t.weights.Clone()
		for i, p := range t.best.Params {
			copy(p.Data, b.Best[i])
		}
	}
	t.curve.rows = t.curve.rows[:0]
	for _, r := range b.Rows {
		t.curve.append(r.epochRow())
	}
	return nil
}

// ResumeFrom implements pipeline.ResumableStage: "resume from epoch N" when
// dir holds a checkpoint that an instance with params would continue from.
func (Stage) ResumeFrom(ps stages.Params, dir string) string {
	cfg, err := ConfigFromParams(ps)
	if err != nil {
		return ""
	}
	cfg.resolveWorkers()
	sched, err := cfg.schedule()
	if err != nil {
		return ""
	}
	path, h := bestCheckpoint(dir, cfg, sched, 0)
	if path == "" {
		return ""
	}
	return fmt.Sprintf("resume from epoch %d", h.Epoch)
}

// ResumeNeutral implements pipeline.ResumableStage: a run of more (or fewer)
// epochs continues from a checkpoint of the same run otherwise.
func (Stage) ResumeNeutral() []string { return []string{"epochs"} }

// KeyIgnored implements pipeline.KeyIgnoredStage: how often checkpoints are
// saved never changes the outputs.
func (Stage) KeyIgnored() []string { return []string{"checkpoint_every"} }
