package calibrate

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
	"testing"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/nn/metric"
	"github.com/sglr-pipe/sglr-pipe/nn/model"
	"github.com/sglr-pipe/sglr-pipe/stages"
	"github.com/sglr-pipe/sglr-pipe/stages/eval"
	"github.com/sglr-pipe/sglr-pipe/stages/stagetest"
)

// synthetic builds predictions of K=4 for the given (checkpoint, attack)
// groups, n samples each, whose labels follow softmax(logits/scale): scale 1
// is a calibrated model, scale > 1 an over-confident one.
func synthetic(seed uint64, n int, scale float64, groups ...[2]string) *artifacts.Predictions {
	const k = 4
	rng := rand.New(rand.NewPCG(seed, 1))
	p := &artifacts.Predictions{K: k}
	probs := make([]float32, k)
	for _, g := range groups {
		for i := range n {
			row := make([]float32, k)
			for j := range row {
				row[j] = float32(1.5 * rng.NormFloat64())
			}
			metric.Softmax(row, 1, k, probs)
			label, u := int32(k-1), rng.Float64()
			for j, acc := 0, 0.0; j < k; j++ {
				if acc += float64(probs[j]); u < acc {
					label = int32(j)
					break
				}
			}
			for j := range row {
				row[j] *= float32(scale)
			}
			p.IDs = append(p.IDs, int64(i))
			p.Labels = append(p.Labels, label)
			p.Logits = append(p.Logits, row...)
			p.Checkpoint = append(p.Checkpoint, g[0])
			p.Attack = append(p.Attack, g[1])
		}
	}
	return p
}

