package train

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sglr-pipe/sglr-pipe/nn/optim"
	"github.com/sglr-pipe/sglr-pipe/stages/internal/checkpoint"
)

// A checkpoint is the full state of a training run after the training part
// of one epoch, before that epoch's validation: the weights (with BatchNorm
// statistics), the optimiser's momentum, the SGLR bank, the three random
// streams, the best model so far and the curve of the epochs before. Resuming
// validates the pending epoch if the resumed run validates it (a longer run
// may not, where the shorter one validated its last epoch), so a checkpoint
// taken at the end of a 60-epoch run continues an 80-epoch one exactly as if
// it had run from the start.
//
// The file (see stages/internal/checkpoint) holds a checkpointHeader and a
// checkpointBody. It is written atomically and checked in full before any of
// it is used: a checkpoint that does not verify is removed and training
// starts over.
const checkpointMagic = "sglr-checkpoint/1\n"

// checkpointHeader is what decides whether a checkpoint fits a run; plan
// reads only this part.
type checkpointHeader struct {
	// Fingerprint is the sha256 of the run's configuration less its epochs
	// (configFingerprint): the schedule's milestones, the SGLR warm-up and
	// every other setting must be the same.
	Fingerprint string
	Epochs      int    // epochs of the run that wrote it
	Epoch       int    // epochs whose training part is done (1-based; the last one's validation is pending)
	Batches     int    // batches per epoch
	LRDigest    string // sha256 of the learning rate of every batch of the epochs done (lrDigest)
}

// checkpointBody is the state itself.
type checkpointBody struct {
	Names         []string    // parameter names, in order, for a clear mismatch message
	Weights       [][]float32 // every parameter and buffer, in state_dict order
	Momentum      [][]float32 // SGD momentum buffers (nil before the first step, or for buffers)
	Best          [][]float32 // weights of the best epoch so far; nil when none was validated yet
	BestEpoch     int
	BestValRobust float64
	Bank, History []float32 // SGLR bank and its history (nil for other label strategies)
	Shuffle       []byte    // the random streams' PCG states
	Augment       []byte
	Attack        []byte
	Rows          []checkpointRow // the finished epochs
	Pending       checkpointRow   // the epoch whose validation is pending (its training figures)
}

// checkpointRow is an epochRow with exported fields, for gob.
type checkpointRow struct {
	Epoch                                  int
	LR, TrainLoss, TrainClean, TrainRobust float64
	ValClean, ValRobust, Seconds           float64
	Recovered                              float64
}

func toCheckpointRow(r epochRow) checkpointRow {
	return checkpointRow{r.epoch, r.lr, r.trainLoss, r.trainClean, r.trainRobust, r.valClean, r.valRobust, r.seconds, r.recovered}
}

func (r checkpointRow) epochRow() epochRow {
	return epochRow{r.Epoch, r.LR, r.TrainLoss, r.TrainClean, r.TrainRobust, r.ValClean, r.ValRobust, r.Seconds, r.Recovered}
}

// checkpointFile is the file a run of epochs epochs writes in dir. Runs of
// one family (pipeline.ResumeFamily) differ only in epochs, so each keeps
// its own file and none overwrites a longer run's progress.
func checkpointFile(dir string, epochs int) string {
	return filepath.Join(dir, "epochs-"+strconv.Itoa(epochs)+".ckpt")
}

// saveCheckpoint writes the run's state after the training part of epoch
// (0-based), whose figures so far are pending.
func (t *trainingRun) saveCheckpoint(epoch int, pending epochRow) error {
	h := checkpointHeader{
		Fingerprint: configFingerprint(t.cfg), Epochs: t.cfg.Epochs, Epoch: epoch + 1,
		Batches: t.batchesPerEpoch(), LRDigest: lrDigest(t.sched, epoch+1, t.batchesPerEpoch()),
	}
	b := checkpointBody{BestEpoch: t.bestEpoch, BestValRobust: t.bestValRobust, Pending: toCheckpointRow(pending)}
	for _, p := range t.weights.Params {
		b.Names = append(b.Names, p.Name)
		b.Weights = append(b.Weights, p.Data)
	}
	b.Momentum = t.sgd.State()
	if t.best != nil {
		for _, p := range t.best.Params {
			b.Best = append(b.Best, p.Data)
		}
	}
	if t.bank != nil {
		b.Bank, b.History = t.bank.State()
	}
	var err error
	if b.Shuffle, err = t.shufflePCG.MarshalBinary(); err != nil {
		return err
	}
	if b.Augment, err = t.augmentPCG.MarshalBinary(); err != nil {
		return err
	}
	if b.Attack, err = t.attackPCG.MarshalBinary(); err != nil {
		return err
	}
	for _, r := range t.curve.rows {
		b.Rows = append(b.Rows, toCheckpointRow(r))
	}
	return checkpoint.Write(checkpointFile(t.cfg.CheckpointDir, t.cfg.Epochs), checkpointMagic, h, b)
}

