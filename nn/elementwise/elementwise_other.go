//go:build !amd64 || purego

package elementwise

// useAVX2 is false: this build has no assembly loops.
var useAVX2 = false

func reluAVX2(y, x *float32, n int) { panic("elementwise: no AVX2 in this build") }

func reluGradAVX2(dx, y, grad *float32, n int) { panic("elementwise: no AVX2 in this build") }

func signStepAVX2(x, grad, clean *float32, n int, step, eps float64) bool {
	panic("elementwise: no AVX2 in this build")
}
