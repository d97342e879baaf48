package model

import (
	"fmt"
	"math/rand/v2"
)

// Batches splits the sample indices 0..n−1 into consecutive batches of
// `batch` indices, after a Fisher–Yates shuffle drawn from rng when shuffle
// is set (rng may be nil otherwise). The last, partial batch is kept, as
// PyTorch's DataLoader does by default; wrap the result in DropLast for
// drop_last=True. batch <= 0 means one batch of all n samples (full batch).
// All batches share one backing array.
func Batches(n, batch int, shuffle bool, rng *rand.Rand) [][]int {
	if n <= 0 {
		return nil
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	if shuffle {
		rng.Shuffle(n, func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
	}
	if batch <= 0 || batch > n {
		batch = n
	}
	out := make([][]int, 0, (n+batch-1)/batch)
	for start := 0; start < n; start += batch {
		end := min(start+batch, n)
		out = append(out, idx[start:end:end])
	}
	return out
}

// DropLast removes the final batch when it holds fewer than batch indices,
// PyTorch's drop_last=True; it keeps every batch when batch <= 0.
func DropLast(batches [][]int, batch int) [][]int {
	if batch > 0 && len(batches) > 0 && len(batches[len(batches)-1]) < batch {
		return batches[:len(batches)-1]
	}
	return batches
}

// Gather copies the samples idx of x (each sampleSize values, row-major) in
// that order into out. Out-of-range indices and short buffers are
// programming errors and panic.
func Gather(x []float32, sampleSize int, idx []int, out []float32) {
	if len(out) < len(idx)*sampleSize {
		panic(fmt.Sprintf("gather: out holds %d values, need %d", len(out), len(idx)*sampleSize))
	}
	for j, i := range idx {
		copy(out[j*sampleSize:(j+1)*sampleSize], x[i*sampleSize:(i+1)*sampleSize])
	}
}

// GatherLabels copies labels[idx] in order into out, the label companion of
// Gather.
func GatherLabels(labels []int32, idx []int, out []int32) {
	if len(out) < len(idx) {
		panic(fmt.Sprintf("gather labels: out holds %d labels, need %d", len(out), len(idx)))
	}
	for j, i := range idx {
		out[j] = labels[i]
	}
}
