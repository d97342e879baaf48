package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/nn/attack"
	"github.com/sglr-pipe/sglr-pipe/nn/metric"
	"github.com/sglr-pipe/sglr-pipe/nn/model"
	"github.com/sglr-pipe/sglr-pipe/nn/optim"
	"github.com/sglr-pipe/sglr-pipe/stages"
)

// Result is what Train produced.
type Result struct {
	Best          *model.Weights // the weights after the epoch with the highest validation robust accuracy
	Final         *model.Weights // the weights after the last epoch
	BestEpoch     int            // 1-based
	BestValRobust float64
	Curve         *artifacts.Table  // one row per epoch (see the curve columns)
	Labels        *artifacts.Labels // the SGLR bank, or the targets of the last epoch, with the hard labels
	// Recovered is the share of flipped training samples whose label row's
	// argmax is the clean label; NaN when the training set does not say which
	// samples are flipped or none is.
	Recovered float64
	Flipped   int // flipped training samples (−1 when unknown)
	Workers   int // the data-parallel workers used
	// ResumedFrom is the epoch (1-based) of the checkpoint the run resumed
	// from, 0 when it started from scratch.
	ResumedFrom int
	// EpochSeconds is the wall time of each epoch. It is kept out of the
	// curve so that the curve is the same bytes on every run.
	EpochSeconds []float64
}

