//go:build !openblas

package nn

// The default build runs on gonum's pure-Go BLAS.
const (
	wantBLASType = "gonum.Implementation"
	wantBLASName = "pure Go"
)
