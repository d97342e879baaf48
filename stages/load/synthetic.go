package load

import "fmt"

// Synthetic split sizes used when the train, val or test parameter is zero.
const (
	syntheticTrain = 1000
	syntheticVal   = 200
	syntheticTest  = 500
)

// syntheticNoise is the standard deviation of the per-pixel Gaussian noise
// around each class prototype: large enough that classes overlap a little.
const syntheticNoise = 0.35

// maxSyntheticValues bounds N * prod(shape) of a synthetic split (1 GiB of float32).
const maxSyntheticValues = 1 << 28

// makeSynthetic builds a synthetic dataset: each of the k classes has a
// prototype image drawn uniformly in [0,1]; a sample is its class prototype
// plus N(0, 0.35) noise per pixel, clipped to [0,1]. Labels cycle through the
// classes (i mod k) so every split is balanced. Everything is a function of
// seed (subset_seed), shape, k and the sizes.
func makeSynthetic(seed int64, shape []int, k, trainN, testN int) (*source, error) {
	dim := 1
	for _, d := range shape {
		dim *= d
	}
	for _, n := range []int{trainN, testN} {
		if n*dim > maxSyntheticValues || n*dim < 0 {
			return nil, fmt.Errorf("synthetic: %d samples of shape %v exceed %d values", n, shape, maxSyntheticValues)
		}
	}
	protoRNG := subsetRNG(seed, streamPrototype)
	prototypes := make([]float64, k*dim)
	for i := range prototypes {
		prototypes[i] = protoRNG.Float64()
	}
	names := make([]string, k)
	for c := range names {
		names[c] = fmt.Sprintf("class%d", c)
	}
	gen := func(n int, stream uint64) split {
		rng := subsetRNG(seed, stream)
		s := split{images: make([]float32, n*dim), labels: make([]int32, n)}
		for i := range n {
			c := i % k
			s.labels[i] = int32(c)
			proto := prototypes[c*dim : (c+1)*dim]
			img := s.images[i*dim : (i+1)*dim]
			for j := range img {
				img[j] = float32(min(1, max(0, proto[j]+syntheticNoise*rng.NormFloat64())))
			}
		}
		return s
	}
	return &source{
		shape:      append([]int(nil), shape...),
		classNames: names,
		train:      gen(trainN, streamTrain),
		test:       gen(testN, streamTest),
		origin:     fmt.Sprintf("synthetic(seed=%d)", seed),
	}, nil
}
