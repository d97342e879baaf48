package train

import (
	"context"
	"errors"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/nn/model"
	"github.com/sglr-pipe/sglr-pipe/stages"
)

// cancelAfter is a Progress that cancels its context once n epochs are done.
type cancelAfter struct {
	stages.NopProgress
	n, done atomic.Int64
	cancel  context.CancelFunc
}

func (c *cancelAfter) Add(k int64) {
	if c.done.Add(k) >= c.n.Load() {
		c.cancel()
	}
}

// trainWith runs Train on cfg (checkpoints in dir), cancelled after stopAfter
// epochs when stopAfter > 0.
func trainWith(t *testing.T, cfg Config, dir string, stopAfter int, trainSet, valSet *artifacts.Dataset) (*Result, error) {
	t.Helper()
	cfg.CheckpointDir = dir
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var progress stages.Progress = stages.NopProgress{}
	if stopAfter > 0 {
		p := &cancelAfter{cancel: cancel}
		p.n.Store(int64(stopAfter))
		progress = p
	}
	return Train(ctx, cfg, trainSet, valSet, nil, 5, progress)
}

// sameResult fails t unless a and b hold the same bits in every output.
func sameResult(t *testing.T, a, b *Result) {
	t.Helper()
	sameWeights := func(what string, x, y *model.Weights) {
		for i, p := range x.Params {
			for j, v := range p.Data {
				if math.Float32bits(v) != math.Float32bits(y.Params[i].Data[j]) {
					t.Fatalf("%s: %s[%d] = %v, uninterrupted %v", what, p.Name, j, y.Params[i].Data[j], v)
				}
			}
		}
	}
	sameWeights("final", a.Final, b.Final)
	sameWeights("best", a.Best, b.Best)
	if a.BestEpoch != b.BestEpoch || a.BestValRobust != b.BestValRobust {
		t.Errorf("best epoch %d (%v), uninterrupted %d (%v)", b.BestEpoch, b.BestValRobust, a.BestEpoch, a.BestValRobust)
	}
	for i, col := range a.Curve.Columns {
		other := b.Curve.Columns[i]
		if !slices.Equal(col.Ints, other.Ints) || len(col.Floats) != len(other.Floats) {
			t.Fatalf("curve column %s: %v%v, uninterrupted %v%v", col.Name, other.Ints, other.Floats, col.Ints, col.Floats)
		}
		for j, v := range col.Floats {
			if math.Float64bits(v) != math.Float64bits(other.Floats[j]) {
				t.Errorf("curve %s[%d] = %v, uninterrupted %v", col.Name, j, other.Floats[j], v)
			}
		}
	}
	if !slices.Equal(a.Labels.Soft, b.Labels.Soft) {
		t.Error("the final labels differ from the uninterrupted run's")
	}
}

