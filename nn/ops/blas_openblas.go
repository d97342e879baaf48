//go:build openblas

package ops

/*
#cgo LDFLAGS: -lopenblas
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char* openblas_get_config(void);
*/
import "C"

import (
	"fmt"
	"os"

	"gonum.org/v1/netlib/blas/netlib"
	G "gorgonia.org/gorgonia"
)

// init switches gorgonia (and, through gorgonia.Use, gorgonia.org/tensor,
// whose matrix products and im2col convolutions call it) from gonum's pure-Go
// BLAS to OpenBLAS via gonum's cgo netlib bindings. The -lopenblas directive
// above links the library, so no CGO_LDFLAGS is needed.
//
// OpenBLAS is made single-threaded unless OPENBLAS_NUM_THREADS is set: the
// Trainer and the Evaluator already run one Net per core, and a threaded
// BLAS under each of them would oversubscribe the cores.
func init() {
	if _, set := os.LookupEnv("OPENBLAS_NUM_THREADS"); !set {
		C.openblas_set_num_threads(1)
	}
	G.Use(netlib.Implementation{})
}

// BLAS names the BLAS implementation the graphs run on. This build (tag
// openblas) uses OpenBLAS; the string gives its build configuration and
// thread count, so benchmarks can print what they measured.
func BLAS() string {
	return fmt.Sprintf("OpenBLAS (%s, %d threads) via %T",
		C.GoString(C.openblas_get_config()), int(C.openblas_get_num_threads()), G.WhichBLAS())
}