// Train runs adversarial (or standard) training of cfg on train, selecting
// the best epoch on val. given holds the labels input for the given and
// distill strategies (nil otherwise). Every random choice comes from seed
// through separate streams (initialisation, shuffling, augmentation,
// training attack, validation attack per epoch), so the same seed, data and
// worker count give bit-identical weights. It stops between batches when ctx
// is cancelled and reports progress per epoch.
func Train(ctx context.Context, cfg Config, train, val *artifacts.Dataset, given *artifacts.Labels, seed uint64, progress stages.Progress) (*Result, error) {
	if progress == nil {
		progress = stages.NopProgress{}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	k, err := checkDatasets(train, val)
	if err != nil {
		return nil, err
	}
	cfg.Arch.Input = slices.Clone(train.Shape)
	cfg.Arch.Classes = k
	cfg.resolveWorkers()
	t, err := newTrainingRun(cfg, train, val, given, seed)
	if err != nil {
		return nil, err
	}
	progress.Start(int64(cfg.Epochs), "epochs")
	first := 0
	if cfg.CheckpointDir != "" {
		epoch, pending, err := t.resume(progress.Status)
		switch {
		case err == nil:
			t.resumedFrom = epoch + 1
			progress.Add(int64(epoch))
			progress.Status(fmt.Sprintf("resumed from epoch %d", epoch+1))
			if err := t.finishEpoch(ctx, epoch, pending, progress); err != nil {
				return nil, err
			}
			first = epoch + 1
		case !errors.Is(err, errNoCheckpoint):
			return nil, err
		}
	}
	for epoch := first; epoch < cfg.Epochs; epoch++ {
		row, err := t.trainEpoch(ctx, epoch)
		if err != nil {
			return nil, err
		}
		if t.checkpointDue(epoch) {
			if err := t.saveCheckpoint(epoch, row); err != nil {
				return nil, err
			}
			t.lastCheckpoint = time.Now()
		}
		if err := t.finishEpoch(ctx, epoch, row, progress); err != nil {
			return nil, err
		}
	}
	return t.result()
}

// resolveWorkers resolves workers 0 to every core of this machine.
func (c *Config) resolveWorkers() {
	if c.Workers == 0 {
		c.Workers = runtime.NumCPU()
	}
}

// schedule is the configured learning-rate schedule.
func (c Config) schedule() (optim.Schedule, error) {
	return optim.ParseSchedule(c.Schedule, c.LR, c.Milestones, c.LRFactor, c.Epochs, c.PerIter)
}

// AutoCheckpointInterval is the least time between two checkpoints with
// checkpoint_every 0: a checkpoint costs a write and two fsyncs, which at
// every epoch of a small model would cost more than the training.
const AutoCheckpointInterval = time.Minute

// checkpointDue reports whether a checkpoint is saved after epoch (0-based),
// when there is a place: after the last epoch, and every CheckpointEvery
// epochs or, for 0, once AutoCheckpointInterval has passed since the last.
func (t *trainingRun) checkpointDue(epoch int) bool {
	every := t.cfg.CheckpointEvery
	switch {
	case t.cfg.CheckpointDir == "" || every < 0:
		return false
	case epoch == t.cfg.Epochs-1:
		return true
	case every == 0:
		return time.Since(t.lastCheckpoint) >= AutoCheckpointInterval
	}
	return (epoch+1)%every == 0
}

// batchesPerEpoch is the number of batches of every epoch (the last one partial).
func (t *trainingRun) batchesPerEpoch() int {
	return (len(t.train.Labels) + t.cfg.Batch - 1) / t.cfg.Batch
}

// stream numbers of the random generators derived from the seed.
const (
	streamShuffle uint64 = iota + 1
	streamAugment
	streamAttack
	streamValidation // + epoch
)

// trainingRun is the state of one training run.
type trainingRun struct {
	cfg        Config
	train, val *artifacts.Dataset
	k, d       int
	seed       uint64

	weights *model.Weights
	eval    *model.Evaluator
	trainer *model.Trainer
	sgd     *optim.SGD
	sched   optim.Schedule

	fixedTargets []float32 // [N,K] for every strategy but sglr
	bank         *optim.SGLRBank

	shuffleRNG, augmentRNG, attackRNG *rand.Rand
	// the streams' sources, whose state a checkpoint saves
	shufflePCG, augmentPCG, attackPCG *rand.PCG
	attacker                          attack.Attacker

	// per-batch scratch
	x, xAug, xAdv, clean, adv, pClean, pAdv, targets []float32
	labels                                           []int32

	best          *model.Weights
	bestEpoch     int
	bestValRobust float64
	curve         curveBuilder
	resumedFrom   int // the checkpoint's epoch (1-based) when resumed, else 0
	// lastCheckpoint is when the last checkpoint was saved, or the run began.
	lastCheckpoint time.Time
}

// epochRow is one row of the curve.
type epochRow struct {
	epoch                                  int
	lr, trainLoss, trainClean, trainRobust float64
	valClean, valRobust, seconds           float64
	recovered                              float64
}

func newTrainingRun(cfg Config, train, val *artifacts.Dataset, given *artifacts.Labels, seed uint64) (*trainingRun, error) {
	t := &trainingRun{
		cfg: cfg, train: train, val: val, k: cfg.Arch.Classes, d: cfg.Arch.InputSize(), seed: seed,
		shufflePCG:    rand.NewPCG(seed, streamShuffle),
		augmentPCG:    rand.NewPCG(seed, streamAugment),
		attackPCG:     rand.NewPCG(seed, streamAttack),
		bestValRobust: math.Inf(-1), lastCheckpoint: time.Now(),
	}
	t.shuffleRNG, t.augmentRNG, t.attackRNG = rand.New(t.shufflePCG), rand.New(t.augmentPCG), rand.New(t.attackPCG)
	var err error
	if t.weights, err = model.InitWith(cfg.Arch, seed, cfg.Init); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if t.sched, err = cfg.schedule(); err != nil {
		return nil, err
	}
	t.sgd = optim.NewSGD(t.weights.Params, cfg.Momentum, cfg.WeightDecay, cfg.Nesterov)
	batch := min(cfg.Batch, len(train.Labels))
	// The evaluator cuts every batch into one chunk per worker, so that the
	// attack's passes run on every core.
	evalBatch := (batch + cfg.Workers - 1) / cfg.Workers
	if t.eval, err = model.NewEvaluator(t.weights, evalBatch, cfg.Workers); err != nil {
		return nil, fmt.Errorf("evaluator: %w", err)
	}
	if t.trainer, err = model.NewTrainer(t.weights, batch, cfg.Workers); err != nil {
		return nil, fmt.Errorf("trainer: %w", err)
	}
	// The trainer's master weights are the model from here on: the optimiser
	// updates them in place and the trainer keeps the BatchNorm running
	// statistics in them.
	t.weights = t.trainer.Weights()
	if err := t.setUpTargets(given); err != nil {
		return nil, err
	}
	n, k, d := batch, t.k, t.d
	t.x, t.xAug, t.xAdv = make([]float32, n*d), make([]float32, n*d), make([]float32, n*d)
	t.clean, t.adv, t.pClean, t.pAdv, t.targets = make([]float32, n*k), make([]float32, n*k), make([]float32, n*k), make([]float32, n*k), make([]float32, n*k)
	t.labels = make([]int32, n)
	return t, nil
}

// setUpTargets prepares the label strategy: the SGLR bank, or the fixed
// targets of every training sample.
func (t *trainingRun) setUpTargets(given *artifacts.Labels) error {
	n, k := len(t.train.Labels), t.k
	switch t.cfg.Labels {
	case LabelsSGLR:
		bank, err := optim.NewSGLRBank(t.train.Labels, k, t.cfg.SGLR)
		if err != nil {
			return err
		}
		t.bank = bank
		return nil
	case LabelsHard:
		t.fixedTargets = make([]float32, n*k)
		optim.OneHot(t.train.Labels, k, t.fixedTargets)
	case LabelsSmooth:
		t.fixedTargets = make([]float32, n*k)
		optim.Smooth(t.train.Labels, k, t.cfg.Smoothing, t.fixedTargets)
	case LabelsGiven, LabelsDistill:
		soft, err := MatchLabels(given, t.train, t.cfg.Labels == LabelsDistill)
		if err != nil {
			return err
		}
		if t.cfg.Labels == LabelsGiven {
			t.fixedTargets = soft
		} else {
			t.fixedTargets = make([]float32, n*k)
			optim.DistillTargets(t.train.Labels, soft, k, t.cfg.DistillAlpha, t.fixedTargets)
		}
	}
	return nil
}

// trainEpoch trains one epoch (0-based) and returns its row's training
// figures; finishEpoch completes it.
func (t *trainingRun) trainEpoch(ctx context.Context, epoch int) (epochRow, error) {
	start := time.Now()
	cfg := t.cfg
	batches := model.Batches(len(t.train.Labels), cfg.Batch, true, t.shuffleRNG)
	row := epochRow{epoch: epoch + 1, valClean: math.NaN(), valRobust: math.NaN()}
	var lossSum float64
	var cleanRight, advRight, seen int
	adversarial := cfg.Method != MethodStandard
	for bi, rows := range batches {
		if err := ctx.Err(); err != nil {
			return row, err
		}
		b, err := t.step(epoch, bi, len(batches), rows)
		if err != nil {
			return row, err
		}
		if bi == 0 {
			row.lr = b.lr
		}
		n := len(rows)
		lossSum += b.loss * float64(n)
		cleanRight += b.cleanRight
		advRight += b.advRight
		seen += n
	}
	row.trainLoss = lossSum / float64(seen)
	row.trainClean = float64(cleanRight) / float64(seen)
	row.trainRobust = math.NaN()
	if adversarial {
		row.trainRobust = float64(advRight) / float64(seen)
	}
	row.recovered, _ = stages.Recovered(t.currentTargets(), t.k, t.train.CleanLabels, t.train.Flipped)
	row.seconds = time.Since(start).Seconds()
	return row, nil
}

// finishEpoch validates epoch (0-based) when due, keeps the best model,
// appends the epoch's row to the curve and reports progress. Validation
// depends only on the weights and the epoch, so a resumed run that validates
// the checkpoint's pending epoch gets what the uninterrupted run got.
func (t *trainingRun) finishEpoch(ctx context.Context, epoch int, row epochRow, progress stages.Progress) error {
	start := time.Now()
	if (epoch+1)%t.cfg.ValEvery == 0 || epoch == t.cfg.Epochs-1 {
		var err error
		row.valClean, row.valRobust, err = t.validate(ctx, epoch)
		if err != nil {
			return err
		}
		// Ties keep the earlier epoch: a later epoch must do strictly better.
		if row.valRobust > t.bestValRobust {
			t.best, t.bestEpoch, t.bestValRobust = t.weights.Clone(), epoch+1, row.valRobust
		}
	}
	row.seconds += time.Since(start).Seconds()
	t.curve.append(row)
	progress.Add(1)
	status := fmt.Sprintf("loss %.3g", row.trainLoss)
	if !math.IsNaN(row.valRobust) {
		status += fmt.Sprintf(" val rob %.1f%%", 100*row.valRobust)
	}
	progress.Status(status)
	return nil
}

// batchStats is what one training step measured.
type batchStats struct {
	lr, loss             float64 // the learning rate used and the batch's mean loss
	cleanRight, advRight int     // correct clean and adversarial predictions, before the update
}

// step trains on one batch (bi of nBatches, epoch 0-based): it gathers and
// augments the rows, predicts them clean and adversarially in eval mode,
// updates the SGLR bank or gathers the fixed targets, takes the method's
// training step (trainStep) and one optimiser step.
func (t *trainingRun) step(epoch, bi, nBatches int, rows []int) (batchStats, error) {
	cfg := t.cfg
	k, d := t.k, t.d
	adversarial := cfg.Method != MethodStandard
	n := len(rows)
	x, xAug, xAdv := t.x[:n*d], t.xAug[:n*d], t.xAdv[:n*d]
	clean, adv, targets, labels := t.clean[:n*k], t.adv[:n*k], t.targets[:n*k], t.labels[:n]
	model.Gather(t.train.Images, d, rows, x)
	model.GatherLabels(t.train.Labels, rows, labels)
	if cfg.Augment != (optim.Augment{}) {
		cfg.Augment.Apply(t.augmentRNG, x, n, t.train.Shape, xAug)
		x = xAug
	}
	lr := t.sched.LR(epoch, bi, nBatches)
	// Clean and adversarial predictions in eval mode, before the update:
	// they give the training accuracies and feed the SGLR bank (detached).
	if err := t.eval.Logits(x, n, clean); err != nil {
		return batchStats{}, fmt.Errorf("epoch %d, batch %d: clean logits: %w", epoch+1, bi+1, err)
	}
	if err := finiteLogits(clean); err != nil {
		return batchStats{}, fmt.Errorf("%w at epoch %d, batch %d: lower lr (now %v) or check the inputs", err, epoch+1, bi+1, lr)
	}
	if adversarial {
		if err := t.craft(x, labels, n, xAdv); err != nil {
			if errors.Is(err, attack.ErrNaNGradient) { // the model diverged: its gradients overflow
				return batchStats{}, fmt.Errorf("epoch %d, batch %d: training attack: %w: the model diverged: lower lr (now %v) or check the inputs",
					epoch+1, bi+1, err, lr)
			}
			return batchStats{}, fmt.Errorf("epoch %d, batch %d: training attack: %w", epoch+1, bi+1, err)
		}
		if err := t.eval.Logits(xAdv, n, adv); err != nil {
			return batchStats{}, fmt.Errorf("epoch %d, batch %d: adversarial logits: %w", epoch+1, bi+1, err)
		}
	}
	if t.bank != nil {
		if t.bank.Refining(epoch) {
			metric.Softmax(clean, n, k, t.pClean[:n*k])
			if adversarial {
				metric.Softmax(adv, n, k, t.pAdv[:n*k])
			} else {
				copy(t.pAdv[:n*k], t.pClean[:n*k]) // no adversarial example: x' = x
			}
			t.bank.Update(rows, t.pClean[:n*k], t.pAdv[:n*k])
		}
		t.bank.Targets(rows, epoch, targets)
	} else {
		model.Gather(t.fixedTargets, k, rows, targets)
	}
	loss, err := t.trainStep(epoch, x, xAdv, targets, n)
	if err != nil {
		return batchStats{}, fmt.Errorf("epoch %d, batch %d: training step: %w", epoch+1, bi+1, err)
	}
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return batchStats{}, fmt.Errorf("loss is %v at epoch %d, batch %d: lower lr (now %v) or check the inputs",
			loss, epoch+1, bi+1, lr)
	}
	t.sgd.Step(t.weights.Params, t.trainer.Grads(), lr)
	if err := finiteWeights(t.weights); err != nil {
		return batchStats{}, fmt.Errorf("%w at epoch %d, batch %d: lower lr (now %v) or check the inputs", err, epoch+1, bi+1, lr)
	}
	if err := t.eval.SetWeights(t.weights); err != nil {
		return batchStats{}, err
	}
	return batchStats{lr: lr, loss: loss, cleanRight: correct(clean, labels, k), advRight: correct(adv, labels, k)}, nil
}

