//go:build openblas

package main

/*
#cgo LDFLAGS: -lopenblas
void openblas_set_num_threads(int num_threads);
*/
import "C"

import "gonum.org/v1/netlib/blas/netlib"

// init adds OpenBLAS, single-threaded as nn runs it, to the contenders.
func init() {
	C.openblas_set_num_threads(1)
	contenders = append(contenders, contender{"OpenBLAS", netlib.Implementation{}})
}
