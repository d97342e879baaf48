package eval

import (
	"context"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/stages"
)

// cancelAtPasses cancels its context once the progress has passed n.
type cancelAtPasses struct {
	stages.NopProgress
	n      int64
	done   atomic.Int64
	cancel context.CancelFunc
}

func (c *cancelAtPasses) Add(k int64) {
	if c.done.Add(k) >= c.n {
		c.cancel()
	}
}

// sameEvaluation fails t unless a and b hold the same metrics (seconds
// aside: they are not in the artifact) and the same logits, bit for bit.
func sameEvaluation(t *testing.T, a, b *Result) {
	t.Helper()
	for _, col := range []string{ColCheckpoint, ColAttack} {
		if !slices.Equal(a.Metrics.Column(col).Strings, b.Metrics.Column(col).Strings) {
			t.Fatalf("%s column %v, uninterrupted %v", col, b.Metrics.Column(col).Strings, a.Metrics.Column(col).Strings)
		}
	}
	if !slices.Equal(a.Metrics.Column(ColAccuracy).Floats, b.Metrics.Column(ColAccuracy).Floats) {
		t.Errorf("accuracies %v, uninterrupted %v", b.Metrics.Column(ColAccuracy).Floats, a.Metrics.Column(ColAccuracy).Floats)
	}
	if len(a.Predictions.Logits) != len(b.Predictions.Logits) {
		t.Fatalf("%d logits, uninterrupted %d", len(b.Predictions.Logits), len(a.Predictions.Logits))
	}
	for i, v := range a.Predictions.Logits {
		if math.Float32bits(v) != math.Float32bits(b.Predictions.Logits[i]) {
			t.Fatalf("logit %d = %v, uninterrupted %v", i, b.Predictions.Logits[i], v)
		}
	}
}

func TestInterruptedEvaluationKeepsItsFinishedAttacks(t *testing.T) {
	fx := trained(t)
	best, err := stages.WeightsFromArtifact(fx.best)
	if err != nil {
		t.Fatal(err)
	}
	final, err := stages.WeightsFromArtifact(fx.final)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Attacks: []string{"clean", "pgd", "autoattack"}, Eps: 0.1, Restarts: 1, Queries: 50, Targets: 3,
		Steps: 5, Batch: 32, Workers: 2}
	targets := []Target{{Label: "best", Weights: best}, {Label: "final", Weights: final}}
	ds := fx.test
	for _, source := range []*Target{nil, {Label: "source:best", Weights: best}} {
		want, err := Evaluate(context.Background(), cfg, targets, source, ds, 7, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Stop once clean and pgd are done for the first model (or, in
		// transfer, for every model): a rerun must take them from the
		// checkpoints and give the same outputs.
		n := int64(120)
		stopAt := n*attackCost(cfg, "clean", 4) + n*attackCost(cfg, "pgd", 4)
		if source != nil {
			stopAt += 2 * n * int64(len(targets))
		}
		cfg.CheckpointDir = t.TempDir()
		ctx, cancel := context.WithCancel(context.Background())
		if _, err := Evaluate(ctx, cfg, targets, source, ds, 7, &cancelAtPasses{n: stopAt, cancel: cancel}); !errors.Is(err, context.Canceled) {
			t.Fatalf("transfer %v: interrupted evaluation: got %v, want context.Canceled", source != nil, err)
		}
		cancel()
		saved, _ := filepath.Glob(filepath.Join(cfg.CheckpointDir, "cell-*.ckpt"))
		if len(saved) == 0 {
			t.Fatal("no finished pair was kept")
		}
		if note := (Stage{}).ResumeFrom(nil, cfg.CheckpointDir); note == "" {
			t.Error("ResumeFrom says nothing about the kept pairs")
		}
		got, err := Evaluate(context.Background(), cfg, targets, source, ds, 7, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got.Resumed != len(saved) {
			t.Errorf("transfer %v: resumed %d pairs, %d were kept", source != nil, got.Resumed, len(saved))
		}
		sameEvaluation(t, want, got)
		if _, err := os.Lstat(cfg.CheckpointDir); !errors.Is(err, fs.ErrNotExist) {
			left, _ := filepath.Glob(filepath.Join(cfg.CheckpointDir, "*"))
			t.Errorf("the checkpoint directory is still there after a complete evaluation (%v), holding %v", err, left)
		}
		cfg.CheckpointDir = ""
	}
}

func TestDamagedEvalCheckpointIsRecomputed(t *testing.T) {
	fx := trained(t)
	w, err := stages.WeightsFromArtifact(fx.best)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Attacks: []string{"pgd"}, Eps: 0.1, Restarts: 1, Queries: 50, Targets: 3, Batch: 32, Workers: 2}
	targets := []Target{{Label: "best", Weights: w}}
	want, err := Evaluate(context.Background(), cfg, targets, nil, fx.test, 7, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.CheckpointDir = t.TempDir()
	run := &evaluation{cfg: cfg, n: 120, k: 4, progress: stages.NopProgress{}}
	// A checkpoint of the pair with wrong contents but a valid trailer
	// (another model's logits) is refused by its header; one with a flipped
	// byte by its trailer.
	wrong := cell{rows: []metricRow{{attack: "pgd", accuracy: 1}}, logits: make([]float32, 120*4)}
	if err := run.saveCells("other", "pgd", []cell{wrong}); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(cellFile(cfg.CheckpointDir, "other", "pgd"), cellFile(cfg.CheckpointDir, "best", "pgd")); err != nil {
		t.Fatal(err)
	}
	got, err := Evaluate(context.Background(), cfg, targets, nil, fx.test, 7, nil)
	if err != nil || got.Resumed != 0 {
		t.Fatalf("resumed %d from a checkpoint of another pair (err %v)", got.Resumed, err)
	}
	sameEvaluation(t, want, got)

	if err := run.saveCells("best", "pgd", []cell{wrong}); err != nil {
		t.Fatal(err)
	}
	path := cellFile(cfg.CheckpointDir, "best", "pgd")
	data, _ := os.ReadFile(path)
	data[len(data)/2] ^= 1
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err = Evaluate(context.Background(), cfg, targets, nil, fx.test, 7, nil)
	if err != nil || got.Resumed != 0 {
		t.Fatalf("resumed %d from a corrupt checkpoint (err %v)", got.Resumed, err)
	}
	sameEvaluation(t, want, got)
}