// checkpointConfig is the Config of values over fastParams, saving a
// checkpoint after every epoch unless values say otherwise.
func checkpointConfig(t *testing.T, values map[string]any) Config {
	t.Helper()
	values = maps.Clone(values)
	if values == nil {
		values = map[string]any{}
	}
	if _, ok := values["checkpoint_every"]; !ok {
		values["checkpoint_every"] = int64(1)
	}
	cfg, err := ConfigFromParams(withDefaults(t, Stage{}.Spec(), fastParams(values)))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestResumeAfterInterruptionGivesTheUninterruptedBits(t *testing.T) {
	trainSet, valSet := blobs(90, 3, 0.2, 1, 0), blobs(30, 3, 0, 2, 10000)
	for _, tc := range []struct {
		name   string
		values map[string]any
		shape  []int
	}{
		// SGLR with augmentation uses every random stream and the bank.
		{"sglr with augmentation", map[string]any{"epochs": int64(6), "labels": LabelsSGLR, "warmup": int64(2),
			"crop_pad": int64(1), "flip": true, "val_every": int64(2), "workers": int64(2)}, nil},
		{"trades", map[string]any{"epochs": int64(5), "method": MethodTRADES, "schedule": "cosine", "workers": int64(1)}, nil},
		{"batchnorm", map[string]any{"epochs": int64(4), "model": model.KindPreActResNet18, "width": int64(2),
			"batch": int64(12), "steps": int64(1), "val_steps": int64(1), "workers": int64(2)}, []int{3, 32, 32}},
		{"mart", map[string]any{"epochs": int64(4), "method": MethodMART, "workers": int64(2)}, nil},
		// AWP starts after the first checkpoint, so resumed runs cross it.
		{"trades-awp", map[string]any{"epochs": int64(4), "method": MethodTRADESAWP, "awp_warmup": int64(2), "workers": int64(1)}, nil},
		{"awp batchnorm", map[string]any{"epochs": int64(3), "method": MethodAWP, "model": model.KindPreActResNet18, "width": int64(2),
			"batch": int64(12), "steps": int64(1), "val_steps": int64(1), "workers": int64(2)}, []int{3, 32, 32}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, va := trainSet, valSet
			if tc.shape != nil {
				tr, va = images(24, 3, tc.shape, 1, 0), images(12, 3, tc.shape, 2, 1000)
			}
			cfg := checkpointConfig(t, tc.values)
			want, err := trainWith(t, cfg, "", 0, tr, va)
			if err != nil {
				t.Fatal(err)
			}
			for stop := 1; stop < cfg.Epochs; stop++ {
				dir := t.TempDir()
				if _, err := trainWith(t, cfg, dir, stop, tr, va); !errors.Is(err, context.Canceled) {
					t.Fatalf("stopped after %d epochs: got %v, want context.Canceled", stop, err)
				}
				got, err := trainWith(t, cfg, dir, 0, tr, va)
				if err != nil {
					t.Fatal(err)
				}
				if got.ResumedFrom != stop {
					t.Fatalf("resumed from epoch %d, want %d", got.ResumedFrom, stop)
				}
				sameResult(t, want, got)
			}
		})
	}
}

func TestMoreEpochsResumeFromTheShorterRun(t *testing.T) {
	trainSet, valSet := blobs(90, 3, 0.2, 1, 0), blobs(30, 3, 0, 2, 10000)
	// val_every 3: the 4-epoch run validates its last epoch, the 6-epoch run
	// does not validate epoch 4, so the resumed run must not keep it.
	long := checkpointConfig(t, map[string]any{"epochs": int64(6), "milestones": []any{int64(2), int64(5)},
		"labels": LabelsSGLR, "warmup": int64(1), "val_every": int64(3), "workers": int64(1)})
	short := long
	short.Epochs = 4
	want, err := trainWith(t, long, "", 0, trainSet, valSet)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := trainWith(t, short, dir, 0, trainSet, valSet); err != nil {
		t.Fatal(err)
	}
	sched, err := long.schedule()
	if err != nil {
		t.Fatal(err)
	}
	if got := (Stage{}).ResumeFrom(paramsOf(t, map[string]any{"epochs": int64(6), "milestones": []any{int64(2), int64(5)},
		"labels": LabelsSGLR, "warmup": int64(1), "val_every": int64(3), "workers": int64(1)}), dir); got != "resume from epoch 4" {
		t.Errorf("ResumeFrom = %q, want resume from epoch 4", got)
	}
	got, err := trainWith(t, long, dir, 0, trainSet, valSet)
	if err != nil {
		t.Fatal(err)
	}
	if got.ResumedFrom != 4 {
		t.Fatalf("resumed from %d, want 4", got.ResumedFrom)
	}
	sameResult(t, want, got)

	// Default milestones move with epochs: the learning rates differ, so
	// nothing fits and the run starts over.
	moved := checkpointConfig(t, map[string]any{"epochs": int64(8), "labels": LabelsSGLR, "warmup": int64(1),
		"val_every": int64(3), "workers": int64(1)})
	if path, _ := bestCheckpoint(dir, moved, sched, 3); path != "" {
		t.Errorf("a run with other milestones would resume from %s", path)
	}
	if r, err := trainWith(t, moved, dir, 0, trainSet, valSet); err != nil || r.ResumedFrom != 0 {
		t.Errorf("other milestones: resumed from %d (err %v), want a fresh start", r.ResumedFrom, err)
	}
}

