package eval

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	nnattack "github.com/sglr-pipe/sglr-pipe/nn/attack"
	"github.com/sglr-pipe/sglr-pipe/nn/metric"
	nnmodel "github.com/sglr-pipe/sglr-pipe/nn/model"
	"github.com/sglr-pipe/sglr-pipe/stages"
	"github.com/sglr-pipe/sglr-pipe/stages/stagetest"
	"github.com/sglr-pipe/sglr-pipe/stages/train"
)

// blobs builds n samples of shape [1,4,4] in k classes: class c lights up
// a 2×2 pixel block on a noisy background, learnable in a few epochs.
func blobs(n, k int, seed uint64, idBase int64) *artifacts.Dataset {
	rng := rand.New(rand.NewPCG(seed, 5))
	ds := &artifacts.Dataset{Shape: []int{1, 4, 4}}
	for c := range k {
		ds.ClassNames = append(ds.ClassNames, fmt.Sprintf("c%d", c))
	}
	for i := range n {
		c := i % k
		img := make([]float32, 16)
		for p := range img {
			img[p] = float32(0.1 + 0.3*rng.Float64())
		}
		for _, p := range []int{2 * c, 2*c + 1, 2*c + 4, 2*c + 5} {
			img[p%16] = float32(0.6 + 0.3*rng.Float64())
		}
		ds.Images = append(ds.Images, img...)
		ds.IDs = append(ds.IDs, idBase+int64(i))
		ds.Labels = append(ds.Labels, int32(c))
	}
	return ds
}

// fixture is a briefly trained model's two checkpoints and a test set.
type fixture struct {
	best, final *artifacts.Model
	test        *artifacts.Dataset
}

var (
	fixtureOnce sync.Once
	shared      fixture
	fixtureErr  error
)

// trained trains a small mlp once for all tests (standard training, 6 epochs).
func trained(t *testing.T) fixture {
	t.Helper()
	fixtureOnce.Do(func() {
		params := stages.Params{}
		for _, p := range (train.Stage{}).Spec().Params {
			params[p.Name] = p.Default
		}
		for k, v := range map[string]any{"hidden": []any{int64(16)}, "epochs": int64(6), "batch": int64(32),
			"method": train.MethodStandard, "weight_decay": 0.0, "eps": 0.1, "step": 0.03, "val_steps": int64(2),
			"workers": int64(1)} {
			params[k] = v
		}
		cfg, err := train.ConfigFromParams(params)
		if err != nil {
			fixtureErr = err
			return
		}
		res, err := train.Train(context.Background(), cfg, blobs(240, 4, 1, 0), blobs(60, 4, 2, 1000), nil, 3, nil)
		if err != nil {
			fixtureErr = err
			return
		}
		shared.test = blobs(120, 4, 3, 5000)
		if shared.best, fixtureErr = stages.ModelArtifact(res.Best, map[string]string{"checkpoint": "best"}); fixtureErr != nil {
			return
		}
		shared.final, fixtureErr = stages.ModelArtifact(res.Final, map[string]string{"checkpoint": "final"})
	})
	if fixtureErr != nil {
		t.Fatal(fixtureErr)
	}
	return shared
}

// model is one model input with its matrix tags.
type model struct {
	m    *artifacts.Model
	tags map[string]string
}

// runEval runs the eval stage with real files and returns the env.
func runEval(t *testing.T, models []model, source *artifacts.Model, ds *artifacts.Dataset, values map[string]any) (*stages.Env, error) {
	t.Helper()
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
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		return path
	}
	inputs := map[string][]stages.Input{
		"dataset": {stagetest.Input(t, write("dataset", func(f *os.File) error { return artifacts.WriteDataset(f, ds) }), nil)},
	}
	for i, m := range models {
		path := write(fmt.Sprintf("model%d", i), func(f *os.File) error { return artifacts.WriteModel(f, m.m) })
		inputs["models"] = append(inputs["models"], stagetest.Input(t, path, m.tags))
	}
	if source != nil {
		inputs["source"] = []stages.Input{stagetest.Input(t, write("source", func(f *os.File) error { return artifacts.WriteModel(f, source) }), nil)}
	}
	params := stages.Params{}
	for _, p := range (Stage{}).Spec().Params {
		params[p.Name] = p.Default
	}
	params["workers"] = int64(2)
	params["batch"] = int64(32)
	params["eps"] = 0.1
	for k, v := range values {
		if _, ok := params[k]; !ok {
			t.Fatalf("unknown param %q", k)
		}
		params[k] = v
	}
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	env := &stages.Env{Instance: "eval", Params: params, Seed: 11, Inputs: inputs, Progress: stages.NopProgress{}, OutDir: out}
	return env, Stage{}.Run(context.Background(), env)
}

