package eval

import (
	"testing"

	nnattack "github.com/sglr-pipe/sglr-pipe/nn/attack"
)

func TestAttackCostWeighsAttacksByTheirPasses(t *testing.T) {
	cfg := Config{Eps: 0.1, Restarts: 1, Targets: nnattack.DefaultTargets, Queries: 5000}
	for _, tc := range []struct {
		attack string
		want   int64
	}{
		{nnattack.NameClean, 1},
		{nnattack.NameFGSM, 2},
		{nnattack.NamePGD, 21},           // PGD-20 and the final forward pass
		{nnattack.NameAPGDCE, 101},       // 100 iterations
		{nnattack.NameAPGDT, 9*100 + 1},  // 9 targets
		{nnattack.NameFABT, 2*9*100 + 1}, // two logits differentiated per step
		{nnattack.NameSquare, 5001},      // one forward pass per query
		{nnattack.NameAutoAttack, 100 + 900 + 1800 + 5000 + 1},
	} {
		if got := attackCost(cfg, tc.attack, 10); got != tc.want {
			t.Errorf("%s: cost %d, want %d", tc.attack, got, tc.want)
		}
	}
	// Restarts multiply, and targets are capped at K−1.
	cfg.Restarts = 3
	if got := attackCost(cfg, nnattack.NamePGD, 10); got != 61 {
		t.Errorf("pgd with 3 restarts: %d, want 61", got)
	}
	if got := attackCost(Config{Eps: 0.1, Restarts: 1, Targets: 9}, nnattack.NameAPGDT, 3); got != 2*100+1 {
		t.Errorf("apgd-t on 3 classes: %d, want 201", got)
	}
}
