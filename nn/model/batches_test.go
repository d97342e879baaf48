package model

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

func TestBatchesInOrder(t *testing.T) {
	tests := []struct {
		name     string
		n, batch int
		want     [][]int
	}{
		{"partial last batch kept", 10, 4, [][]int{{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9}}},
		{"exact multiple", 4, 2, [][]int{{0, 1}, {2, 3}}},
		{"batch larger than n", 3, 8, [][]int{{0, 1, 2}}},
		{"full batch when batch <= 0", 3, 0, [][]int{{0, 1, 2}}},
		{"no samples", 0, 4, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Batches(tc.n, tc.batch, false, nil); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Batches(%d, %d) = %v, want %v", tc.n, tc.batch, got, tc.want)
			}
		})
	}
}

func TestBatchesShuffledIsSeededPermutation(t *testing.T) {
	a := Batches(10, 4, true, rand.New(rand.NewPCG(5, 6)))
	b := Batches(10, 4, true, rand.New(rand.NewPCG(5, 6)))
	c := Batches(10, 4, true, rand.New(rand.NewPCG(5, 7)))
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("same seed: %v vs %v", a, b)
	}
	if reflect.DeepEqual(a, c) {
		t.Errorf("different seeds gave the same order %v", a)
	}
	if sizes := []int{len(a[0]), len(a[1]), len(a[2])}; !slices.Equal(sizes, []int{4, 4, 2}) || len(a) != 3 {
		t.Fatalf("batch sizes %v", a)
	}
	all := slices.Concat(a...)
	if slices.Equal(all, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Errorf("shuffle kept the identity order")
	}
	slices.Sort(all)
	if !slices.Equal(all, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Errorf("batches %v are not a permutation of 0..9", a)
	}
	// Appending to one batch must not overwrite the next (capacities are capped).
	_ = append(a[0], -1)
	if a[1][0] == -1 {
		t.Error("append to batch 0 overwrote batch 1")
	}
}

func TestDropLast(t *testing.T) {
	tests := []struct {
		name     string
		n, batch int
		want     int // number of batches left
	}{
		{"drops partial", 10, 4, 2},
		{"keeps full", 8, 4, 2},
		{"drops the only, partial batch", 3, 4, 0},
		{"full batch mode keeps all", 3, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := DropLast(Batches(tc.n, tc.batch, false, nil), tc.batch); len(got) != tc.want {
				t.Errorf("%d batches left (%v), want %d", len(got), got, tc.want)
			}
		})
	}
}

func TestGather(t *testing.T) {
	x := []float32{0, 0.5, 1, 1.5, 2, 2.5} // three samples of two values
	out := make([]float32, 6)
	Gather(x, 2, []int{2, 0, 2}, out)
	if want := []float32{2, 2.5, 0, 0.5, 2, 2.5}; !slices.Equal(out, want) {
		t.Errorf("Gather = %v, want %v", out, want)
	}
	labels := []int32{7, 8, 9}
	got := make([]int32, 2)
	GatherLabels(labels, []int{1, 2}, got)
	if !slices.Equal(got, []int32{8, 9}) {
		t.Errorf("GatherLabels = %v", got)
	}
}
