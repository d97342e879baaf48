//go:build !openblas

package ops

// The default build runs on package gemm's pure-Go BLAS.
const (
	wantBLASType = "gemm.Implementation"
	wantBLASName = "pure Go"
)