// runCalibrate runs the stage with real files; val may be nil.
func runCalibrate(t *testing.T, preds, val *artifacts.Predictions, values map[string]any) (*stages.Env, error) {
	t.Helper()
	dir := t.TempDir()
	write := func(name string, p *artifacts.Predictions) string {
		var buf bytes.Buffer
		if err := artifacts.WritePredictions(&buf, p); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	inputs := map[string][]stages.Input{"predictions": {stagetest.Input(t, write("predictions", preds), nil)}}
	if val != nil {
		inputs["val"] = []stages.Input{stagetest.Input(t, write("val", val), nil)}
	}
	params := stages.Params{}
	for _, p := range (Stage{}).Spec().Params {
		params[p.Name] = p.Default
	}
	for k, v := range values {
		params[k] = v
	}
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	env := &stages.Env{Instance: "calibrate", Params: params, Inputs: inputs, Progress: stages.NopProgress{}, OutDir: out}
	return env, Stage{}.Run(context.Background(), env)
}

func readTables(t *testing.T, env *stages.Env) (metrics, bins, hist *artifacts.Table) {
	t.Helper()
	var tables [3]*artifacts.Table
	for i, port := range []string{"metrics", "bins", "hist"} {
		tb, err := artifacts.ReadTableFile(env.OutputPath(port))
		if err != nil {
			t.Fatal(err)
		}
		tables[i] = tb
	}
	return tables[0], tables[1], tables[2]
}

// groupOf returns the logits and labels of one (checkpoint, attack) group.
func groupOf(p *artifacts.Predictions, checkpoint, attack string) ([]float32, []int32) {
	var logits []float32
	var labels []int32
	for i := range p.IDs {
		if p.Checkpoint[i] == checkpoint && p.Attack[i] == attack {
			logits = append(logits, p.Logits[i*p.K:(i+1)*p.K]...)
			labels = append(labels, p.Labels[i])
		}
	}
	return logits, labels
}

func TestCalibrateTablesAreConsistent(t *testing.T) {
	groups := [][2]string{{"best", "clean"}, {"best", "pgd"}, {"final", "clean"}}
	preds := synthetic(1, 300, 3, groups...)
	env, err := runCalibrate(t, preds, nil, map[string]any{"bins": int64(10), "hist_bins": int64(8)})
	if err != nil {
		t.Fatal(err)
	}
	metrics, bins, hist := readTables(t, env)
	if metrics.Len() != 3 || bins.Len() != 3*10 || hist.Len() != 3*8 {
		t.Fatalf("tables have %d, %d, %d rows, want 3, 30, 24", metrics.Len(), bins.Len(), hist.Len())
	}
	wantCols := map[*artifacts.Table][]string{
		metrics: {"checkpoint", "attack", "n", "accuracy", "ece", "mce", "nll", "brier", "temperature", "ece_scaled", "nll_scaled"},
		bins:    {"checkpoint", "attack", "bin", "lo", "hi", "count", "accuracy", "confidence"},
		hist:    {"checkpoint", "attack", "bin", "lo", "hi", "count"},
	}
	for tb, want := range wantCols {
		var got []string
		for _, c := range tb.Columns {
			got = append(got, c.Name)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("columns %v, want %v", got, want)
		}
	}
	for g, name := range groups {
		if metrics.Column(ColCheckpoint).Strings[g] != name[0] || metrics.Column(ColAttack).Strings[g] != name[1] {
			t.Errorf("metrics row %d is %s %s, want %v", g, metrics.Column(ColCheckpoint).Strings[g], metrics.Column(ColAttack).Strings[g], name)
		}
		logits, labels := groupOf(preds, name[0], name[1])
		want, err := metric.Calibrate(logits, labels, 4, 10)
		if err != nil {
			t.Fatal(err)
		}
		row := map[string]float64{}
		for _, c := range []string{ColAccuracy, ColECE, ColMCE, ColNLL, ColBrier, ColTemperature, ColECEScaled, ColNLLScaled} {
			row[c] = metrics.Column(c).Floats[g]
		}
		if row[ColECE] != want.ECE || row[ColMCE] != want.MCE || row[ColNLL] != want.NLL || row[ColBrier] != want.Brier ||
			row[ColAccuracy] != want.Accuracy {
			t.Errorf("%v: metrics %v, metric.Calibrate gives %+v", name, row, want)
		}
		if !math.IsNaN(row[ColTemperature]) || !math.IsNaN(row[ColECEScaled]) || !math.IsNaN(row[ColNLLScaled]) {
			t.Errorf("%v: without val the temperature columns are %v, want NaN", name, row)
		}
		if n := metrics.Column(ColN).Ints[g]; n != 300 {
			t.Errorf("%v: n = %d, want 300", name, n)
		}
		binCount, histCount := int64(0), int64(0)
		for b := range 10 {
			r := g*10 + b
			if bins.Column(ColBin).Ints[r] != int64(b) || bins.Column(ColCheckpoint).Strings[r] != name[0] {
				t.Errorf("bins row %d is bin %d of %s", r, bins.Column(ColBin).Ints[r], bins.Column(ColCheckpoint).Strings[r])
			}
			if lo, hi := bins.Column(ColLo).Floats[r], bins.Column(ColHi).Floats[r]; math.Abs(lo-float64(b)/10) > 1e-12 || math.Abs(hi-float64(b+1)/10) > 1e-12 {
				t.Errorf("bin %d covers (%v,%v]", b, lo, hi)
			}
			binCount += bins.Column(ColCount).Ints[r]
		}
		for b := range 8 {
			histCount += hist.Column(ColCount).Ints[g*8+b]
		}
		if binCount != 300 || histCount != 300 {
			t.Errorf("%v: bin counts sum to %d, histogram counts to %d, want 300", name, binCount, histCount)
		}
	}
	if metrics.Meta["bins"] != "10" || env.Summary()["ece best pgd"] != metrics.Column(ColECE).Floats[1] {
		t.Errorf("meta %v, summary %v", metrics.Meta, env.Summary())
	}
}

func TestCalibrateTemperatureScaling(t *testing.T) {
	groups := [][2]string{{"best", "clean"}, {"best", "pgd"}}
	preds := synthetic(2, 1500, 4, groups...) // over-confident: logits × 4
	val := synthetic(3, 1500, 4, groups...)
	for _, fitOn := range []string{FitOnSame, FitOnClean} {
		t.Run(fitOn, func(t *testing.T) {
			env, err := runCalibrate(t, preds, val, map[string]any{"fit_on": fitOn})
			if err != nil {
				t.Fatal(err)
			}
			metrics, _, _ := readTables(t, env)
			temps := metrics.Column(ColTemperature).Floats
			for g := range groups {
				temp := temps[g]
				if math.Abs(temp/4-1) > 0.15 {
					t.Errorf("%v: temperature %v, want about 4", groups[g], temp)
				}
				if ece, scaled := metrics.Column(ColECE).Floats[g], metrics.Column(ColECEScaled).Floats[g]; !(scaled < ece/2) {
					t.Errorf("%v: ECE %v after scaling, %v before: want at least halved", groups[g], scaled, ece)
				}
				if nll, scaled := metrics.Column(ColNLL).Floats[g], metrics.Column(ColNLLScaled).Floats[g]; !(scaled < nll) {
					t.Errorf("%v: NLL %v after scaling, %v before", groups[g], scaled, nll)
				}
			}
			// fit_on clean fits both groups on the clean val predictions.
			if fitOn == FitOnClean && temps[0] != temps[1] {
				t.Errorf("fit_on clean gave temperatures %v", temps)
			}
			if fitOn == FitOnSame && temps[0] == temps[1] {
				t.Errorf("fit_on same gave one temperature %v for both attacks", temps)
			}
			logits, labels := groupOf(val, "best", map[string]string{FitOnSame: "pgd", FitOnClean: "clean"}[fitOn])
			want, err := metric.FitTemperature(logits, labels, 4)
			if err != nil || want != temps[1] {
				t.Errorf("pgd group temperature %v, metric.FitTemperature on its val group gives %v (%v)", temps[1], want, err)
			}
		})
	}
}

func TestCalibrateRejectsMistakes(t *testing.T) {
	preds := synthetic(4, 20, 1, [2]string{"best", "clean"}, [2]string{"best", "pgd"})
	onlyClean := synthetic(5, 20, 1, [2]string{"best", "clean"})
	otherK := &artifacts.Predictions{K: 3, IDs: []int64{1}, Labels: []int32{0}, Logits: []float32{1, 2, 3},
		Attack: []string{"clean"}, Checkpoint: []string{"best"}}
	empty := &artifacts.Predictions{K: 4, IDs: []int64{}, Labels: []int32{}, Logits: []float32{}, Attack: []string{}, Checkpoint: []string{}}
	tests := []struct {
		name       string
		preds, val *artifacts.Predictions
		values     map[string]any
		want       string
	}{
		{"val lacks the attack", preds, onlyClean, nil, `no checkpoint "best" under attack "pgd"`},
		{"val of another checkpoint", preds, synthetic(6, 5, 1, [2]string{"final", "clean"}), map[string]any{"fit_on": FitOnClean},
			`no checkpoint "best" under attack "clean" to fit the temperature on (they hold: final clean)`},
		{"class count differs", preds, otherK, nil, "val predictions have 3 classes, the predictions 4"},
		{"no predictions", empty, nil, nil, "the predictions are empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runCalibrate(t, tt.preds, tt.val, tt.values)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if _, err := runCalibrate(t, preds, onlyClean, map[string]any{"fit_on": FitOnClean}); err != nil {
		t.Errorf("fit_on clean with clean val predictions: %v", err)
	}
}

func TestCalibrateIsDeterministic(t *testing.T) {
	preds := synthetic(7, 200, 2, [2]string{"best", "clean"})
	read := func() [3][]byte {
		env, err := runCalibrate(t, preds, preds, nil)
		if err != nil {
			t.Fatal(err)
		}
		var out [3][]byte
		for i, port := range []string{"metrics", "bins", "hist"} {
			if out[i], err = os.ReadFile(env.OutputPath(port)); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	a, b := read(), read()
	for i, port := range []string{"metrics", "bins", "hist"} {
		if len(a[i]) == 0 || !bytes.Equal(a[i], b[i]) {
			t.Errorf("two runs wrote different %s tables", port)
		}
	}
}

func TestCalibrateEvalPredictions(t *testing.T) {
	// The eval stage's predictions of a (random) model feed calibrate directly.
	ds := &artifacts.Dataset{Shape: []int{1, 2, 2}, ClassNames: []string{"a", "b", "c"}}
	rng := rand.New(rand.NewPCG(8, 8))
	for i := range 50 {
		for range 4 {
			ds.Images = append(ds.Images, float32(rng.Float64()))
		}
		ds.IDs = append(ds.IDs, int64(i))
		ds.Labels = append(ds.Labels, int32(i%3))
	}
	w, err := model.Init(model.Arch{Kind: model.KindMLP, Input: []int{1, 2, 2}, Classes: 3, Hidden: []int{8}}, 2)
	if err != nil {
		t.Fatal(err)
	}
	cfg := eval.Config{Attacks: []string{"clean", "pgd"}, Eps: 0.1, Restarts: 1, Queries: 10, Kappa: 50, Targets: 2, Batch: 16, Workers: 1}
	res, err := eval.Evaluate(context.Background(), cfg, []eval.Target{{Label: "best", Weights: w}}, nil, ds, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	env, err := runCalibrate(t, res.Predictions, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	metrics, _, _ := readTables(t, env)
	evalAcc := res.Metrics.Column(eval.ColAccuracy).Floats
	for i, acc := range metrics.Column(ColAccuracy).Floats {
		if acc != evalAcc[i] {
			t.Errorf("row %d: calibrate accuracy %v, eval accuracy %v", i, acc, evalAcc[i])
		}
	}
	if got := fmt.Sprint(metrics.Column(ColAttack).Strings); got != "[clean pgd]" {
		t.Errorf("attacks %s", got)
	}
}
