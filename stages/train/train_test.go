package train

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/nn/model"
	"github.com/sglr-pipe/sglr-pipe/stages"
	"github.com/sglr-pipe/sglr-pipe/stages/stagetest"
)

// blobs builds n samples of shape [1,4,4] in k classes: class c lights up
// pixel block c on a noisy background, so a small mlp learns it in a few
// epochs and stays partly robust at eps 0.05. noise flips that share of
// labels (symmetric), recording the clean labels and flipped flags.
func blobs(n, k int, noise float64, seed uint64, idBase int64) *artifacts.Dataset {
	rng := rand.New(rand.NewPCG(seed, 99))
	ds := &artifacts.Dataset{Shape: []int{1, 4, 4}}
	for c := range k {
		ds.ClassNames = append(ds.ClassNames, fmt.Sprintf("c%d", c))
	}
	for i := range n {
		c := i % k
		img := make([]float32, 16)
		for p := range img {
			img[p] = float32(0.1 + 0.2*rng.Float64())
		}
		for _, p := range []int{2 * c, 2*c + 1, 2*c + 4, 2*c + 5} {
			img[p%16] = float32(0.8 + 0.2*rng.Float64())
		}
		ds.Images = append(ds.Images, img...)
		ds.IDs = append(ds.IDs, idBase+int64(i))
		ds.Labels = append(ds.Labels, int32(c))
	}
	if noise > 0 {
		ds.CleanLabels = append([]int32(nil), ds.Labels...)
		ds.Flipped = make([]bool, n)
		for _, i := range rng.Perm(n)[:int(math.Round(noise*float64(n)))] {
			ds.Labels[i] = int32((int(ds.Labels[i]) + 1 + rng.IntN(k-1)) % k)
			ds.Flipped[i] = true
		}
	}
	return ds
}

// fastParams are parameters for a tiny, quick run; overrides replace them.
func fastParams(overrides map[string]any) map[string]any {
	p := map[string]any{
		"hidden": []any{int64(32)}, "epochs": int64(6), "batch": int64(32), "lr": 0.1,
		"weight_decay": 0.0, "eps": 0.05, "step": 0.02, "steps": int64(3), "val_steps": int64(5),
		"workers": int64(1),
	}
	for k, v := range overrides {
		p[k] = v
	}
	return p
}

// withDefaults fills the spec's defaults under the given values, as the
// pipeline does before a stage runs.
func withDefaults(t *testing.T, spec stages.Spec, values map[string]any) stages.Params {
	t.Helper()
	ps := stages.Params{}
	for _, p := range spec.Params {
		if p.Default != nil {
			ps[p.Name] = p.Default
		}
	}
	for k, v := range values {
		found := false
		for _, p := range spec.Params {
			found = found || p.Name == k
		}
		if !found {
			t.Fatalf("test sets unknown param %q", k)
		}
		ps[k] = v
	}
	return ps
}