func TestCorruptCheckpointIsRemovedAndTrainingStartsOver(t *testing.T) {
	trainSet, valSet := blobs(60, 3, 0, 1, 0), blobs(30, 3, 0, 2, 10000)
	cfg := checkpointConfig(t, map[string]any{"epochs": int64(3), "workers": int64(1)})
	want, err := trainWith(t, cfg, "", 0, trainSet, valSet)
	if err != nil {
		t.Fatal(err)
	}
	for _, damage := range []struct {
		name string
		do   func([]byte) []byte
	}{
		{"flipped byte", func(b []byte) []byte { b[len(b)/2] ^= 1; return b }},
		{"cut", func(b []byte) []byte { return b[:len(b)-40] }},
		{"not a checkpoint", func([]byte) []byte { return []byte("hello") }},
	} {
		t.Run(damage.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := trainWith(t, cfg, dir, 2, trainSet, valSet); !errors.Is(err, context.Canceled) {
				t.Fatal(err)
			}
			path := checkpointFile(dir, cfg.Epochs)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, damage.do(data), 0o644); err != nil {
				t.Fatal(err)
			}
			var warned []string
			cfg.CheckpointDir = dir
			got, err := Train(context.Background(), cfg, trainSet, valSet, nil, 5, statusRecorder{&warned})
			if err != nil {
				t.Fatal(err)
			}
			if got.ResumedFrom != 0 {
				t.Errorf("resumed from epoch %d of a damaged checkpoint", got.ResumedFrom)
			}
			sameResult(t, want, got)
			if damage.name == "flipped byte" && !slices.ContainsFunc(warned, func(s string) bool { return strings.Contains(s, "corrupt") }) {
				t.Errorf("no warning about the corrupt checkpoint in %q", warned)
			}
		})
	}
}

func TestCheckpointsAreSavedAsConfigured(t *testing.T) {
	trainSet, valSet := blobs(30, 3, 0, 1, 0), blobs(15, 3, 0, 2, 10000)
	for _, tc := range []struct {
		every     int64
		wantEpoch int // the epoch of the file after a full run; 0 = no file
	}{{-1, 0}, {2, 5}, {1, 5}, {0, 5}} { // 0: automatic, which in a run this short is the last epoch only
		dir := t.TempDir()
		cfg := checkpointConfig(t, map[string]any{"epochs": int64(5), "checkpoint_every": tc.every, "workers": int64(1)})
		if _, err := trainWith(t, cfg, dir, 0, trainSet, valSet); err != nil {
			t.Fatal(err)
		}
		entries, _ := filepath.Glob(filepath.Join(dir, "*"))
		if tc.wantEpoch == 0 {
			if len(entries) != 0 {
				t.Errorf("checkpoint_every 0 wrote %v", entries)
			}
			continue
		}
		h, err := readCheckpointHeader(checkpointFile(dir, 5))
		if err != nil || h.Epoch != tc.wantEpoch || len(entries) != 1 {
			t.Errorf("checkpoint_every %d: header %+v (%v), files %v", tc.every, h, err, entries)
		}
	}
}

// statusRecorder is a Progress that keeps the statuses it is given.
type statusRecorder struct{ statuses *[]string }

func (statusRecorder) Start(int64, string) {}
func (statusRecorder) Add(int64)           {}
func (r statusRecorder) Status(msg string) { *r.statuses = append(*r.statuses, msg) }

// paramsOf types values (over fastParams) as the stage receives them.
func paramsOf(t *testing.T, values map[string]any) stages.Params {
	return withDefaults(t, Stage{}.Spec(), fastParams(values))
}
