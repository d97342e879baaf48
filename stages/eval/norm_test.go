package eval

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	nnattack "github.com/sglr-pipe/sglr-pipe/nn/attack"
	nnmodel "github.com/sglr-pipe/sglr-pipe/nn/model"
	"github.com/sglr-pipe/sglr-pipe/pipeline"
	"github.com/sglr-pipe/sglr-pipe/stages"
)

// Tests of the norm parameter: L2/L1 evaluation, the outputs' names, and
// that norm linf leaves keys and tables as they were.

func TestNormLinfIsKeyNeutral(t *testing.T) {
	spec := Stage{}.Spec()
	defaults, err := stages.DecodeParams(spec, map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	if defaults.String("norm") != NormLinf {
		t.Fatalf("default norm %q, want linf", defaults.String("norm"))
	}
	key := func(ps stages.Params) string {
		t.Helper()
		k, err := pipeline.CacheKey(pipeline.KeySpec{Stage: spec.Name, Version: spec.Version, Params: ps, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	before := stages.Params{}
	for name, v := range defaults {
		if name != "norm" {
			before[name] = v
		}
	}
	if key(defaults) != key(before) {
		t.Error("norm: linf changed the cache key of the defaults")
	}
	for _, norm := range []string{"l2", "l1"} {
		ps := stages.Params{}
		for name, v := range defaults {
			ps[name] = v
		}
		ps["norm"] = norm
		if key(ps) == key(defaults) {
			t.Errorf("norm %s has the cache key of linf", norm)
		}
	}
}

func TestEvalL2AndL1NameTheNormInTheOutputs(t *testing.T) {
	fx := trained(t)
	const limit = 30
	for _, tc := range []struct {
		norm    string
		eps     float64
		attacks []string
	}{
		{"linf", 0.1, []string{"clean", "pgd", "apgd-ce", "autoattack"}},
		{"l2", 0.5, []string{"clean", "fgsm", "pgd", "apgd-ce", "apgd-t", "fab-t", "square", "autoattack"}},
		{"l1", 1.5, []string{"clean", "apgd-ce", "apgd-t", "fab-t", "square", "autoattack"}},
	} {
		t.Run(tc.norm, func(t *testing.T) {
			values := map[string]any{"attacks": attacks(tc.attacks...), "norm": tc.norm, "eps": tc.eps, "steps": int64(5),
				"queries": int64(50), "targets": int64(3), "limit": int64(limit)}
			env, err := runEval(t, []model{{m: fx.best}}, nil, fx.test, values)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := ConfigFromParams(env.Params)
			if err != nil {
				t.Fatal(err)
			}
			suffix := "-" + tc.norm
			if tc.norm == "linf" {
				suffix = ""
			}
			var want, wantPred []string
			for _, a := range tc.attacks {
				label := a + suffix
				if a == "clean" {
					label = a
				}
				if a == "autoattack" {
					for _, c := range []string{"apgd-ce", "apgd-t", "fab-t", "square"} {
						want = append(want, label+"/"+c)
					}
				}
				want = append(want, label)
				wantPred = append(wantPred, label)
			}
			tb := readMetrics(t, env)
			got := tb.Column(ColAttack).Strings
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("attacks %v, want %v", got, want)
			}
			if norm, ok := tb.Meta["norm"]; (tc.norm == "linf") == ok || (ok && norm != tc.norm) {
				t.Errorf("metrics meta norm %q (present %v) for norm %s: want it only when not linf", norm, ok, tc.norm)
			}
			declared := Stage{}.Columns("metrics", env.Params, nil)
			for _, c := range declared {
				if c.Name == ColAttack && !reflect.DeepEqual(sortedCopy(c.Values), sortedCopy(want)) {
					t.Errorf("declared attack values %v, want %v", c.Values, want)
				}
			}
			preds := readPredictions(t, env)
			var seen []string
			for i := 0; i < preds.Len(); i += limit {
				seen = append(seen, preds.Attack[i])
			}
			if !reflect.DeepEqual(seen, wantPred) {
				t.Errorf("prediction attacks %v, want %v", seen, wantPred)
			}
			acc := map[string]float64{}
			for i, a := range got {
				acc[a] = tb.Column(ColAccuracy).Floats[i]
			}
			t.Logf("%s accuracy at eps %v: %v", tc.norm, tc.eps, acc)
			aa := cfg.AttackLabel("autoattack")
			if acc[aa] > acc[cfg.AttackLabel("apgd-ce")] || acc[aa] >= acc["clean"] {
				t.Errorf("%s: autoattack %v, apgd-ce %v, clean %v: want autoattack <= apgd-ce and below clean",
					tc.norm, acc[aa], acc[cfg.AttackLabel("apgd-ce")], acc["clean"])
			}
		})
	}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestEvalNormProblemsAtPlanTime(t *testing.T) {
	spec := Stage{}.Spec()
	problems := func(values map[string]any) []stages.Problem {
		t.Helper()
		ps, err := stages.DecodeParams(spec, values)
		if err != nil {
			t.Fatal(err)
		}
		return Stage{}.Check(ps, nil)
	}
	for _, tc := range []struct {
		values map[string]any
		param  string
		want   string
	}{
		{map[string]any{"norm": "l2", "attacks": attacks("clean", "cw")}, "attacks", `"cw" has no l2 version`},
		{map[string]any{"norm": "l1", "attacks": attacks("pgd")}, "attacks", `"pgd" has no l1 version`},
		{map[string]any{"norm": "l1", "attacks": attacks("fgsm")}, "attacks", `"fgsm" has no l1 version`},
		{map[string]any{"eps": 2.0}, "eps", "eps 2 must be in [0,1]"},
	} {
		ps := problems(tc.values)
		if len(ps) != 1 || ps[0].Param != tc.param || !strings.Contains(ps[0].Msg, tc.want) {
			t.Errorf("%v: problems %+v, want one on %s containing %q", tc.values, ps, tc.param, tc.want)
		}
	}
	for _, ok := range []map[string]any{
		{"norm": "l2", "eps": 2.0, "attacks": attacks("clean", "pgd", "autoattack")},
		{"norm": "l1", "eps": 12.0, "attacks": attacks("apgd-ce", "apgd-t", "fab-t", "square", "autoattack")},
	} {
		if ps := problems(ok); len(ps) != 0 {
			t.Errorf("%v: unexpected problems %+v", ok, ps)
		}
	}
	if _, err := stages.DecodeParams(spec, map[string]any{"norm": "l3"}); err == nil {
		t.Error("norm l3 was accepted")
	}
}

// crosscheckPython is the interpreter with PyTorch (Debian's python3-torch).
const crosscheckPython = "/usr/bin/python3"

// TestPGDL2MatchesPyTorch exports the fixture model and test set, runs
// bench/pgd_crosscheck.py --norm l2 (Rice et al.'s L2 attack_pgd), and
// compares with our PGD-L2: without random start both are deterministic and
// must agree on all but at most one sample (float rounding at the boundary);
// with random starts (eval's pgd) within 5 points on the 120 samples.
func TestPGDL2MatchesPyTorch(t *testing.T) {
	if testing.Short() {
		t.Skip("PyTorch cross-check skipped in -short mode")
	}
	if out, err := exec.Command(crosscheckPython, "-c", "import torch, numpy").CombinedOutput(); err != nil {
		t.Skipf("PyTorch cross-check skipped: %s cannot import torch and numpy (%v: %s)", crosscheckPython, err, out)
	}
	fx := trained(t)
	const eps, step, steps = 0.6, 0.15, 20
	dir := t.TempDir()
	modelPath, dataDir := exportForTorch(t, dir, fx)

	w, err := stages.WeightsFromArtifact(fx.best)
	if err != nil {
		t.Fatal(err)
	}
	n, d := len(fx.test.Labels), w.Arch.InputSize()
	ev, err := nnmodel.NewEvaluator(w, n, 1)
	if err != nil {
		t.Fatal(err)
	}
	xAdv := make([]float32, n*d)
	cfg := nnattack.PGD{Eps: eps, Step: step, Steps: steps, Norm: nnattack.L2}
	if err := (&nnattack.Attacker{}).PGD(ev, fx.test.Images, fx.test.Labels, n, cfg, nil, xAdv); err != nil {
		t.Fatal(err)
	}
	oursDet, err := nnattack.RobustAccuracy(ev, xAdv, fx.test.Labels, n)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Evaluate(context.Background(), Config{Attacks: []string{"clean", "pgd"}, Norm: nnattack.L2, Eps: eps, Step: step,
		Steps: steps, Restarts: 1, Queries: 1, Kappa: 50, Targets: 1, Batch: 64, Workers: 1},
		[]Target{{Label: "best", Weights: w}}, nil, fx.test, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	oursRand := res.Metrics.Column(ColAccuracy).Floats[1]

	run := func(extra ...string) map[string]any {
		t.Helper()
		args := append([]string{filepath.Join("..", "..", "bench", "pgd_crosscheck.py"), modelPath, fx.best.Arch, dataDir,
			"--norm", "l2", "--eps", "0.6", "--step", "0.15", "--steps", "20"}, extra...)
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(crosscheckPython, args...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("pgd_crosscheck.py: %v\n%s", err, stderr.String())
		}
		var out map[string]any
		if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
			t.Fatalf("pgd_crosscheck.py output %q: %v", stdout.String(), err)
		}
		return out
	}
	det, rnd := run("--no-random-start"), run("--seed", "0")
	t.Logf("PGD-20-L2 eps %v accuracy: deterministic sglr-pipe %.4f PyTorch %.4f; random start sglr-pipe %.4f PyTorch %.4f (clean %.4f)",
		eps, oursDet, det["pgd20_acc"], oursRand, rnd["pgd20_acc"], det["clean_acc"])
	if det["norm"] != "l2" {
		t.Errorf("the script ran norm %v", det["norm"])
	}
	if gap := math.Abs(oursDet - det["pgd20_acc"].(float64)); gap > 1.0/float64(n)+1e-9 {
		t.Errorf("deterministic PGD-L2: sglr-pipe %.4f, PyTorch %.4f differ by more than one sample", oursDet, det["pgd20_acc"])
	}
	if gap := math.Abs(oursRand - rnd["pgd20_acc"].(float64)); gap > 0.05 {
		t.Errorf("random-start PGD-L2: sglr-pipe %.4f, PyTorch %.4f differ by %.1f points", oursRand, rnd["pgd20_acc"], 100*gap)
	}
	if clean := det["clean_acc"].(float64); !(oursDet < clean-0.1) {
		t.Errorf("PGD-L2 accuracy %.4f is not well below clean %.4f: the comparison is weak", oursDet, clean)
	}
}

// exportForTorch writes the fixture's best model as .npz and its test set as
// an npy directory, the way `sglr-pipe export` does.
func exportForTorch(t *testing.T, dir string, fx fixture) (modelPath, dataDir string) {
	t.Helper()
	var mb, db bytes.Buffer
	if err := artifacts.WriteModel(&mb, fx.best); err != nil {
		t.Fatal(err)
	}
	if err := artifacts.WriteDataset(&db, fx.test); err != nil {
		t.Fatal(err)
	}
	modelPath = filepath.Join(dir, "model.npz")
	f, err := os.Create(modelPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := artifacts.ExportNPZ(bytes.NewReader(mb.Bytes()), f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	dataDir = filepath.Join(dir, "test-npy")
	if _, err := artifacts.ExportNPY(bytes.NewReader(db.Bytes()), dataDir); err != nil {
		t.Fatal(err)
	}
	return modelPath, dataDir
}
