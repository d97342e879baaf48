package train

import (
	"slices"
	"strings"
	"testing"
)

func TestDefaultMilestones(t *testing.T) {
	for _, tc := range []struct {
		epochs int
		want   []int
	}{{200, []int{100, 150}}, {30, []int{15, 22}}, {2, []int{1}}, {1, nil}, {4, []int{2, 3}}} {
		if got := DefaultMilestones(tc.epochs); !slices.Equal(got, tc.want) {
			t.Errorf("DefaultMilestones(%d) = %v, want %v", tc.epochs, got, tc.want)
		}
	}
}

func TestConfigFromParams(t *testing.T) {
	for _, tc := range []struct {
		name       string
		values     map[string]any
		milestones []int
		warmup     int
		err        string
	}{
		{"defaults", nil, []int{15, 22}, 15, ""},
		{"given milestones", map[string]any{"milestones": []any{int64(5), 9.0}}, []int{5, 9}, 5, ""},
		{"explicit warmup", map[string]any{"warmup": int64(3)}, []int{15, 22}, 3, ""},
		{"cosine warmup", map[string]any{"schedule": "cosine", "epochs": int64(10)}, []int{5, 7}, 5, ""},
		{"decreasing milestones", map[string]any{"milestones": []any{int64(9), int64(5)}}, nil, 0, "strictly increasing"},
		{"fractional milestone", map[string]any{"milestones": []any{2.5}}, nil, 0, `param "milestones": element 0: 2.5 must be an integer`},
		{"zero lr", map[string]any{"lr": 0.0}, nil, 0, "learning rate 0"},
		{"momentum 1", map[string]any{"momentum": 1.0}, nil, 0, "momentum 1 out of range"},
		{"alpha 1", map[string]any{"labels": LabelsSGLR, "sglr_alpha": 1.0}, nil, 0, "alpha 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ConfigFromParams(withDefaults(t, Stage{}.Spec(), tc.values))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want an error mentioning %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(cfg.Milestones, tc.milestones) || cfg.SGLR.WarmupEpochs != tc.warmup {
				t.Errorf("milestones %v warmup %d, want %v and %d", cfg.Milestones, cfg.SGLR.WarmupEpochs, tc.milestones, tc.warmup)
			}
		})
	}
}