func readMetrics(t *testing.T, env *stages.Env) *artifacts.Table {
	t.Helper()
	tb, err := artifacts.ReadTableFile(env.OutputPath("metrics"))
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func readPredictions(t *testing.T, env *stages.Env) *artifacts.Predictions {
	t.Helper()
	p, err := artifacts.ReadPredictionsFile(env.OutputPath("predictions"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func attacks(names ...string) []any {
	out := make([]any, len(names))
	for i, n := range names {
		out[i] = n
	}
	return out
}

func TestEvalMetricsAndPredictions(t *testing.T) {
	fx := trained(t)
	models := []model{{fx.best, map[string]string{"labels": "hard"}}, {fx.final, map[string]string{"labels": "hard"}}}
	env, err := runEval(t, models, nil, fx.test, map[string]any{"attacks": attacks("clean", "fgsm", "pgd")})
	if err != nil {
		t.Fatal(err)
	}
	tb := readMetrics(t, env)
	wantCheckpoints := []string{"labels=hard/best", "labels=hard/best", "labels=hard/best",
		"labels=hard/final", "labels=hard/final", "labels=hard/final"}
	wantAttacks := []string{"clean", "fgsm", "pgd", "clean", "fgsm", "pgd"}
	if got := tb.Column(ColCheckpoint).Strings; !reflect.DeepEqual(got, wantCheckpoints) {
		t.Errorf("checkpoints %v, want %v", got, wantCheckpoints)
	}
	if got := tb.Column(ColAttack).Strings; !reflect.DeepEqual(got, wantAttacks) {
		t.Errorf("attacks %v, want %v", got, wantAttacks)
	}
	for i, n := range tb.Column(ColN).Ints {
		if n != 120 {
			t.Errorf("row %d: n = %d, want 120", i, n)
		}
	}
	if tb.Column(ColSplit) != nil {
		t.Error("a split column without the split param")
	}
	named, err := runEval(t, models[:1], nil, fx.test, map[string]any{"attacks": attacks("clean"), "split": "test"})
	if err != nil {
		t.Fatal(err)
	}
	if got := readMetrics(t, named).Column(ColSplit); got == nil || !reflect.DeepEqual(got.Strings, []string{"test"}) {
		t.Errorf("split column %v, want [test]", got)
	}
	acc := tb.Column(ColAccuracy).Floats
	t.Logf("accuracies %v", acc)
	for _, m := range []int{0, 3} {
		clean, fgsm, pgd := acc[m], acc[m+1], acc[m+2]
		if clean < 0.8 {
			t.Errorf("%s: clean accuracy %v, want the trained model above 0.8", wantCheckpoints[m], clean)
		}
		if !(pgd < clean && fgsm < clean && pgd <= fgsm) {
			t.Errorf("%s: accuracies clean %v, fgsm %v, pgd %v: want clean > fgsm >= pgd", wantCheckpoints[m], clean, fgsm, pgd)
		}
	}

	// The predictions hold every (model, attack, sample) and agree with the metrics.
	p := readPredictions(t, env)
	if p.Len() != 6*120 || p.K != 4 {
		t.Fatalf("predictions have %d rows of K=%d, want 720 of 4", p.Len(), p.K)
	}
	for g := range 6 {
		lo, hi := g*120, (g+1)*120
		if p.Checkpoint[lo] != wantCheckpoints[g] || p.Attack[hi-1] != wantAttacks[g] {
			t.Errorf("group %d is %s %s, want %s %s", g, p.Checkpoint[lo], p.Attack[hi-1], wantCheckpoints[g], wantAttacks[g])
		}
		if !reflect.DeepEqual(p.IDs[lo:hi], fx.test.IDs) || !reflect.DeepEqual(p.Labels[lo:hi], fx.test.Labels) {
			t.Errorf("group %d: ids or labels differ from the dataset's", g)
		}
		if got := metric.Accuracy(p.Logits[lo*4:hi*4], p.Labels[lo:hi], 4); got != acc[g] {
			t.Errorf("group %d: accuracy of the logits %v, metrics say %v", g, got, acc[g])
		}
	}
	// Clean logits are the model's logits on the dataset.
	w, err := stages.WeightsFromArtifact(fx.best)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := nnmodel.NewEvaluator(w, 32, 1)
	if err != nil {
		t.Fatal(err)
	}
	logits := make([]float32, 120*4)
	if err := ev.Logits(fx.test.Images, 120, logits); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(logits, p.Logits[:120*4]) {
		t.Error("clean logits of the best model differ from its Evaluator's")
	}
	if env.Summary()["labels=hard/best pgd"] != acc[2] {
		t.Errorf("summary %v lacks the best model's pgd accuracy %v", env.Summary(), acc[2])
	}
}

func TestEvalIsDeterministic(t *testing.T) {
	fx := trained(t)
	run := func() (*artifacts.Table, []byte, []byte) {
		env, err := runEval(t, []model{{m: fx.final}}, nil, fx.test, map[string]any{"attacks": attacks("pgd", "clean"), "restarts": int64(2)})
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(env.OutputPath("predictions"))
		if err != nil {
			t.Fatal(err)
		}
		m, err := os.ReadFile(env.OutputPath("metrics"))
		if err != nil {
			t.Fatal(err)
		}
		return readMetrics(t, env), b, m
	}
	t1, p1, m1 := run()
	_, p2, m2 := run()
	if !bytes.Equal(p1, p2) {
		t.Error("two runs wrote different predictions")
	}
	if !bytes.Equal(m1, m2) {
		t.Error("two runs wrote different metrics (a wall time in the artifact?)")
	}
	if got := t1.Column(ColCheckpoint).Strings[0]; got != "final" {
		t.Errorf("an untagged model with checkpoint final is labelled %q", got)
	}
}

func TestEvalAttackSeedsDependOnlyOnThePair(t *testing.T) {
	// pgd on the final model gives the same result alone and beside other models and attacks.
	fx := trained(t)
	alone, err := runEval(t, []model{{m: fx.final}}, nil, fx.test, map[string]any{"attacks": attacks("pgd")})
	if err != nil {
		t.Fatal(err)
	}
	both, err := runEval(t, []model{{m: fx.best}, {m: fx.final}}, nil, fx.test, map[string]any{"attacks": attacks("clean", "pgd")})
	if err != nil {
		t.Fatal(err)
	}
	a, b := readPredictions(t, alone), readPredictions(t, both)
	if !reflect.DeepEqual(a.Logits, b.Logits[3*120*4:]) {
		t.Error("the final model's pgd logits change when another model and attack are evaluated too")
	}
}

func TestEvalTransfer(t *testing.T) {
	fx := trained(t)
	w, err := stages.WeightsFromArtifact(fx.final)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ConfigFromParams(stages.Params{"attacks": attacks("clean", "pgd"), "eps": 0.1, "step": 0.0, "steps": int64(0),
		"restarts": int64(1), "queries": int64(5000), "kappa": 50.0, "targets": int64(9), "batch": int64(32),
		"workers": int64(2), "limit": int64(0)})
	if err != nil {
		t.Fatal(err)
	}
	target := Target{Label: "final", Weights: w}
	white, err := Evaluate(context.Background(), cfg, []Target{target}, nil, fx.test, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A source with the target's label draws the same attack: transfer from
	// the model itself is the white-box attack.
	self, err := Evaluate(context.Background(), cfg, []Target{target}, &target, fx.test, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(white.Predictions.Logits, self.Predictions.Logits) {
		t.Error("transfer from the model itself differs from the white-box attack")
	}
	if self.Metrics.Meta["source"] != "final" {
		t.Errorf("metrics meta %v lacks the source", self.Metrics.Meta)
	}

	// Through the stage: examples crafted on an untrained model transfer badly.
	untrained, err := nnmodel.Init(w.Arch, 99)
	if err != nil {
		t.Fatal(err)
	}
	src, err := stages.ModelArtifact(untrained, nil)
	if err != nil {
		t.Fatal(err)
	}
	env, err := runEval(t, []model{{m: fx.final}}, src, fx.test, map[string]any{"attacks": attacks("clean", "pgd")})
	if err != nil {
		t.Fatal(err)
	}
	transfer := readMetrics(t, env).Column(ColAccuracy).Floats
	whiteAcc := white.Metrics.Column(ColAccuracy).Floats
	if transfer[0] != whiteAcc[0] {
		t.Errorf("clean accuracy %v under transfer, %v white-box: want equal", transfer[0], whiteAcc[0])
	}
	if !(transfer[1] > whiteAcc[1]) {
		t.Errorf("pgd transferred from an untrained model leaves accuracy %v, white-box %v: want the transfer weaker", transfer[1], whiteAcc[1])
	}
	if got := readMetrics(t, env).Meta["source"]; got != "source:model" {
		t.Errorf("source label %q, want source:model", got)
	}
}

func TestEvalLimit(t *testing.T) {
	fx := trained(t)
	env, err := runEval(t, []model{{m: fx.best}}, nil, fx.test, map[string]any{"attacks": attacks("clean"), "limit": int64(30)})
	if err != nil {
		t.Fatal(err)
	}
	p := readPredictions(t, env)
	if p.Len() != 30 || !reflect.DeepEqual(p.IDs, fx.test.IDs[:30]) {
		t.Errorf("limit 30 gives %d rows with ids %v", p.Len(), p.IDs)
	}
	if n := readMetrics(t, env).Column(ColN).Ints[0]; n != 30 {
		t.Errorf("n = %d, want 30", n)
	}
}

func TestEvalGradientAttacks(t *testing.T) {
	// Every attack runs on the Evaluator, whose logits vector-Jacobian
	// product serves the losses other than the cross-entropy (cw, apgd,
	// fab-t, autoattack); autoattack also writes its components'
	// cumulative rows.
	var ev any = &nnmodel.Evaluator{}
	if _, ok := ev.(nnattack.GradModel); !ok {
		t.Fatal("nnmodel.Evaluator is not an nnattack.GradModel: it lacks LogitsVJP")
	}
	fx := trained(t)
	const limit = 40
	values := map[string]any{"attacks": attacks(nnattack.Names...), "steps": int64(5), "queries": int64(50), "targets": int64(3), "limit": int64(limit)}
	env, err := runEval(t, []model{{m: fx.best}}, nil, fx.test, values)
	if err != nil {
		t.Fatal(err)
	}
	tb := readMetrics(t, env)
	var want []string
	for _, a := range nnattack.Names {
		if a == nnattack.NameAutoAttack {
			for _, c := range []string{"apgd-ce", "apgd-t", "fab-t", "square"} {
				want = append(want, "autoattack/"+c)
			}
		}
		want = append(want, a)
	}
	got := tb.Column(ColAttack).Strings
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("attacks %v, want %v", got, want)
	}
	acc := map[string]float64{}
	for i, a := range got {
		acc[a] = tb.Column(ColAccuracy).Floats[i]
	}
	t.Logf("accuracy: %v", acc)
	for _, a := range nnattack.Names {
		if acc[a] > acc[nnattack.NameClean] {
			t.Errorf("%s accuracy %v exceeds clean %v", a, acc[a], acc[nnattack.NameClean])
		}
	}
	chain := []string{"autoattack/apgd-ce", "autoattack/apgd-t", "autoattack/fab-t", "autoattack/square"}
	for i := 1; i < len(chain); i++ {
		if acc[chain[i]] > acc[chain[i-1]] {
			t.Errorf("cumulative accuracy rises from %v to %v at %s", acc[chain[i-1]], acc[chain[i]], chain[i])
		}
	}
	if acc[nnattack.NameAutoAttack] != acc["autoattack/square"] {
		t.Errorf("autoattack accuracy %v differs from its last component's %v", acc[nnattack.NameAutoAttack], acc["autoattack/square"])
	}
	if p := readPredictions(t, env); p.Len() != len(nnattack.Names)*limit {
		t.Errorf("predictions hold %d rows, want %d (components have none)", p.Len(), len(nnattack.Names)*limit)
	}
}

func TestEvalRejectsMistakes(t *testing.T) {
	fx := trained(t)
	wrongClasses, err := nnmodel.Init(nnmodel.Arch{Kind: nnmodel.KindMLP, Input: []int{1, 4, 4}, Classes: 3, Hidden: []int{4}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	wrongShape, err := nnmodel.Init(nnmodel.Arch{Kind: nnmodel.KindMLP, Input: []int{1, 2, 8}, Classes: 4, Hidden: []int{4}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	artifact := func(w *nnmodel.Weights, checkpoint string) *artifacts.Model {
		m, err := stages.ModelArtifact(w, map[string]string{"checkpoint": checkpoint})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	tests := []struct {
		name   string
		models []model
		source *artifacts.Model
		values map[string]any
		want   string
	}{
		{"classes mismatch", []model{{m: artifact(wrongClasses, "best")}}, nil, nil, `model "best" has 3 classes, the dataset 4`},
		{"shape mismatch", []model{{m: artifact(wrongShape, "best")}}, nil, nil, "takes samples of shape [1 2 8], the dataset has [1 4 4]"},
		{"source mismatch", []model{{m: fx.best}}, artifact(wrongClasses, ""), nil, `model "source:model" has 3 classes`},
		{"same label twice", []model{{m: fx.best}, {m: fx.best}}, nil, nil, `two models have the checkpoint label "best"`},
		{"unknown attack", []model{{m: fx.best}}, nil, map[string]any{"attacks": attacks("clean", "pgd20")}, `param "attacks": element 1: "pgd20" is not an attack`},
		{"attack twice", []model{{m: fx.best}}, nil, map[string]any{"attacks": attacks("pgd", "pgd")}, `lists "pgd" twice`},
		{"no attack", []model{{m: fx.best}}, nil, map[string]any{"attacks": attacks()}, `param "attacks": is empty`},
		{"attack not a string", []model{{m: fx.best}}, nil, map[string]any{"attacks": []any{int64(3)}}, "attacks[0] is 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runEval(t, tt.models, tt.source, fx.test, tt.values)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestCheckpointLabel(t *testing.T) {
	tests := []struct {
		tags, meta map[string]string
		want       string
	}{
		{nil, map[string]string{"checkpoint": "best"}, "best"},
		{map[string]string{"noise": "0.2", "labels": "sglr"}, map[string]string{"checkpoint": "final"}, "labels=sglr,noise=0.2/final"},
		{map[string]string{"method": "at"}, nil, "method=at"},
		{nil, nil, "model"},
	}
	for _, tt := range tests {
		if got := CheckpointLabel(tt.tags, tt.meta); got != tt.want {
			t.Errorf("CheckpointLabel(%v, %v) = %q, want %q", tt.tags, tt.meta, got, tt.want)
		}
	}
}

func TestEvalSpecDefaultsAreValid(t *testing.T) {
	params := stages.Params{}
	for _, p := range (Stage{}).Spec().Params {
		params[p.Name] = p.Default
	}
	cfg, err := ConfigFromParams(params)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Attacks, []string{"clean", "pgd"}) || math.Abs(cfg.Eps-8.0/255) > 1e-12 {
		t.Errorf("defaults give %+v", cfg)
	}
}

// countingProgress records the total and the sum of the advances.
type countingProgress struct {
	mu           sync.Mutex
	total, added int64
	statuses     []string
}

func (p *countingProgress) Start(total int64, unit string) {
	p.mu.Lock()
	p.total = total
	p.mu.Unlock()
}
func (p *countingProgress) Add(n int64) { p.mu.Lock(); p.added += n; p.mu.Unlock() }
func (p *countingProgress) Status(msg string) {
	p.mu.Lock()
	p.statuses = append(p.statuses, msg)
	p.mu.Unlock()
}

func TestEvalProgressReachesItsTotal(t *testing.T) {
	fx := trained(t)
	w, err := stages.WeightsFromArtifact(fx.best)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Attacks: []string{"clean", "fgsm", "pgd"}, Eps: 0.1, Restarts: 1, Queries: 1, Targets: 1, Batch: 16, Workers: 2}
	targets := []Target{{Label: "a", Weights: w}, {Label: "b", Weights: w}}
	for _, source := range []*Target{nil, {Label: "s", Weights: w}} {
		p := &countingProgress{}
		if _, err := Evaluate(context.Background(), cfg, targets, source, fx.test, 1, p); err != nil {
			t.Fatal(err)
		}
		if p.total == 0 || p.added != p.total {
			t.Errorf("source %v: progress advanced %d of %d", source != nil, p.added, p.total)
		}
		if len(p.statuses) < len(cfg.Attacks) {
			t.Errorf("source %v: statuses %v, want one per (model, attack) at least", source != nil, p.statuses)
		}
	}
}