// fits reports why a checkpoint with header h cannot continue a run of cfg
// with batches batches per epoch and schedule sched, or "" when it can.
func (h checkpointHeader) fits(cfg Config, sched optim.Schedule, batches int) string {
	switch {
	case h.Fingerprint != configFingerprint(cfg):
		return "its settings differ"
	case h.Epoch > cfg.Epochs:
		return fmt.Sprintf("it is at epoch %d, past this run's %d", h.Epoch, cfg.Epochs)
	case h.Batches != batches:
		return fmt.Sprintf("it has %d batches per epoch, this run %d", h.Batches, batches)
	case h.LRDigest != lrDigest(sched, h.Epoch, batches):
		return fmt.Sprintf("the learning rates of its %d epochs differ (the schedule depends on epochs: give milestones explicitly to extend a run)", h.Epoch)
	}
	return ""
}

// readCheckpointHeader reads the header of the checkpoint at path, without
// verifying the rest (see readCheckpoint).
func readCheckpointHeader(path string) (checkpointHeader, error) {
	var h checkpointHeader
	err := checkpoint.ReadFirst(path, checkpointMagic, &h)
	return h, err
}

// readCheckpoint reads and verifies the whole checkpoint at path.
func readCheckpoint(path string) (checkpointHeader, checkpointBody, error) {
	var h checkpointHeader
	var b checkpointBody
	err := checkpoint.Read(path, checkpointMagic, &h, &b)
	return h, b, err
}

// bestCheckpoint returns the path and header of the checkpoint in dir that
// is furthest along among those that fit cfg (see fits), or "" when none
// does. Files it cannot read are skipped. batches 0 judges each checkpoint
// with its own batch count: plan has not read the training set, so it
// cannot know the count (the run checks it again).
func bestCheckpoint(dir string, cfg Config, sched optim.Schedule, batches int) (string, checkpointHeader) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", checkpointHeader{}
	}
	var best string
	var bestH checkpointHeader
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".ckpt") {
			continue
		}
		path := filepath.Join(dir, name)
		h, err := readCheckpointHeader(path)
		if err != nil {
			continue
		}
		if b := cmp.Or(batches, h.Batches); h.fits(cfg, sched, b) != "" {
			continue
		}
		if best == "" || h.Epoch > bestH.Epoch {
			best, bestH = path, h
		}
	}
	return best, bestH
}

// configFingerprint is the sha256 of cfg as JSON with the fields that may
// differ between runs sharing checkpoints cleared: Epochs, the checkpoint
// settings, and the data-given Arch.Input and Arch.Classes (the data is
// already in the checkpoint family through the input digests).
func configFingerprint(cfg Config) string {
	cfg.Epochs = 0
	cfg.CheckpointEvery, cfg.CheckpointDir = 0, ""
	cfg.Arch.Input, cfg.Arch.Classes = nil, 0
	b, err := json.Marshal(cfg)
	if err != nil {
		return "unencodable: " + err.Error()
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// lrDigest is the sha256 of the learning rate of every batch of the first
// epochs epochs, as float64 bits.
func lrDigest(sched optim.Schedule, epochs, batches int) string {
	h := sha256.New()
	var buf [8]byte
	for e := range epochs {
		for bi := range batches {
			binary.LittleEndian.PutUint64(buf[:], math.Float64bits(sched.LR(e, bi, batches)))
			h.Write(buf[:])
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// errNoCheckpoint is returned by resume when there is nothing to resume.
var errNoCheckpoint = errors.New("no checkpoint fits")

// checkpointShapes checks that b holds a model laid out as t's.
func (t *trainingRun) checkpointShapes(b checkpointBody) error {
	ps := t.weights.Params
	if len(b.Weights) != len(ps) || len(b.Names) != len(ps) {
		return fmt.Errorf("it holds %d tensors, the model %d", len(b.Weights), len(ps))
	}
	if b.Best != nil && len(b.Best) != len(ps) {
		return fmt.Errorf("its best model holds %d tensors, the model %d", len(b.Best), len(ps))
	}
	for i, p := range ps {
		if b.Names[i] != p.Name || len(b.Weights[i]) != len(p.Data) || (b.Best != nil && len(b.Best[i]) != len(p.Data)) {
			return fmt.Errorf("tensor %d is %s of %d values, the model's %s has %d", i, b.Names[i], len(b.Weights[i]), p.Name, len(p.Data))
		}
	}
	return nil
}
