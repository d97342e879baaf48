package gemm

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// benchShapes are products of the networks nn trains at batch 128: the MLP
// 784-256-256-10 layers forward (x·Wᵀ) and backward (g·W, gᵀ·x), and im2col
// convolutions (weights M×K times columns K×N, per image and per batch).
var benchShapes = []struct {
	name    string
	tA, tB  blas.Transpose
	m, n, k int
}{
	{"mlp-fwd-784x256", blas.NoTrans, blas.Trans, 128, 256, 784},
	{"mlp-fwd-256x256", blas.NoTrans, blas.Trans, 128, 256, 256},
	{"mlp-dx-256x784", blas.NoTrans, blas.NoTrans, 128, 784, 256},
	{"mlp-dw-256x784", blas.Trans, blas.NoTrans, 256, 784, 128},
	{"conv-64x288x196", blas.NoTrans, blas.NoTrans, 64, 196, 288},
	{"conv-64x288x25088", blas.NoTrans, blas.NoTrans, 64, 25088, 288},
}

// BenchmarkSgemm times every available kernel set and gonum's native Sgemm
// on benchShapes and reports GFLOP/s.
func BenchmarkSgemm(b *testing.B) {
	for _, s := range benchShapes {
		aRows, aCols := s.m, s.k
		if s.tA != blas.NoTrans {
			aRows, aCols = s.k, s.m
		}
		bCols := s.n
		if s.tB != blas.NoTrans {
			bCols = s.k
		}
		rng := rand.New(rand.NewPCG(1, 1))
		a, bm, c := randomSlice(rng, aRows*aCols), randomSlice(rng, s.k*s.n), make([]float32, s.m*s.n)
		flops := 2 * float64(s.m) * float64(s.n) * float64(s.k)
		report := func(b *testing.B) {
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		}
		for _, ks := range availableKernels() {
			b.Run(fmt.Sprintf("%s/%s", s.name, ks.f32.name), func(b *testing.B) {
				aT, bT := s.tA != blas.NoTrans, s.tB != blas.NoTrans
				pool := &sync.Pool{}
				for b.Loop() {
					gemm(&ks.f32, pool, aT, bT, s.m, s.n, s.k, 1, a, aCols, bm, bCols, 0, c, s.n)
				}
				report(b)
			})
		}
		b.Run(s.name+"/gonum", func(b *testing.B) {
			for b.Loop() {
				gonum.Implementation{}.Sgemm(s.tA, s.tB, s.m, s.n, s.k, 1, a, aCols, bm, bCols, 0, c, s.n)
			}
			report(b)
		})
	}
}

func randomSlice(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.Float64()*2 - 1)
	}
	return s
}