// currentTargets are the [N,K] training targets as they stand: the SGLR
// bank, or the fixed targets of every other strategy.
func (t *trainingRun) currentTargets() []float32 {
	if t.bank != nil {
		return t.bank.Bank()
	}
	return t.fixedTargets
}

// craft writes the training attack's adversarial examples for the n inputs x
// (labels their training labels) into xAdv.
func (t *trainingRun) craft(x []float32, labels []int32, n int, xAdv []float32) error {
	cfg := t.cfg
	switch {
	case cfg.tradesAttack():
		return t.attacker.TRADES(t.eval, x, n, attack.TRADES{Eps: cfg.Eps, Step: cfg.Step, Steps: cfg.Steps}, t.attackRNG, xAdv)
	case cfg.Attack == AttackFGSM:
		return t.attacker.FGSM(t.eval, x, labels, n, attack.FGSM{Eps: cfg.Eps, Norm: cfg.Norm}, t.attackRNG, xAdv)
	default:
		return t.attacker.PGD(t.eval, x, labels, n, cfg.trainPGD(), t.attackRNG, xAdv)
	}
}

// validate returns the clean and PGD robust accuracy on the validation set,
// attacking in eval mode with a generator seeded by the seed and the epoch.
func (t *trainingRun) validate(ctx context.Context, epoch int) (clean, robust float64, err error) {
	rng := rand.New(rand.NewPCG(t.seed, streamValidation+uint64(epoch)))
	k, d := t.k, t.d
	n := len(t.val.Labels)
	batch := len(t.labels)
	var cleanRight, advRight int
	for start := 0; start < n; start += batch {
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		m := min(batch, n-start)
		x := t.val.Images[start*d : (start+m)*d]
		labels := t.val.Labels[start : start+m]
		logits := t.clean[:m*k]
		if err := t.eval.Logits(x, m, logits); err != nil {
			return 0, 0, fmt.Errorf("validation after epoch %d: %w", epoch+1, err)
		}
		cleanRight += correct(logits, labels, k)
		if t.cfg.ValSteps == 0 {
			continue
		}
		xAdv := t.xAdv[:m*d]
		if err := t.attacker.PGD(t.eval, x, labels, m, t.cfg.valPGD(), rng, xAdv); err != nil {
			return 0, 0, fmt.Errorf("validation attack after epoch %d: %w", epoch+1, err)
		}
		if err := t.eval.Logits(xAdv, m, logits); err != nil {
			return 0, 0, fmt.Errorf("validation after epoch %d: %w", epoch+1, err)
		}
		advRight += correct(logits, labels, k)
	}
	clean = float64(cleanRight) / float64(n)
	robust = clean
	if t.cfg.ValSteps > 0 {
		robust = float64(advRight) / float64(n)
	}
	return clean, robust, nil
}

