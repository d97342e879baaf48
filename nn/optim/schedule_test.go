package optim

import (
	"math"
	"strings"
	"testing"
)

func TestScheduleLR(t *testing.T) {
	step := Piecewise(0.1, []int{100, 150}, 0.1, false)
	stepIter := Piecewise(0.1, []int{100, 150}, 0.1, true)
	cos := Cosine(0.1, 10, false, 0)
	cosIter := Cosine(0.1, 10, true, 0)
	cosMin := Cosine(0.1, 10, false, 0.01)
	tests := []struct {
		name                string
		s                   Schedule
		epoch, iter, ofIter int
		want                float64
	}{
		{"constant", Constant(0.05), 37, 3, 10, 0.05},
		{"step before first milestone", step, 0, 0, 0, 0.1},
		{"step last epoch before milestone", step, 99, 390, 391, 0.1},
		{"step at first milestone", step, 100, 0, 0, 0.01},
		{"step between milestones", step, 149, 0, 0, 0.01},
		{"step at second milestone", step, 150, 0, 0, 0.001},
		{"step at end", step, 199, 0, 0, 0.001},
		{"step per-iteration last batch before milestone", stepIter, 99, 390, 391, 0.1},
		{"step per-iteration first batch of milestone epoch", stepIter, 100, 0, 391, 0.01},
		{"step per-iteration unknown iters", stepIter, 150, 5, 0, 0.001},
		{"cosine start", cos, 0, 0, 0, 0.1},
		{"cosine middle", cos, 5, 0, 0, 0.05},
		{"cosine end", cos, 10, 0, 0, 0},
		{"cosine ignores iter per epoch", cos, 2, 1, 2, 0.05 * (1 + math.Cos(math.Pi*2/10))},
		{"cosine per-iteration", cosIter, 2, 1, 2, 0.05 * (1 + math.Cos(math.Pi/4))},
		{"cosine past end clamps", cos, 12, 0, 0, 0},
		{"cosine min lr", cosMin, 5, 0, 0, 0.055},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.s.LR(tc.epoch, tc.iter, tc.ofIter); math.Abs(got-tc.want) > 1e-12 {
				t.Errorf("LR(%d, %d, %d) = %v, want %v", tc.epoch, tc.iter, tc.ofIter, got, tc.want)
			}
		})
	}
}

func TestParseSchedule(t *testing.T) {
	tests := []struct {
		name       string
		kind       string
		lr         float64
		milestones []int
		factor     float64
		epochs     int
		epoch      int
		want       float64 // LR at epoch, when valid
		wantErr    string  // substring, "" = valid
	}{
		{"constant", "constant", 0.1, nil, 0, 0, 7, 0.1, ""},
		{"piecewise", "piecewise", 0.1, []int{2, 4}, 0.5, 0, 3, 0.05, ""},
		{"step alias, case-insensitive", "Step", 0.1, []int{2, 4}, 0.5, 0, 4, 0.025, ""},
		{"cosine", "cosine", 0.2, nil, 0, 4, 2, 0.1, ""},
		{"unknown kind", "linear", 0.1, nil, 0, 10, 0, 0, "unknown kind"},
		{"zero lr", "constant", 0, nil, 0, 0, 0, 0, "learning rate"},
		{"NaN lr", "constant", math.NaN(), nil, 0, 0, 0, 0, "learning rate"},
		{"unsorted milestones", "piecewise", 0.1, []int{5, 3}, 0.1, 0, 0, 0, "strictly increasing"},
		{"negative milestone", "piecewise", 0.1, []int{-1}, 0.1, 0, 0, 0, "negative"},
		{"zero factor", "piecewise", 0.1, []int{1}, 0, 0, 0, 0, "factor"},
		{"cosine without epochs", "cosine", 0.1, nil, 0, 0, 0, 0, "epochs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSchedule(tc.kind, tc.lr, tc.milestones, tc.factor, tc.epochs, false)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := s.LR(tc.epoch, 0, 0); math.Abs(got-tc.want) > 1e-12 {
				t.Errorf("LR(%d) = %v, want %v", tc.epoch, got, tc.want)
			}
		})
	}
}
