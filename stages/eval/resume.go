package eval

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sglr-pipe/sglr-pipe/stages"
	"github.com/sglr-pipe/sglr-pipe/stages/internal/checkpoint"
)

// A long evaluation (AutoAttack on many models) keeps each finished (model,
// attack) pair in its checkpoint directory, so that a rerun after an
// interruption does not run the finished attacks again. Pairs draw from
// their own generators (pairRNG), so a pair loaded from its checkpoint is
// exactly what running it again would give. The directory belongs to one
// cache key (eval declares no resume-neutral parameter), and Evaluate
// removes the files once it has every pair.
const cellMagic = "sglr-eval-cell/1\n"

// cellHeader names the pair a checkpoint holds.
type cellHeader struct {
	Model, Attack string // the model's label (or the source's, for a transfer row) and the attack
	Samples, K    int
}

// cellBody is the pair's outcome: one cell, or a transfer row of one cell
// per target.
type cellBody struct {
	Cells []savedCell
}

type savedCell struct {
	Rows   []savedRow
	Logits []float32
}

type savedRow struct {
	Attack            string
	Accuracy, Seconds float64
}

// cellFile is the checkpoint of pair (model, attack) in dir.
func cellFile(dir, model, attack string) string {
	sum := sha256.Sum256([]byte(model + "\x00" + attack))
	return filepath.Join(dir, "cell-"+hex.EncodeToString(sum[:12])+".ckpt")
}

// saveCells keeps the finished cells of pair (model, attack), when the run
// has a checkpoint directory.
func (e *evaluation) saveCells(model, attack string, cells []cell) error {
	if e.cfg.CheckpointDir == "" {
		return nil
	}
	b := cellBody{}
	for _, c := range cells {
		sc := savedCell{Logits: c.logits}
		for _, r := range c.rows {
			sc.Rows = append(sc.Rows, savedRow{r.attack, r.accuracy, r.seconds})
		}
		b.Cells = append(b.Cells, sc)
	}
	h := cellHeader{Model: model, Attack: attack, Samples: e.n, K: e.k}
	if err := os.MkdirAll(e.cfg.CheckpointDir, 0o755); err != nil { // a finished evaluation of the instance removed it
		return fmt.Errorf("checkpoint directory: %w", err)
	}
	return checkpoint.Write(cellFile(e.cfg.CheckpointDir, model, attack), cellMagic, h, b)
}

// loadCells returns the want cells of pair (model, attack) from its
// checkpoint, or nil when there is none that fits. A checkpoint that does
// not verify is removed and reported through progress; the pair then runs.
func (e *evaluation) loadCells(model, attack string, want int) []cell {
	if e.cfg.CheckpointDir == "" {
		return nil
	}
	path := cellFile(e.cfg.CheckpointDir, model, attack)
	if _, err := os.Lstat(path); err != nil {
		return nil
	}
	var h cellHeader
	var b cellBody
	err := checkpoint.Read(path, cellMagic, &h, &b)
	if err == nil {
		err = e.fits(h, b, model, attack, want)
	}
	if err != nil {
		e.progress.Status(fmt.Sprintf("ignoring checkpoint %s: %v", path, err))
		os.Remove(path)
		return nil
	}
	cells := make([]cell, len(b.Cells))
	for i, sc := range b.Cells {
		cells[i].logits = sc.Logits
		for _, r := range sc.Rows {
			cells[i].rows = append(cells[i].rows, metricRow{r.Attack, r.Accuracy, r.Seconds})
		}
	}
	e.resumed++
	return cells
}

// fits checks a verified checkpoint against the pair it should hold.
func (e *evaluation) fits(h cellHeader, b cellBody, model, attack string, want int) error {
	if h.Model != model || h.Attack != attack || h.Samples != e.n || h.K != e.k {
		return fmt.Errorf("it holds %s under %s on %d samples of %d classes", h.Model, h.Attack, h.Samples, h.K)
	}
	if len(b.Cells) != want {
		return fmt.Errorf("it holds %d cells, want %d", len(b.Cells), want)
	}
	for _, c := range b.Cells {
		if len(c.Logits) != e.n*e.k || len(c.Rows) == 0 {
			return fmt.Errorf("a cell holds %d logits and %d rows", len(c.Logits), len(c.Rows))
		}
	}
	return nil
}

// removeCells deletes the pair checkpoints once the evaluation is complete,
// and their directory when nothing else is in it, so that finished
// evaluations leave nothing in the store's checkpoints/.
func (e *evaluation) removeCells() {
	if e.cfg.CheckpointDir == "" {
		return
	}
	paths, _ := filepath.Glob(filepath.Join(e.cfg.CheckpointDir, "cell-*.ckpt"))
	for _, p := range paths {
		os.Remove(p)
	}
	os.Remove(e.cfg.CheckpointDir) // fails, harmlessly, unless empty
}

// ResumeFrom implements pipeline.ResumableStage: how many finished (model,
// attack) pairs a rerun would reuse.
func (Stage) ResumeFrom(_ stages.Params, dir string) string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	n := 0
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "cell-") && strings.HasSuffix(e.Name(), ".ckpt") {
			n++
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("resume with %d finished (model, attack) pairs", n)
}

// ResumeNeutral implements pipeline.ResumableStage: only a rerun of the same
// instance resumes.
func (Stage) ResumeNeutral() []string { return nil }
