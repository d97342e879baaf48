package load

import (
	"math/rand/v2"
	"slices"
)

// PCG streams of the subset draws: one per draw so that, e.g., changing the
// test size leaves the train and val subsets unchanged.
const (
	streamVal       = 0x76616c // "val"
	streamTrain     = 0x747261 // "tra"
	streamTest      = 0x746573 // "tes"
	streamPrototype = 0x70726f // "pro"
)

// subsetRNG returns the generator for one draw of subset_seed.
func subsetRNG(seed int64, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), stream))
}

// balancedSubset draws n of the candidate indices (positions into labels) as
// evenly over the k classes as the candidates allow: every class gets n/k,
// and classes that run short leave their share to the others. Within a class
// the draw is uniform. The remainder (n mod k) goes to classes in an order
// the generator shuffles, so no class is favoured. The result is sorted
// ascending. n must not exceed len(candidates).
func balancedSubset(candidates []int, labels []int32, k, n int, rng *rand.Rand) []int {
	byClass := make([][]int, k)
	for _, i := range candidates {
		byClass[labels[i]] = append(byClass[labels[i]], i)
	}
	for _, members := range byClass {
		rng.Shuffle(len(members), func(a, b int) { members[a], members[b] = members[b], members[a] })
	}
	order := rng.Perm(k)
	chosen := make([]int, 0, n)
	for taken := 0; len(chosen) < n; taken++ {
		for _, c := range order {
			if len(chosen) == n {
				break
			}
			if taken < len(byClass[c]) {
				chosen = append(chosen, byClass[c][taken])
			}
		}
	}
	slices.Sort(chosen)
	return chosen
}

// without returns the indices 0..n-1 that are not in drop (sorted).
func without(n int, drop []int) []int {
	dropped := make([]bool, n)
	for _, i := range drop {
		dropped[i] = true
	}
	keep := make([]int, 0, n-len(drop))
	for i := range n {
		if !dropped[i] {
			keep = append(keep, i)
		}
	}
	return keep
}

// allIndices returns 0..n-1.
func allIndices(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}