// writeArtifact encodes v into dir/name with write and returns the path.
func writeArtifact(t *testing.T, dir, name string, write func(*os.File) error) string {
	t.Helper()
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := write(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// stageRun is one run of a stage with real files.
type stageRun struct {
	env *stages.Env
	err error
}

// runTrain runs the train stage on train/val (and labels when not nil).
func runTrain(t *testing.T, trainSet, valSet *artifacts.Dataset, labels *artifacts.Labels, values map[string]any, seed uint64) stageRun {
	t.Helper()
	dir := t.TempDir()
	inputs := map[string][]stages.Input{
		"train": {stagetest.Input(t, writeArtifact(t, dir, "train.arrow", func(f *os.File) error { return artifacts.WriteDataset(f, trainSet) }), nil)},
		"val":   {stagetest.Input(t, writeArtifact(t, dir, "val.arrow", func(f *os.File) error { return artifacts.WriteDataset(f, valSet) }), nil)},
	}
	if labels != nil {
		inputs["labels"] = []stages.Input{stagetest.Input(t, writeArtifact(t, dir, "labels.arrow", func(f *os.File) error { return artifacts.WriteLabels(f, labels) }), nil)}
	}
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	env := &stages.Env{Instance: "train", Params: withDefaults(t, Stage{}.Spec(), values), Seed: seed,
		Inputs: inputs, Progress: stages.NopProgress{}, OutDir: out}
	return stageRun{env: env, err: Stage{}.Run(context.Background(), env)}
}

func readOutput(t *testing.T, env *stages.Env, port string) []byte {
	t.Helper()
	b, err := os.ReadFile(env.OutputPath(port))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTrainLearnsRobustly(t *testing.T) {
	trainSet, valSet := blobs(240, 3, 0, 1, 0), blobs(90, 3, 0, 2, 10000)
	for _, tc := range []struct {
		name   string
		values map[string]any
	}{
		{"pgd-at hard", nil},
		{"trades smooth", map[string]any{"method": MethodTRADES, "labels": LabelsSmooth}},
		{"fgsm sglr", map[string]any{"attack": AttackFGSM, "labels": LabelsSGLR, "warmup": int64(2)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := runTrain(t, trainSet, valSet, nil, fastParams(tc.values), 7)
			if run.err != nil {
				t.Fatal(run.err)
			}
			curve, err := artifacts.ReadCurveFile(run.env.OutputPath("curve"))
			if err != nil {
				t.Fatal(err)
			}
			if curve.Len() != 6 {
				t.Fatalf("curve has %d rows, want 6", curve.Len())
			}
			robust := curve.Column(artifacts.ColValRobustAcc).Floats
			if last := robust[len(robust)-1]; last < 0.6 {
				t.Errorf("final validation robust accuracy %v, want well above chance 1/3 (curve %v)", last, robust)
			}
			if train := curve.Column(artifacts.ColTrainRobustAcc).Floats; math.IsNaN(train[5]) || train[5] < 0.5 {
				t.Errorf("train robust accuracy %v", train)
			}
			summary := run.env.Summary()
			best, _ := summary["best_val_robust_acc"].(float64)
			for _, r := range robust {
				if r > best {
					t.Errorf("best %v is below the curve's %v", best, r)
				}
			}
			for _, port := range []string{"best", "final"} {
				m, err := artifacts.ReadModelFile(run.env.OutputPath(port))
				if err != nil {
					t.Fatal(err)
				}
				w, err := stages.WeightsFromArtifact(m)
				if err != nil {
					t.Fatal(err)
				}
				if w.Arch.Kind != model.KindMLP || w.Arch.Classes != 3 || m.Meta["checkpoint"] != port {
					t.Errorf("%s model: arch %+v meta %v", port, w.Arch, m.Meta)
				}
			}
		})
	}
}

func TestTrainIsDeterministic(t *testing.T) {
	trainSet, valSet := blobs(120, 3, 0.2, 1, 0), blobs(45, 3, 0, 2, 10000)
	values := fastParams(map[string]any{"epochs": int64(3), "labels": LabelsSGLR, "warmup": int64(1),
		"crop_pad": int64(1), "flip": true, "workers": int64(2)})
	a := runTrain(t, trainSet, valSet, nil, values, 11)
	b := runTrain(t, trainSet, valSet, nil, values, 11)
	c := runTrain(t, trainSet, valSet, nil, values, 12)
	for _, r := range []stageRun{a, b, c} {
		if r.err != nil {
			t.Fatal(r.err)
		}
	}
	for _, port := range []string{"best", "final", "curve", "labels"} {
		if !bytes.Equal(readOutput(t, a.env, port), readOutput(t, b.env, port)) {
			t.Errorf("output %s differs between two runs with the same seed", port)
		}
	}
	if bytes.Equal(readOutput(t, a.env, "final"), readOutput(t, c.env, "final")) {
		t.Error("seeds 11 and 12 gave the same final model")
	}
	replicate := map[string]any{}
	for k, v := range values {
		replicate[k] = v
	}
	replicate["seed"] = int64(1)
	d := runTrain(t, trainSet, valSet, nil, replicate, 11)
	if d.err != nil {
		t.Fatal(d.err)
	}
	if bytes.Equal(readOutput(t, a.env, "final"), readOutput(t, d.env, "final")) {
		t.Error("replicates 0 and 1 (param seed) of one instance gave the same final model")
	}
	if _, ok := a.env.Summary()["seconds_per_epoch"].(float64); !ok {
		t.Errorf("no seconds_per_epoch in the run summary %v", a.env.Summary())
	}
}

func TestTrainErrors(t *testing.T) {
	trainSet, valSet := blobs(64, 3, 0, 1, 0), blobs(30, 3, 0, 2, 10000)
	shifted := &artifacts.Labels{K: 3}
	for i, id := range trainSet.IDs {
		shifted.IDs = append(shifted.IDs, id+5)
		shifted.Hard = append(shifted.Hard, trainSet.Labels[i])
	}
	hardOnly := &artifacts.Labels{K: 3, IDs: trainSet.IDs, Hard: trainSet.Labels}
	wrongK := &artifacts.Labels{K: 4, IDs: trainSet.IDs, Hard: trainSet.Labels}
	for _, tc := range []struct {
		name   string
		labels *artifacts.Labels
		values map[string]any
		want   []string
	}{
		{"NaN loss", nil, map[string]any{"lr": 1e30, "momentum": 0.0}, []string{"epoch 1, batch", "lower lr (now 1e+30) or check the inputs"}},
		{"NaN loss standard", nil, map[string]any{"lr": 1e30, "momentum": 0.0, "method": MethodStandard},
			[]string{"at epoch 1, batch", "lower lr (now 1e+30) or check the inputs"}},
		{"given ids missing", shifted, map[string]any{"labels": LabelsGiven}, []string{"no row for 5 of the 64 training samples", "ids 0, 1, 2, 3, 4)"}},
		{"given without input", nil, map[string]any{"labels": LabelsGiven}, []string{"needs the labels input"}},
		{"input unused", hardOnly, nil, []string{"has no effect with labels hard"}},
		{"distill without soft", hardOnly, map[string]any{"labels": LabelsDistill}, []string{"no soft labels"}},
		{"wrong K", wrongK, map[string]any{"labels": LabelsGiven}, []string{"K=4 classes, the training set 3"}},
		{"warmup too long", nil, map[string]any{"labels": LabelsSGLR, "warmup": int64(6)}, []string{"warmup 6 leaves no refinement epoch"}},
		{"bad hidden", nil, map[string]any{"hidden": []any{int64(0)}}, []string{`param "hidden": element 0: 0 is not a positive integer`}},
		{"fgsm with trades", nil, map[string]any{"method": MethodTRADES, "attack": AttackFGSM}, []string{"no effect with method trades"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := runTrain(t, trainSet, valSet, tc.labels, fastParams(tc.values), 1)
			if run.err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(run.err.Error(), w) {
					t.Errorf("error %q does not mention %q", run.err, w)
				}
			}
		})
	}
}

func TestTrainWithGivenLabels(t *testing.T) {
	trainSet, valSet := blobs(90, 3, 0, 1, 0), blobs(30, 3, 0, 2, 10000)
	// Soft labels in reverse id order with an extra row: matching is by id.
	given := &artifacts.Labels{K: 3}
	for i := len(trainSet.IDs) - 1; i >= 0; i-- {
		given.IDs = append(given.IDs, trainSet.IDs[i])
		y := int(trainSet.Labels[i])
		row := []float32{0.1, 0.1, 0.1}
		row[y] = 0.8
		given.Soft = append(given.Soft, row...)
	}
	given.IDs = append(given.IDs, 999999)
	given.Soft = append(given.Soft, 1, 0, 0)
	run := runTrain(t, trainSet, valSet, given, fastParams(map[string]any{"labels": LabelsGiven, "epochs": int64(2)}), 3)
	if run.err != nil {
		t.Fatal(run.err)
	}
	out, err := artifacts.ReadLabelsFile(run.env.OutputPath("labels"))
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range out.IDs {
		if id != trainSet.IDs[i] {
			t.Fatalf("labels row %d has id %d, want %d", i, id, trainSet.IDs[i])
		}
		if got := out.Soft[i*3+int(trainSet.Labels[i])]; math.Abs(float64(got)-0.8) > 1e-6 {
			t.Fatalf("sample %d: target on its label %v, want the given 0.8", i, got)
		}
	}
}

func TestSGLRReportsRecoveredLabels(t *testing.T) {
	trainSet, valSet := blobs(240, 3, 0.2, 1, 0), blobs(60, 3, 0, 2, 10000)
	run := runTrain(t, trainSet, valSet, nil, fastParams(map[string]any{
		"labels": LabelsSGLR, "warmup": int64(2), "sglr_alpha": 0.5, "epochs": int64(5)}), 5)
	if run.err != nil {
		t.Fatal(run.err)
	}
	rec, ok := run.env.Summary()["recovered"].(float64)
	if !ok {
		t.Fatalf("no recovered figure in %v", run.env.Summary())
	}
	if rec < 0.5 {
		t.Errorf("recovered %v: the bank should move most flipped samples to their clean class on this easy data", rec)
	}
	if run.env.Summary()["flipped"] != 48 {
		t.Errorf("flipped %v, want 48", run.env.Summary()["flipped"])
	}
	labels, err := artifacts.ReadLabelsFile(run.env.OutputPath("labels"))
	if err != nil {
		t.Fatal(err)
	}
	if labels.Meta["recovered"] != formatFloat(rec) || labels.Meta["labels"] != LabelsSGLR {
		t.Errorf("labels meta %v, want recovered %v", labels.Meta, rec)
	}
	curve, err := artifacts.ReadCurveFile(run.env.OutputPath("curve"))
	if err != nil {
		t.Fatal(err)
	}
	perEpoch := curve.Column(artifacts.ColRecovered).Floats
	if len(perEpoch) != 5 || perEpoch[4] != rec {
		t.Errorf("curve recovered %v: want 5 epochs ending at the run's figure %v", perEpoch, rec)
	}
	if perEpoch[0] != 0 {
		t.Errorf("recovered %v after epoch 1, inside the warm-up: the bank still holds the noisy labels, want 0", perEpoch[0])
	}
	for i := range labels.IDs {
		sum := 0.0
		for _, v := range labels.Soft[i*3 : i*3+3] {
			sum += float64(v)
		}
		if math.Abs(sum-1) > 1e-4 {
			t.Fatalf("bank row %d sums to %v", i, sum)
		}
	}
	hard := runTrain(t, trainSet, valSet, nil, fastParams(map[string]any{"epochs": int64(1)}), 5)
	if hard.err != nil {
		t.Fatal(hard.err)
	}
	if got := hard.env.Summary()["recovered"]; got != 0.0 {
		t.Errorf("hard labels recover %v of the flipped samples, want 0", got)
	}
}

func TestTrainStopsWhenCancelled(t *testing.T) {
	trainSet, valSet := blobs(64, 3, 0, 1, 0), blobs(30, 3, 0, 2, 10000)
	cfg, err := ConfigFromParams(withDefaults(t, Stage{}.Spec(), fastParams(nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Train(ctx, cfg, trainSet, valSet, nil, 1, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

func TestTrainOtherArchitectures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		shape  []int
		values map[string]any
	}{
		{"cnn", []int{1, 8, 8}, map[string]any{"model": model.KindCNN, "channels": []any{int64(4)}, "hidden": []any{int64(8)}}},
		{"preact-resnet18 with BatchNorm", []int{3, 32, 32}, map[string]any{"model": model.KindPreActResNet18, "width": int64(2),
			"crop_pad": int64(2), "flip": true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			trainSet, valSet := images(24, 3, tc.shape, 1, 0), images(12, 3, tc.shape, 2, 1000)
			values := fastParams(map[string]any{"epochs": int64(2), "batch": int64(12), "steps": int64(1), "val_steps": int64(1),
				"workers": int64(2)})
			for k, v := range tc.values {
				values[k] = v
			}
			run := runTrain(t, trainSet, valSet, nil, values, 4)
			if run.err != nil {
				t.Fatal(run.err)
			}
			m, err := artifacts.ReadModelFile(run.env.OutputPath("final"))
			if err != nil {
				t.Fatal(err)
			}
			w, err := stages.WeightsFromArtifact(m)
			if err != nil {
				t.Fatal(err)
			}
			initial, err := model.Init(w.Arch, 4)
			if err != nil {
				t.Fatal(err)
			}
			// Training moved the weights and, with BatchNorm, the running statistics.
			for i, p := range w.Params {
				if p.Name == "num_batches_tracked" || strings.HasSuffix(p.Name, "num_batches_tracked") {
					continue
				}
				if fmt.Sprint(p.Data) == fmt.Sprint(initial.Params[i].Data) {
					t.Errorf("tensor %s did not change in training", p.Name)
				}
			}
		})
	}
}

// images builds n random images of shape in k classes.
func images(n, k int, shape []int, seed uint64, idBase int64) *artifacts.Dataset {
	rng := rand.New(rand.NewPCG(seed, 5))
	size := shape[0] * shape[1] * shape[2]
	ds := &artifacts.Dataset{Shape: shape}
	for c := range k {
		ds.ClassNames = append(ds.ClassNames, fmt.Sprintf("c%d", c))
	}
	for i := range n {
		for range size {
			ds.Images = append(ds.Images, float32(rng.Float64()))
		}
		ds.IDs = append(ds.IDs, idBase+int64(i))
		ds.Labels = append(ds.Labels, int32(i%k))
	}
	return ds
}
