// Package gemm is a pure-Go (no cgo) general matrix multiply for float32 and
// float64 that is fast enough to train small networks on: it packs A and B
// into cache-sized, zero-padded panels and runs a register-blocked
// micro-kernel over them (the BLIS/GotoBLAS scheme). On amd64 with AVX2 and
// FMA the micro-kernel is Go assembly; elsewhere, or with the purego build
// tag, a portable Go micro-kernel runs instead.
//
// Implementation plugs the kernels into gorgonia: it embeds gonum's native
// BLAS and overrides Sgemm and Dgemm, so it satisfies gorgonia's BLAS
// interface and can be installed with gorgonia.Use. Everything runs on the
// calling goroutine: callers that want parallelism (the nn Trainer runs one
// goroutine per core) split the work themselves.
//
// Results are deterministic: the same inputs give the same bits on the same
// build and CPU. They may differ in the last bits from gonum's or OpenBLAS's,
// which sum in another order.
package gemm

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// Implementation is gonum's native BLAS with the general matrix products
// Sgemm and Dgemm replaced by this package's blocked kernels. All other BLAS
// routines are gonum's.
type Implementation struct {
	gonum.Implementation
}

// Kernel names the micro-kernel Sgemm runs on this machine, e.g.
// "avx2-fma 6x16" or "portable-go 4x4", so benchmarks can say what they
// measured.
func Kernel() string { return activeKernels.f32.name }

// Sgemm computes C = alpha * op(A) * op(B) + beta * C for row-major float32
// matrices, where op(X) is X or Xᵀ as tA and tB say, op(A) is m×k, op(B) is
// k×n and C is m×n. lda, ldb and ldc are the row strides of the matrices as
// stored. It panics with gonum's messages on invalid arguments, as every
// gonum blas.Float32Level3 implementation does. When beta is 0, C is not
// read (NaNs in it do not propagate).
func (Implementation) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	aTrans, bTrans := checkGemm(tA, tB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	if m == 0 || n == 0 || ((alpha == 0 || k == 0) && beta == 1) {
		return
	}
	gemm(&activeKernels.f32, &workspaces32, aTrans, bTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// Dgemm is Sgemm for float64 matrices: C = alpha * op(A) * op(B) + beta * C,
// row-major, with gonum's argument checks.
func (Implementation) Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	aTrans, bTrans := checkGemm(tA, tB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	if m == 0 || n == 0 || ((alpha == 0 || k == 0) && beta == 1) {
		return
	}
	gemm(&activeKernels.f64, &workspaces64, aTrans, bTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// Panic messages, the same as gonum's so callers see one wording whichever
// BLAS runs.
const (
	badTranspose = "blas: illegal transpose"
	mLT0         = "blas: m < 0"
	nLT0         = "blas: n < 0"
	kLT0         = "blas: k < 0"
	badLdA       = "blas: bad leading dimension of A"
	badLdB       = "blas: bad leading dimension of B"
	badLdC       = "blas: bad leading dimension of C"
	shortA       = "blas: insufficient length of a"
	shortB       = "blas: insufficient length of b"
	shortC       = "blas: insufficient length of c"
)

// checkGemm validates gemm arguments the way gonum's Sgemm does and reports
// whether A and B are to be transposed.
func checkGemm(tA, tB blas.Transpose, m, n, k, lenA, lda, lenB, ldb, lenC, ldc int) (aTrans, bTrans bool) {
	validTrans := func(t blas.Transpose) bool {
		return t == blas.NoTrans || t == blas.Trans || t == blas.ConjTrans
	}
	if !validTrans(tA) || !validTrans(tB) {
		panic(badTranspose)
	}
	switch {
	case m < 0:
		panic(mLT0)
	case n < 0:
		panic(nLT0)
	case k < 0:
		panic(kLT0)
	}
	aTrans = tA != blas.NoTrans
	bTrans = tB != blas.NoTrans
	if (aTrans && lda < max(1, m)) || (!aTrans && lda < max(1, k)) {
		panic(badLdA)
	}
	if (bTrans && ldb < max(1, k)) || (!bTrans && ldb < max(1, n)) {
		panic(badLdB)
	}
	if ldc < max(1, n) {
		panic(badLdC)
	}
	if m == 0 || n == 0 {
		return aTrans, bTrans
	}
	if (aTrans && lenA < (k-1)*lda+m) || (!aTrans && lenA < (m-1)*lda+k) {
		panic(shortA)
	}
	if (bTrans && lenB < (n-1)*ldb+k) || (!bTrans && lenB < (k-1)*ldb+n) {
		panic(shortB)
	}
	if lenC < (m-1)*ldc+n {
		panic(shortC)
	}
	return aTrans, bTrans
}