// result assembles the outputs after the last epoch.
func (t *trainingRun) result() (*Result, error) {
	n, k := len(t.train.Labels), t.k
	soft := t.currentTargets()
	res := &Result{
		Best: t.best, Final: t.weights, BestEpoch: t.bestEpoch, BestValRobust: t.bestValRobust,
		Curve: t.curve.table(t.cfg), EpochSeconds: t.curve.seconds(),
		Workers: t.cfg.Workers, ResumedFrom: t.resumedFrom,
	}
	res.Recovered, res.Flipped = stages.Recovered(soft, k, t.train.CleanLabels, t.train.Flipped)
	meta := map[string]string{"stage": "train", "labels": t.cfg.Labels, "method": t.cfg.Method,
		"epochs": strconv.Itoa(t.cfg.Epochs)}
	if t.bank != nil {
		meta["warmup"] = strconv.Itoa(t.cfg.SGLR.WarmupEpochs)
	}
	if res.Flipped >= 0 {
		meta["flipped"] = strconv.Itoa(res.Flipped)
	}
	if !math.IsNaN(res.Recovered) {
		meta["recovered"] = formatFloat(res.Recovered)
	}
	res.Labels = &artifacts.Labels{
		IDs:  slices.Clone(t.train.IDs),
		Hard: slices.Clone(t.train.Labels),
		Soft: slices.Clone(soft[:n*k]),
		K:    k,
		Meta: meta,
	}
	return res, nil
}

