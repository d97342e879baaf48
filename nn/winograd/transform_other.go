//go:build !amd64 || purego

package winograd

// useAVX2 is false: this build has no assembly transforms.
var useAVX2 = false

func rowsAVX2(d0, d1, d2, d3, a0, a1, a2, a3 *float32, n int) {
	panic("winograd: no AVX2 in this build")
}

func columnsAVX2(a *float32, n int, v0, v1, v2, v3 *float32) {
	panic("winograd: no AVX2 in this build")
}

func outputAVX2(m *float32, step, n int, row0, row1 *float32) {
	panic("winograd: no AVX2 in this build")
}
