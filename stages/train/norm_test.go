package train

import (
	"strings"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/nn/attack"
	"github.com/sglr-pipe/sglr-pipe/pipeline"
	"github.com/sglr-pipe/sglr-pipe/stages"
)

// Tests of the norm parameter: PGD-L2 adversarial training, and norm linf
// leaving the cache keys as they were.

func TestNormLinfIsKeyNeutral(t *testing.T) {
	spec := Stage{}.Spec()
	defaults, err := stages.DecodeParams(spec, map[string]any{})
	if err != nil {
		t.Fatal(err)
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
	if defaults.String("norm") != NormLinf || key(defaults) != key(before) {
		t.Errorf("norm %q: the default must be linf and leave the key unchanged", defaults.String("norm"))
	}
	l2 := stages.Params{}
	for name, v := range defaults {
		l2[name] = v
	}
	l2["norm"] = NormL2
	if key(l2) == key(defaults) {
		t.Error("norm l2 has the cache key of linf")
	}
}

func TestNormReachesTheTrainingAndValidationAttacks(t *testing.T) {
	cfg, err := ConfigFromParams(withDefaults(t, Stage{}.Spec(), fastParams(map[string]any{"norm": NormL2, "eps": 1.5})))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Norm != attack.L2 || cfg.trainPGD().Norm != attack.L2 || cfg.valPGD().Norm != attack.L2 {
		t.Errorf("norm l2: config %v, training attack %v, validation attack %v", cfg.Norm, cfg.trainPGD().Norm, cfg.valPGD().Norm)
	}
	cfg, err = ConfigFromParams(withDefaults(t, Stage{}.Spec(), fastParams(nil)))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Norm != attack.Linf || cfg.trainPGD().Norm != attack.Linf {
		t.Errorf("default norm %v, training attack %v; want linf", cfg.Norm, cfg.trainPGD().Norm)
	}
}

func TestNormProblems(t *testing.T) {
	for _, tc := range []struct {
		values map[string]any
		param  string
		want   string
	}{
		{map[string]any{"norm": NormL2, "method": MethodTRADES}, "norm", "not supported by method trades"},
		{map[string]any{"eps": 1.5}, "eps", "eps 1.5 must be in [0,1] for norm linf"},
	} {
		ps := Stage{}.Check(withDefaults(t, Stage{}.Spec(), fastParams(tc.values)), nil)
		if len(ps) != 1 || ps[0].Param != tc.param || !strings.Contains(ps[0].Msg, tc.want) {
			t.Errorf("%v: problems %+v, want one on %s containing %q", tc.values, ps, tc.param, tc.want)
		}
	}
	ok := withDefaults(t, Stage{}.Spec(), fastParams(map[string]any{"norm": NormL2, "eps": 1.5}))
	if ps := (Stage{}).Check(ok, nil); len(ps) != 0 {
		t.Errorf("norm l2, eps 1.5: unexpected problems %+v", ps)
	}
	// FGSM with the L2 random start and step (the robust-overfitting
	// reference's fgsm) trains.
	fgsm := fastParams(map[string]any{"norm": NormL2, "attack": AttackFGSM, "eps": 0.9, "epochs": int64(2)})
	if ps := (Stage{}).Check(withDefaults(t, Stage{}.Spec(), fgsm), nil); len(ps) != 0 {
		t.Errorf("norm l2, attack fgsm: unexpected problems %+v", ps)
	}
	if run := runTrain(t, blobs(60, 3, 0, 1, 0), blobs(30, 3, 0, 2, 10000), nil, fgsm, 3); run.err != nil {
		t.Errorf("fgsm-l2 training: %v", run.err)
	}
	if _, err := stages.DecodeParams(Stage{}.Spec(), map[string]any{"norm": "l1"}); err == nil {
		t.Error("norm l1 was accepted for training")
	}
}

// TestL2AdversarialTrainingIsMoreL2Robust trains the same mlp with and
// without PGD-L2 and validates both under PGD-L2: the adversarially trained
// one must be the more robust.
func TestL2AdversarialTrainingIsMoreL2Robust(t *testing.T) {
	trainSet, valSet := blobs(240, 3, 0, 1, 0), blobs(90, 3, 0, 2, 10000)
	robust := map[string]float64{}
	for _, method := range []string{MethodStandard, MethodPGDAT} {
		run := runTrain(t, trainSet, valSet, nil, fastParams(map[string]any{"method": method, "norm": NormL2,
			"eps": 0.9, "step": 0.3, "steps": int64(5), "epochs": int64(10)}), 7)
		if run.err != nil {
			t.Fatal(run.err)
		}
		curve, err := artifacts.ReadCurveFile(run.env.OutputPath("curve"))
		if err != nil {
			t.Fatal(err)
		}
		r := curve.Column(artifacts.ColValRobustAcc).Floats
		robust[method] = r[len(r)-1]
		clean := curve.Column(artifacts.ColValCleanAcc).Floats
		t.Logf("%s: final val clean %.3f, PGD-L2 robust %.3f", method, clean[len(clean)-1], robust[method])
	}
	if !(robust[MethodPGDAT] >= robust[MethodStandard]+0.1) {
		t.Errorf("PGD-L2 robust accuracy: pgd-at %.3f, standard %.3f; want pgd-at at least 10 points above",
			robust[MethodPGDAT], robust[MethodStandard])
	}
}
