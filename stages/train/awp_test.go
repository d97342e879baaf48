package train

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/stages"
)

// The MART and AWP methods in the train stage: their configuration checks
// and defaults, that short runs learn and are deterministic (their resume is
// in TestResumeAfterInterruptionGivesTheUninterruptedBits).

func TestMARTAndAWPConfig(t *testing.T) {
	spec := Stage{}.Spec()
	build := func(values map[string]any) (Config, []stages.Problem) {
		return configFromParams(withDefaults(t, spec, values))
	}
	for _, tc := range []struct {
		method        string
		gamma         float64
		warmup        int
		wantInCfgJSON bool
	}{
		{MethodPGDAT, 0, 0, false},
		{MethodMART, 0, 0, false},
		{MethodAWP, 0.01, 0, true},
		{MethodTRADESAWP, 0.005, 9, true},
		{MethodMARTAWP, 0.005, 9, true},
	} {
		cfg, problems := build(map[string]any{"method": tc.method})
		if len(problems) > 0 {
			t.Fatalf("method %s: %v", tc.method, problems)
		}
		if cfg.AWPGamma != tc.gamma || cfg.AWPWarmup != tc.warmup {
			t.Errorf("method %s: awp_gamma %v, awp_warmup %d; want %v, %d", tc.method, cfg.AWPGamma, cfg.AWPWarmup, tc.gamma, tc.warmup)
		}
		// Methods without AWP keep their checkpoint fingerprints: the new
		// fields are left out of the JSON.
		b, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(string(b), "AWPGamma"); got != tc.wantInCfgJSON {
			t.Errorf("method %s: AWPGamma in the fingerprinted JSON %v, want %v", tc.method, got, tc.wantInCfgJSON)
		}
	}
	if cfg, problems := build(map[string]any{"method": MethodAWP, "awp_gamma": 0.02, "awp_warmup": int64(3)}); len(problems) > 0 ||
		cfg.AWPGamma != 0.02 || cfg.AWPWarmup != 3 {
		t.Errorf("explicit awp_gamma 0.02, awp_warmup 3: got %v, %d (%v)", cfg.AWPGamma, cfg.AWPWarmup, problems)
	}
	for _, tc := range []struct {
		values map[string]any
		param  string
	}{
		{map[string]any{"method": MethodPGDAT, "awp_gamma": 0.01}, "awp_gamma"},
		{map[string]any{"method": MethodMART, "awp_warmup": int64(2)}, "awp_gamma"},
		{map[string]any{"method": MethodAWP, "awp_gamma": 0.0}, "awp_gamma"},
		{map[string]any{"method": MethodTRADESAWP, "epochs": int64(9)}, "awp_warmup"},
		{map[string]any{"method": MethodAWP, "awp_warmup": int64(30)}, "awp_warmup"},
		{map[string]any{"method": MethodTRADESAWP, "attack": AttackFGSM}, "attack"},
		{map[string]any{"method": MethodTRADESAWP, "norm": NormL2}, "norm"},
		{map[string]any{"method": MethodMART, "norm": NormL2, "attack": AttackFGSM}, "norm"},
		{map[string]any{"method": "awp-trades"}, "method"},
	} {
		_, problems := build(tc.values)
		found := false
		for _, p := range problems {
			found = found || p.Param == tc.param
		}
		if !found {
			t.Errorf("%v: problems %v, want one on %s", tc.values, problems, tc.param)
		}
	}
}

func TestMARTAndAWPLearnRobustly(t *testing.T) {
	if testing.Short() {
		t.Skip("training runs skipped in -short mode")
	}
	trainSet, valSet := blobs(240, 3, 0, 1, 0), blobs(90, 3, 0, 2, 10000)
	for _, tc := range []struct {
		name   string
		values map[string]any
	}{
		{"mart hard", map[string]any{"method": MethodMART}},
		{"awp hard", map[string]any{"method": MethodAWP}},
		{"trades-awp smooth", map[string]any{"method": MethodTRADESAWP, "labels": LabelsSmooth, "awp_warmup": int64(1)}},
		{"mart-awp sglr", map[string]any{"method": MethodMARTAWP, "labels": LabelsSGLR, "warmup": int64(2), "awp_warmup": int64(2)}},
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
			robust := curve.Column(artifacts.ColValRobustAcc).Floats
			if last := robust[len(robust)-1]; last < 0.6 {
				t.Errorf("final validation robust accuracy %v, want well above chance 1/3 (curve %v)", last, robust)
			}
		})
	}
}

func TestMARTAndAWPAreDeterministic(t *testing.T) {
	trainSet, valSet := blobs(120, 3, 0.2, 1, 0), blobs(45, 3, 0, 2, 10000)
	for _, method := range []string{MethodMART, MethodMARTAWP} {
		values := fastParams(map[string]any{"epochs": int64(3), "method": method, "awp_warmup": int64(1), "workers": int64(2)})
		if method == MethodMART {
			delete(values, "awp_warmup")
		}
		a := runTrain(t, trainSet, valSet, nil, values, 11)
		b := runTrain(t, trainSet, valSet, nil, values, 11)
		if a.err != nil || b.err != nil {
			t.Fatalf("%s: %v, %v", method, a.err, b.err)
		}
		for _, port := range []string{"best", "final", "curve"} {
			if !bytes.Equal(readOutput(t, a.env, port), readOutput(t, b.env, port)) {
				t.Errorf("%s: output %s differs between two runs with the same seed", method, port)
			}
		}
	}
}

// TestAWPWarmupKeepsTheBaseMethod checks that an AWP method trains exactly
// as its base method during awp_warmup and differently afterwards.
func TestAWPWarmupKeepsTheBaseMethod(t *testing.T) {
	trainSet, valSet := blobs(90, 3, 0, 1, 0), blobs(30, 3, 0, 2, 10000)
	for _, pair := range [][2]string{{MethodTRADES, MethodTRADESAWP}, {MethodMART, MethodMARTAWP}, {MethodPGDAT, MethodAWP}} {
		base := checkpointConfig(t, map[string]any{"epochs": int64(3), "method": pair[0]})
		withAWP := checkpointConfig(t, map[string]any{"epochs": int64(3), "method": pair[1], "awp_warmup": int64(2)})
		a, err := trainWith(t, base, "", 0, trainSet, valSet)
		if err != nil {
			t.Fatal(err)
		}
		b, err := trainWith(t, withAWP, "", 0, trainSet, valSet)
		if err != nil {
			t.Fatal(err)
		}
		lossA, lossB := a.Curve.Column(artifacts.ColTrainLoss).Floats, b.Curve.Column(artifacts.ColTrainLoss).Floats
		if lossA[0] != lossB[0] || lossA[1] != lossB[1] {
			t.Errorf("%s with awp_warmup 2: training losses %v, %s %v: the first two epochs should agree", pair[1], lossB, pair[0], lossA)
		}
		if lossA[2] == lossB[2] {
			t.Errorf("%s: epoch 3 has %s's training loss %v: AWP did not start", pair[1], pair[0], lossA[2])
		}
		t.Logf("%s training loss %v, %s %v", pair[0], lossA, pair[1], lossB)
	}
}
