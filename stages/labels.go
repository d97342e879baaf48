package stages

import (
	"math"

	"github.com/sglr-pipe/sglr-pipe/nn/metric"
)

// Recovered is the share of flipped samples whose row of soft [N,K] has its
// argmax at the clean label, and the number of flipped samples. It is NaN
// (with −1 flipped) when clean labels or flipped flags are unknown, and NaN
// (with 0) when no sample is flipped.
func Recovered(soft []float32, k int, clean []int32, flipped []bool) (float64, int) {
	if clean == nil || flipped == nil || len(clean) != len(flipped) || len(soft) < len(clean)*k {
		return math.NaN(), -1
	}
	hits, n := 0, 0
	best := make([]int32, 1)
	for i, f := range flipped {
		if !f {
			continue
		}
		n++
		metric.Argmax(soft[i*k:(i+1)*k], 1, k, best)
		if best[0] == clean[i] {
			hits++
		}
	}
	if n == 0 {
		return math.NaN(), 0
	}
	return float64(hits) / float64(n), n
}
