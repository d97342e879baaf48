//go:build openblas

package ops

// The openblas build runs on OpenBLAS through gonum's netlib bindings.
const (
	wantBLASType = "netlib.Implementation"
	wantBLASName = "OpenBLAS"
)
