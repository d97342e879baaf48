package refine

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/nn/metric"
	"github.com/sglr-pipe/sglr-pipe/nn/model"
	"github.com/sglr-pipe/sglr-pipe/stages"
	"github.com/sglr-pipe/sglr-pipe/stages/stagetest"
)

// dataset builds n random samples of shape [1,3,3] in k classes, the first
// fifth flipped away from their clean label.
func dataset(n, k int) *artifacts.Dataset {
	rng := rand.New(rand.NewPCG(1, 2))
	ds := &artifacts.Dataset{Shape: []int{1, 3, 3}, CleanLabels: make([]int32, n), Flipped: make([]bool, n)}
	for c := range k {
		ds.ClassNames = append(ds.ClassNames, fmt.Sprintf("c%d", c))
	}
	for i := range n {
		for range 9 {
			ds.Images = append(ds.Images, float32(rng.Float64()))
		}
		ds.IDs = append(ds.IDs, int64(100+i))
		ds.CleanLabels[i] = int32(i % k)
		ds.Labels = append(ds.Labels, int32(i%k))
		if i < n/5 {
			ds.Labels[i] = int32((i + 1) % k)
			ds.Flipped[i] = true
		}
	}
	return ds
}

// runRefine runs the stage with a freshly initialised mlp for arch.
func runRefine(t *testing.T, ds *artifacts.Dataset, arch model.Arch, values map[string]any) (*artifacts.Labels, *stages.Env, error) {
	t.Helper()
	w, err := model.Init(arch, 3)
	if err != nil {
		t.Fatal(err)
	}
	m, err := stages.ModelArtifact(w, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, enc func(*os.File) error) string {
		path := filepath.Join(dir, name)
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := enc(f); err != nil {
			t.Fatal(err)
		}
		f.Close()
		return path
	}
	params := stages.Params{}
	for _, p := range (Stage{}).Spec().Params {
		params[p.Name] = p.Default
	}
	params["workers"] = int64(1)
	params["batch"] = int64(16)
	for k, v := range values {
		params[k] = v
	}
	env := &stages.Env{Instance: "refine", Params: params, Seed: 9, Progress: stages.NopProgress{}, OutDir: dir,
		Inputs: map[string][]stages.Input{
			"model":   {stagetest.Input(t, write("model", func(f *os.File) error { return artifacts.WriteModel(f, m) }), nil)},
			"dataset": {stagetest.Input(t, write("dataset", func(f *os.File) error { return artifacts.WriteDataset(f, ds) }), nil)},
		}}
	if err := (Stage{}).Run(context.Background(), env); err != nil {
		return nil, env, err
	}
	l, err := artifacts.ReadLabelsFile(env.OutputPath("labels"))
	if err != nil {
		t.Fatal(err)
	}
	return l, env, nil
}

func TestRefine(t *testing.T) {
	ds := dataset(50, 4)
	arch := model.Arch{Kind: model.KindMLP, Input: []int{1, 3, 3}, Classes: 4, Hidden: []int{8}}
	for _, tc := range []struct {
		r       float64
		minHard float64 // least target mass on the hard label
	}{{1, 0}, {0.5, 0.5}, {0, 1}} {
		t.Run(fmt.Sprintf("r=%v", tc.r), func(t *testing.T) {
			l, env, err := runRefine(t, ds, arch, map[string]any{"r": tc.r})
			if err != nil {
				t.Fatal(err)
			}
			for i, id := range l.IDs {
				if id != ds.IDs[i] || l.Hard[i] != ds.Labels[i] {
					t.Fatalf("row %d: id %d hard %d, want %d and %d", i, id, l.Hard[i], ds.IDs[i], ds.Labels[i])
				}
				row := l.Soft[i*4 : i*4+4]
				sum := 0.0
				for _, v := range row {
					sum += float64(v)
				}
				if math.Abs(sum-1) > 1e-5 {
					t.Fatalf("row %d sums to %v", i, sum)
				}
				if float64(row[l.Hard[i]]) < tc.minHard-1e-6 {
					t.Fatalf("row %d puts %v on its hard label, want at least %v", i, row[l.Hard[i]], tc.minHard)
				}
			}
			if env.Summary()["flipped"] != 10 {
				t.Errorf("flipped %v, want 10", env.Summary()["flipped"])
			}
			if _, ok := env.Summary()["recovered"].(float64); !ok {
				t.Errorf("no recovered share in %v", env.Summary())
			}
		})
	}
}

func TestRefineMixesCleanAndAdversarialPredictions(t *testing.T) {
	// With no attack (x' = x) the soft label is exactly the model's softmax,
	// whatever lambda is.
	ds := dataset(20, 3)
	arch := model.Arch{Kind: model.KindMLP, Input: []int{1, 3, 3}, Classes: 3, Hidden: []int{8}}
	none := map[string]any{"steps": int64(0), "random_start": false}
	a, _, err := runRefine(t, ds, arch, map[string]any{"steps": int64(0), "random_start": false, "lambda": 0.0})
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := runRefine(t, ds, arch, none)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := model.Init(arch, 3)
	ev, err := model.NewEvaluator(w, 20, 1)
	if err != nil {
		t.Fatal(err)
	}
	logits, p := make([]float32, 60), make([]float32, 60)
	if err := ev.Logits(ds.Images, 20, logits); err != nil {
		t.Fatal(err)
	}
	metric.Softmax(logits, 20, 3, p)
	for i := range p {
		if math.Abs(float64(a.Soft[i]-p[i])) > 1e-6 || math.Abs(float64(b.Soft[i]-p[i])) > 1e-6 {
			t.Fatalf("value %d: %v and %v, want softmax %v", i, a.Soft[i], b.Soft[i], p[i])
		}
	}
	// With an attack, the adversarial prediction puts less mass on the label.
	adv, _, err := runRefine(t, ds, arch, map[string]any{"lambda": 0.0, "eps": 0.3, "step": 0.1})
	if err != nil {
		t.Fatal(err)
	}
	lower := 0
	for i := range 20 {
		y := int(ds.Labels[i])
		if adv.Soft[i*3+y] < p[i*3+y] {
			lower++
		}
	}
	if lower < 18 {
		t.Errorf("the attack lowered the label's probability on %d of 20 samples", lower)
	}
}

func TestRefineRejectsMismatchedModel(t *testing.T) {
	ds := dataset(10, 3)
	for _, tc := range []struct {
		arch model.Arch
		want string
	}{
		{model.Arch{Kind: model.KindMLP, Input: []int{1, 3, 3}, Classes: 4, Hidden: []int{4}}, "4 classes, the dataset 3"},
		{model.Arch{Kind: model.KindMLP, Input: []int{1, 9, 1}, Classes: 3, Hidden: []int{4}}, "shape [1 9 1]"},
	} {
		if _, _, err := runRefine(t, ds, tc.arch, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want an error mentioning %q", err, tc.want)
		}
	}
}