// checkDatasets checks that train and val fit one model: non-empty, the same
// C,H,W sample shape and the same classes. It returns K.
func checkDatasets(train, val *artifacts.Dataset) (int, error) {
	if len(train.Labels) == 0 || len(val.Labels) == 0 {
		return 0, fmt.Errorf("train has %d samples and val %d: both need at least one", len(train.Labels), len(val.Labels))
	}
	if len(train.Shape) != 3 {
		return 0, fmt.Errorf("train samples have shape %v: the models need C,H,W", train.Shape)
	}
	if !slices.Equal(train.Shape, val.Shape) {
		return 0, fmt.Errorf("train samples have shape %v, val samples %v: they must agree", train.Shape, val.Shape)
	}
	if !slices.Equal(train.ClassNames, val.ClassNames) {
		return 0, fmt.Errorf("train classes %v and val classes %v differ", train.ClassNames, val.ClassNames)
	}
	k := len(train.ClassNames)
	if k < 2 {
		return 0, fmt.Errorf("train has %d classes: need at least 2", k)
	}
	return k, nil
}

// correct counts the rows of logits [len(labels),K] whose argmax is the label.
func correct(logits []float32, labels []int32, k int) int {
	return int(math.Round(metric.Accuracy(logits, labels, k) * float64(len(labels))))
}

// finiteWeights reports the first parameter holding NaN or Inf. Checking
// after every update costs one pass over the weights, little beside the
// attack's forward and backward passes, and names the batch that diverged.
func finiteWeights(w *model.Weights) error {
	for _, p := range w.Params {
		for _, v := range p.Data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("weight %s became %v", p.Name, v)
			}
		}
	}
	return nil
}

// finiteLogits reports a NaN or infinite logit: the model has diverged.
func finiteLogits(logits []float32) error {
	for _, v := range logits {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("the logits became %v", v)
		}
	}
	return nil
}

// formatFloat formats v in the shortest form that round-trips.
func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
