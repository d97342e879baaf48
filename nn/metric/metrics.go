package metric

import (
	"fmt"
	"math"

	"github.com/sglr-pipe/sglr-pipe/nn/internal/vec"
)

// Softmax writes the row-wise softmax of logits [n,k] into out [n,k]
// (vec.Softmax of each row).
func Softmax(logits []float32, n, k int, out []float32) {
	checkRows("softmax", logits, n, k, out)
	for i := range n {
		vec.Softmax(logits[i*k:(i+1)*k], out[i*k:(i+1)*k])
	}
}

// LogSoftmax writes the row-wise log-softmax of logits [n,k] into out [n,k],
// computed stably as v − max − log Σ exp(v − max).
func LogSoftmax(logits []float32, n, k int, out []float32) {
	checkRows("log-softmax", logits, n, k, out)
	for i := range n {
		row := logits[i*k : (i+1)*k]
		lse := vec.LogSumExp(row)
		for j, v := range row {
			out[i*k+j] = float32(float64(v) - lse)
		}
	}
}

// Argmax writes each row's index of the largest value into out [n]. Ties go
// to the first index and a NaN counts as the largest value (vec.Argmax), as
// torch.argmax does on CPU.
func Argmax(x []float32, n, k int, out []int32) {
	if len(x) < n*k || len(out) < n {
		panic(fmt.Sprintf("argmax: %d rows of %d need %d values and %d outputs, have %d and %d", n, k, n*k, n, len(x), len(out)))
	}
	for i := range n {
		out[i] = int32(vec.Argmax(x[i*k : (i+1)*k]))
	}
}

// Accuracy is the fraction of rows of logits [len(labels),k] whose argmax is
// the label; 0 for no rows.
func Accuracy(logits []float32, labels []int32, k int) float64 {
	if len(labels) == 0 {
		return 0
	}
	correct := 0
	for i, y := range labels {
		if vec.Argmax(logits[i*k:(i+1)*k]) == int(y) {
			correct++
		}
	}
	return float64(correct) / float64(len(labels))
}

// CorrectMask sets out[i] to whether row i of logits [len(labels),k] is
// classified as labels[i]; attacks and robust accuracy use it to know which
// points are still standing.
func CorrectMask(logits []float32, labels []int32, k int, out []bool) {
	if len(out) < len(labels) || len(logits) < len(labels)*k {
		panic(fmt.Sprintf("correct mask: %d labels need %d logits and %d outputs, have %d and %d", len(labels), len(labels)*k, len(labels), len(logits), len(out)))
	}
	for i, y := range labels {
		out[i] = vec.Argmax(logits[i*k:(i+1)*k]) == int(y)
	}
}

// SoftCE is the mean over rows of the soft-target cross-entropy
// −Σ_k targets[i,k]·log softmax(logits[i])_k (PyTorch's
// F.cross_entropy(logits, targets) with probability targets), computed in
// float64. It cross-checks the graph loss; with one-hot targets it is the
// ordinary cross-entropy.
func SoftCE(logits, targets []float32, n, k int) float64 {
	checkRows("soft cross-entropy", logits, n, k, targets)
	if n == 0 {
		return 0
	}
	total := 0.0
	for i := range n {
		total += vec.SoftCE(logits[i*k:(i+1)*k], targets[i*k:(i+1)*k])
	}
	return total / float64(n)
}

// KL is the mean over rows of KL(target_i ‖ softmax(logits_i)) =
// Σ_k t·(log t − log p), PyTorch's F.kl_div(log_softmax(logits), target,
// reduction="batchmean"); terms with t = 0 contribute 0.
func KL(target, logits []float32, n, k int) float64 {
	checkRows("kl", logits, n, k, target)
	if n == 0 {
		return 0
	}
	total := 0.0
	for i := range n {
		row := logits[i*k : (i+1)*k]
		lse := vec.LogSumExp(row)
		for j, v := range row {
			if t := float64(target[i*k+j]); t > 0 {
				total += t * (math.Log(t) - (float64(v) - lse))
			}
		}
	}
	return total / float64(n)
}

// checkRows panics when a or b cannot hold n rows of k values.
func checkRows(what string, a []float32, n, k int, b []float32) {
	if n < 0 || k <= 0 || len(a) < n*k || len(b) < n*k {
		panic(fmt.Sprintf("%s: %d rows of %d need %d values, have %d and %d", what, n, k, n*k, len(a), len(b)))
	}
}
