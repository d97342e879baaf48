package eval

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	nnmodel "github.com/sglr-pipe/sglr-pipe/nn/model"
	"github.com/sglr-pipe/sglr-pipe/stages"
)

func TestAttackWarnings(t *testing.T) {
	for _, tc := range []struct {
		name string
		rows []metricRow
		want string // a fragment of the one warning expected; "" = none
	}{
		{"white-box strongest", []metricRow{{attack: "clean", accuracy: 0.9}, {attack: "pgd", accuracy: 0.4}, {attack: "square", accuracy: 0.5}}, ""},
		{"square below pgd", []metricRow{{attack: "pgd", accuracy: 0.4}, {attack: "apgd-ce", accuracy: 0.38}, {attack: "square", accuracy: 0.3}},
			"Square (30.0%) is stronger than every white-box attack (best 38.0%)"},
		{"l2 names", []metricRow{{attack: "pgd-l2", accuracy: 0.4}, {attack: "square-l2", accuracy: 0.3}}, "stronger than every white-box"},
		{"square alone", []metricRow{{attack: "clean", accuracy: 0.9}, {attack: "square", accuracy: 0.1}}, ""},
		{"autoattack square breaks more", []metricRow{{attack: "autoattack/apgd-ce", accuracy: 0.5}, {attack: "autoattack/apgd-t", accuracy: 0.45},
			{attack: "autoattack/fab-t", accuracy: 0.45}, {attack: "autoattack/square", accuracy: 0.42}, {attack: "autoattack", accuracy: 0.42}},
			"lowered robust accuracy from 45.0% to 42.0%"},
		{"autoattack square idle", []metricRow{{attack: "autoattack/apgd-ce", accuracy: 0.5}, {attack: "autoattack/fab-t", accuracy: 0.45},
			{attack: "autoattack/square", accuracy: 0.45}, {attack: "autoattack", accuracy: 0.45}}, ""},
	} {
		got := attackWarnings("m", tc.rows)
		switch {
		case tc.want == "" && len(got) != 0:
			t.Errorf("%s: warnings %q, want none", tc.name, got)
		case tc.want != "" && (len(got) != 1 || !strings.Contains(got[0], tc.want)):
			t.Errorf("%s: warnings %q, want one saying %q", tc.name, got, tc.want)
		}
	}
}

// randomised is a model whose logits carry fresh noise on every pass, as a
// randomised defence's do.
type randomised struct {
	attackModel
	rng *rand.Rand
}

func (r randomised) Logits(x []float32, n int, out []float32) error {
	if err := r.attackModel.Logits(x, n, out); err != nil {
		return err
	}
	for i := range out {
		out[i] += float32(r.rng.NormFloat64() * 1e-3)
	}
	return nil
}

func TestModelWarnings(t *testing.T) {
	fx := trained(t)
	w, err := stages.WeightsFromArtifact(fx.best)
	if err != nil {
		t.Fatal(err)
	}
	dead := w.Clone()
	for _, p := range dead.Params {
		clear(p.Data) // constant logits: every input gradient is zero
	}
	e := &evaluation{n: 120, d: w.Arch.InputSize(), k: 4, block: 64, x: fx.test.Images, y: fx.test.Labels}
	model := func(w *nnmodel.Weights) attackModel {
		ev, err := nnmodel.NewEvaluator(w, 64, 1)
		if err != nil {
			t.Fatal(err)
		}
		return attackModel{Evaluator: ev, shape: fx.test.Shape}
	}
	if got, err := e.modelWarnings(model(w), "best"); err != nil || len(got) != 0 {
		t.Errorf("trained model: warnings %q (%v), want none", got, err)
	}
	got, err := e.modelWarnings(model(dead), "dead")
	if err != nil || len(got) != 1 || !strings.Contains(got[0], "64 of 64 samples have an input gradient of exactly zero") {
		t.Errorf("zero model: warnings %q (%v)", got, err)
	}
	got, err = e.modelWarnings(randomised{model(w), rand.New(rand.NewPCG(1, 2))}, "noisy")
	if err != nil || len(got) != 1 || !strings.Contains(got[0], "different logits") {
		t.Errorf("randomised model: warnings %q (%v)", got, err)
	}

	// Through Evaluate: the warnings reach the result and the metrics'
	// metadata, which stays without the key when all is well.
	cfg := Config{Attacks: []string{"clean", "pgd"}, Eps: 0.1, Restarts: 1, Queries: 1, Targets: 3, Batch: 32, Workers: 2}
	res, err := Evaluate(context.Background(), cfg, []Target{{Label: "dead", Weights: dead}, {Label: "best", Weights: w}}, nil, fx.test, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 1 || res.Metrics.Meta["warnings"] != res.Warnings[0] {
		t.Errorf("warnings %q, metadata %q", res.Warnings, res.Metrics.Meta["warnings"])
	}
	res, err = Evaluate(context.Background(), cfg, []Target{{Label: "best", Weights: w}}, nil, fx.test, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := res.Metrics.Meta["warnings"]; ok || len(res.Warnings) != 0 {
		t.Errorf("a sound model got warnings %q", res.Warnings)
	}
}
