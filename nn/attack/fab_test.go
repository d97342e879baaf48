package attack

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestHyperplaneLambdaMatchesSortedScan checks the quickselect λ of the FAB
// projection against the O(D log D) scan over sorted rooms that the
// reference implementation does, on random problems with many tied rooms
// (pixels at 0 or 1, quantised values), reachable and unreachable gaps.
func TestHyperplaneLambdaMatchesSortedScan(t *testing.T) {
	for _, tc := range []struct {
		name   string
		d      int
		levels int     // rooms drawn from this many values (0: continuous)
		frac   float64 // gap as a fraction of the largest reachable gain
	}{
		{"continuous small gap", 784, 0, 0.05},
		{"continuous large gap", 784, 0, 0.9},
		{"ties at few levels", 784, 3, 0.4},
		{"ties at 256 levels", 784, 256, 0.3},
		{"single coordinate", 1, 0, 0.5},
		{"two equal rooms", 2, 1, 0.7},
		{"unreachable", 100, 0, 1.5},
		{"exactly reachable", 50, 5, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(tc.d), uint64(tc.levels)))
			for trial := range 50 {
				entries := make([]roomEntry, tc.d)
				reach := 0.0
				for j := range entries {
					room := rng.Float64()
					if tc.levels > 0 {
						room = float64(rng.IntN(tc.levels)) / float64(max(tc.levels-1, 1))
					}
					entries[j] = roomEntry{room: room, weight: 1e-3 + rng.Float64()}
					reach += room * entries[j].weight
				}
				gap := tc.frac * reach
				if gap == 0 {
					gap = 1e-3
				}
				// Past the largest room λ moves every coordinate to its bound,
				// whatever its value (+Inf when the gap is out of reach).
				maxRoom := 0.0
				for _, e := range entries {
					maxRoom = max(maxRoom, e.room)
				}
				want := min(sortedScanLambda(slices.Clone(entries), gap), maxRoom)
				got := min(hyperplaneLambda(entries, gap), maxRoom)
				if math.Abs(got-want) > 1e-12*max(1, want) {
					t.Fatalf("trial %d: λ = %v, sorted scan gives %v (gap %v, reachable %v)", trial, got, want, gap, reach)
				}
			}
		})
	}
}

// BenchmarkProjectLinfHyperplane times one projection of a 784-pixel image.
func BenchmarkProjectLinfHyperplane(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	const d = 784
	x, w := make([]float32, d), make([]float32, d)
	for j := range x {
		if rng.Float64() < 0.5 {
			x[j] = float32(rng.Float64())
		}
		w[j] = float32(rng.NormFloat64())
	}
	delta, scratch := make([]float32, d), make([]roomEntry, d)
	b.Run("projection", func(b *testing.B) {
		for b.Loop() {
			projectLinfHyperplane(x, w, 3, delta, scratch)
		}
	})
	entries := make([]roomEntry, d)
	for j := range entries {
		entries[j] = roomEntry{room: float64(x[j]), weight: math.Abs(float64(w[j]))}
	}
	for _, lambda := range []struct {
		name string
		find func([]roomEntry, float64) float64
	}{{"lambda quickselect", hyperplaneLambda}, {"lambda sorted scan", sortedScanLambda}} {
		b.Run(lambda.name, func(b *testing.B) {
			for b.Loop() {
				copy(scratch, entries)
				lambda.find(scratch, 3)
			}
		})
	}
}

// sortedScanLambda is the reference's way to find λ: sort the rooms and scan
// them, capping the coordinates one by one until the gain reaches gap.
func sortedScanLambda(entries []roomEntry, gap float64) float64 {
	slices.SortFunc(entries, func(a, b roomEntry) int {
		switch {
		case a.room < b.room:
			return -1
		case a.room > b.room:
			return 1
		default:
			return 0
		}
	})
	remaining := 0.0
	for _, e := range entries {
		remaining += e.weight
	}
	capped := 0.0
	for _, e := range entries {
		if capped+e.room*remaining >= gap {
			return (gap - capped) / remaining
		}
		capped += e.room * e.weight
		remaining -= e.weight
	}
	return math.Inf(1)
}
