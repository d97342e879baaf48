//go:build !openblas

package nn

import (
	"fmt"

	G "gorgonia.org/gorgonia"
)

// BLAS names the BLAS implementation the graphs run on. The default build is
// pure Go (gonum's native BLAS, no cgo); build with -tags openblas to run the
// matrix products on OpenBLAS instead (see blas_openblas.go).
func BLAS() string {
	return fmt.Sprintf("gonum pure Go via %T", G.WhichBLAS())
}
