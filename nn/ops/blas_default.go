//go:build !openblas

package ops

import (
	"fmt"

	"github.com/sglr-pipe/sglr-pipe/nn/gemm"
	G "gorgonia.org/gorgonia"
)

// init installs package gemm's blocked matrix products in gorgonia (and,
// through gorgonia.Use, in gorgonia.org/tensor): the default build stays
// pure Go (no cgo) but runs Sgemm and Dgemm on packed, register-blocked
// kernels (AVX2/FMA assembly where the CPU has it) instead of gonum's
// native loops. The other BLAS routines remain gonum's.
func init() {
	G.Use(gemm.Implementation{})
}

// BLAS names the BLAS implementation the graphs run on. The default build is
// pure Go: package gemm's kernels for matrix products, gonum's native BLAS
// for the rest; build with -tags openblas to run the matrix products on
// OpenBLAS instead (see blas_openblas.go).
func BLAS() string {
	return fmt.Sprintf("pure Go (gemm kernel %s, gonum for the rest) via %T", gemm.Kernel(), G.WhichBLAS())
}
